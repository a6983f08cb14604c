"""Benchmark: every calculation of a 52-week full-size lake of three tiers, derived from clean's
raw captures (no fetch), and one symbol's year read back (targets: under 2 minutes on 2
cores; under 0.2 s). Prints figures; asserts nothing.

The lake is the one tests/benchmarks/verify.py builds (fetched and gated once, kept), plus the
Reg SHO weeks `short_volume_weekly` reads (fetched once, untimed). The derive runs in process,
the calculation functions the `calc` notebook calls (spine.pipeline.derive: clean, then each
calculation of spine/registry.py in order), one process per tier on a pool of two. With
--before DIR it first times the same derive with the code in DIR (a checkout of an earlier
commit, e.g. `git worktree add /tmp/before <commit>`), whose API is detected.

    python tests/benchmarks/derive.py                                  (make bench)
    python tests/benchmarks/derive.py --before /tmp/before             before and after
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent


def weeks_of(root: Path) -> list[str]:
    folder = root / "clean" / "finra_otc_weekly" / "tier=T1"
    return sorted(p.name.split("=")[1] for p in folder.iterdir() if p.name.startswith("week_start="))


def derive_tier(args: tuple[str, str, list[str]]) -> float:
    """Clean and every calculation of one tier's weeks, oldest first (windows read earlier
    weeks' outputs). Runs with whichever spine is first on sys.path."""
    root, tier, weeks = args
    from spine import config as config_
    from spine import pipeline

    cfg = config_.load(lake_root=root, as_of="2025-09-30", synthetic={"size": "full"})
    started = time.monotonic()
    for week in weeks:
        if hasattr(pipeline, "derive"):
            pipeline.derive(cfg, tier, week)
        else:  # the code before the registry: clean + 3 calculations, rolling, short volume
            pipeline.calc(cfg, tier, week)
            pipeline.calc_rolling(cfg, tier, week)
            if tier != "OTCE":
                pipeline.calc_short_volume(cfg, tier, week)
    return time.monotonic() - started


def derive_all(root: Path, weeks: list[str]) -> float:
    started = time.monotonic()
    with ProcessPoolExecutor(2) as pool:  # T2 (the largest) alone, T1 and OTCE on the other
        list(pool.map(derive_tier, [(str(root), t, weeks) for t in ("T2", "T1", "OTCE")]))
    return time.monotonic() - started


def ensure_regsho(root: Path, weeks: list[str]) -> None:
    from spine import config as config_
    from spine import lake, pipeline

    cfg = config_.load(lake_root=str(root), as_of="2025-09-30", synthetic={"size": "full"})
    for week in weeks:
        if not lake.path(root, "regsho_week", week_start=week).exists():
            pipeline.fetch_regsho(cfg, week)


def symbol_year(root: Path, weeks: list[str]) -> tuple[str, float, int]:
    import pandas as pd

    from spine import report

    latest = pd.read_parquet(root / "calc" / "symbol_week" / "tier=T1" / f"week_start={weeks[-1]}")
    symbol = latest.nlargest(1, "total_shares")["symbol"].iloc[0]
    times = []
    for _ in range(5):
        started = time.monotonic()
        rows = report.symbol_history(str(root), "T1", symbol, weeks)
        times.append(time.monotonic() - started)
    return symbol, min(times), len(rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lake", default="/tmp/market-spine-bench-52w")
    parser.add_argument("--before", help="a checkout of earlier code to time first")
    args = parser.parse_args()
    root = Path(args.lake)
    if not (root / ".built").exists():
        subprocess.run([sys.executable, str(HERE / "verify.py"), "--lake", str(root)], check=True)
    weeks = weeks_of(root)
    ensure_regsho(root, weeks)
    print(f"derive: {len(weeks)} weeks x 3 tiers, full size, from raw captures (no fetch)")
    if args.before:
        env = dict(os.environ, PYTHONPATH=args.before)
        code = ("import sys, time; sys.path.insert(0, sys.argv[1]); "
                "from pathlib import Path; import importlib.util as u; "
                "s = u.spec_from_file_location('d', sys.argv[2]); d = u.module_from_spec(s); "
                "s.loader.exec_module(d); print(f'{d.derive_all(Path(sys.argv[3]), "
                "d.weeks_of(Path(sys.argv[3]))):.1f}')")
        out = subprocess.run([sys.executable, "-c", code, args.before, __file__, str(root)],
                             env=env, capture_output=True, text=True, check=True)
        print(f"  before ({args.before}): {float(out.stdout.split()[-1]):.1f} s "
              "(clean, symbol_week, venue_share, symbol_hhi, symbol_rolling, short_volume)")
    seconds = derive_all(root, weeks)
    from spine import registry

    print(f"  now: {seconds:.1f} s for clean and {len(registry.CALCS)} calculations "
          f"({', '.join(registry.names())}); target < 120 s")
    symbol, best, rows = symbol_year(root, weeks)
    print(f"one symbol's history ({symbol}, T1, {rows} symbol_week rows over {len(weeks)} "
          f"weeks, DuckDB): best of 5 {best:.3f} s; target < 0.2 s")


if __name__ == "__main__":
    main()
