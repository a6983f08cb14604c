"""Benchmark: every calculation of a 52-week full-size lake of three tiers, derived from clean's
raw captures (no fetch), and one symbol's year read back (targets: under 2 minutes on 2
cores; under 0.2 s). Prints figures; asserts nothing.

The lake is the one tests/benchmarks/verify.py builds (fetched and gated once, kept), plus the
Reg SHO weeks `short_volume_weekly` reads (fetched once, untimed). The derive runs in process,
the calculation functions the `calc` notebook calls (spine.derive: clean, then each
calculation of spine/derive/registry.py), stage by stage as the DAG orders them, each stage's
(tier, week) jobs on a pool of two processes. With
--before DIR it first times the same derive with the code in DIR (a checkout of an earlier
commit with the same layout, e.g. `git worktree add /tmp/before <commit>`).

    python tests/benchmarks/derive.py                                  (make bench)
    python tests/benchmarks/derive.py --before /tmp/before             before and after
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd

from spine import config as config_
from spine import lake
from spine.derive import registry
from spine.derive.calc import make_calc
from spine.derive.clean import make_clean
from spine.ingest import fetch, ledger
from spine.reports.symbol import symbol_history
from spine.vocabulary import DATASET_WEEKLY, TIERS

HERE = Path(__file__).resolve().parent


def weeks_of(root: Path) -> list[str]:
    folder = root / "clean" / DATASET_WEEKLY / "tier=T1"
    return sorted(p.name.split("=")[1] for p in folder.iterdir() if p.name.startswith("week_start="))


_PLAN: dict = {}  # per worker process: the config and the ledger's state, read once (as the
# Snakefile computes the plan once and passes each job its windows)


def derive_one(args: tuple[str, str, str, str]) -> None:
    """Clean (name "clean") or one calculation of one (tier, week), as its job would."""
    root, name, tier, week = args
    if root not in _PLAN:
        _PLAN[root] = (config_.load(lake_root=root, as_of="2025-09-30",
                                    synthetic={"size": "full"}), ledger.LakeState.read(root))
    cfg, state = _PLAN[root]
    if name == "clean":
        make_clean(cfg, tier, week, state.held(tier, week))
    else:
        windows = {i.name: [w.isoformat() for w in state.window(tier, week, i.weeks)]
                   for i in registry.get(name).inputs if i.name not in registry.SOURCES}
        make_calc(cfg, name, tier, week, windows)


def stages() -> list[list[tuple[str, tuple[str, ...]]]]:
    """(name, tiers) per stage, in the order the DAG can run them: clean, then each
    calculation once everything it reads exists (all weeks of a stage run in parallel)."""
    level: dict[str, int] = {}
    for c in registry.CALCS:
        level[c.name] = 1 + max(level.get(i.name, 0) for i in c.inputs)
    out = [[("clean", TIERS)]]
    for n in range(1, max(level.values()) + 1):
        out.append([(c.name, c.tiers) for c in registry.CALCS if level[c.name] == n])
    return out


def derive_all(root: Path, weeks: list[str]) -> float:
    """Every stage's (tier, week) jobs on a pool of two processes, like `snakemake --cores 2`
    runs the DAG, without the per-job interpreter start-up."""
    started = time.monotonic()
    with ProcessPoolExecutor(2) as pool:
        for stage in stages():
            jobs = [(str(root), name, tier, week) for name, tiers in stage for tier in tiers
                    for week in weeks]
            list(pool.map(derive_one, jobs, chunksize=4))
    return time.monotonic() - started


def ensure_regsho(root: Path, weeks: list[str]) -> None:
    cfg = config_.load(lake_root=str(root), as_of="2025-09-30", synthetic={"size": "full"})
    for week in weeks:
        if not lake.path(root, "regsho_week", week_start=week).exists():
            fetch.fetch_regsho(cfg, week)


def symbol_year(root: Path, weeks: list[str]) -> tuple[str, float, int]:
    latest = pd.read_parquet(root / "calc" / "symbol_week" / "tier=T1" / f"week_start={weeks[-1]}")
    symbol = latest.nlargest(1, "total_shares")["symbol"].iloc[0]
    times = []
    for _ in range(5):
        started = time.monotonic()
        rows = symbol_history(str(root), "T1", symbol, weeks)
        times.append(time.monotonic() - started)
    return symbol, min(times), len(rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lake", default="/tmp/market-spine-bench-52w")
    parser.add_argument("--before", help="a checkout of earlier code to time first")
    parser.add_argument("--derive-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    root = Path(args.lake)
    if args.derive_only:
        print(f"{derive_all(root, weeks_of(root)):.1f}")
        return
    if not (root / ".built").exists():
        subprocess.run([sys.executable, str(HERE / "verify.py"), "--lake", str(root)], check=True)
    weeks = weeks_of(root)
    ensure_regsho(root, weeks)
    print(f"derive: {len(weeks)} weeks x 3 tiers, full size, from raw captures (no fetch)")
    if args.before:  # this script again, its `spine` imported from the earlier checkout
        out = subprocess.run([sys.executable, __file__, "--lake", str(root), "--derive-only"],
                             env=dict(os.environ, PYTHONPATH=args.before), capture_output=True,
                             text=True)
        if out.returncode:
            sys.exit(f"the derive with {args.before} failed:\n{out.stderr[-3000:]}")
        print(f"  before ({args.before}): {float(out.stdout.split()[-1]):.1f} s "
              "(clean and every calculation of its registry)")
    seconds = derive_all(root, weeks)
    print(f"  now: {seconds:.1f} s for clean and {len(registry.CALCS)} calculations "
          f"({', '.join(registry.names())}); target < 120 s")
    symbol, best, rows = symbol_year(root, weeks)
    print(f"one symbol's history ({symbol}, T1, {rows} symbol_week rows over {len(weeks)} "
          f"weeks, DuckDB): best of 5 {best:.3f} s; target < 0.2 s")


if __name__ == "__main__":
    main()
