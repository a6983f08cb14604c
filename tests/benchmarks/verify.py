"""Benchmark: `spine verify` on a 52-week full-size lake (target: under 10 s on 2 cores).
Prints figures; asserts nothing.

The lake is built in-process (fetch, gate, clean and the per-week calculations of every tier
and week, through spine.ingest and tests.helpers.derive: the files the Snakefile's gate, clean
and calc steps write, without the notebooks and reports) into --lake, once; later runs reuse it.

    python tests/benchmarks/verify.py --lake /tmp/market-spine-bench-52w       (make bench)
    python tests/benchmarks/verify.py --lake /tmp/x --weeks 4 --size small      quick check
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

from spine import config as config_
from spine.ingest import decide, fetch
from spine.lake import verify
from spine.vocabulary import TIERS

REPO = Path(__file__).resolve().parents[2]


def build(root: Path, weeks: int, size: str) -> None:
    from tests.helpers import derive  # the repository is on sys.path once run as a script

    last = dt.date(2025, 6, 30)
    cfg = config_.load(lake_root=str(root), as_of="2025-09-30", synthetic={"size": size})
    mondays = [last - dt.timedelta(weeks=n) for n in range(weeks)][::-1]
    started = time.monotonic()
    for i, week in enumerate(mondays):
        for tier in TIERS:
            receipt = fetch.fetch(cfg, tier, week, "asof-2025-09-30")
            decide.gate(cfg, tier, week, receipt["capture_id"])
            derive(cfg, tier, week)
            decide.gate_reports(cfg, tier, week)
        print(f"  built week {i + 1}/{weeks} ({week}) at {time.monotonic() - started:.0f} s",
              flush=True)
    (root / ".built").write_text(f"{weeks} {size}\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lake", default="/tmp/market-spine-bench-52w")
    parser.add_argument("--weeks", type=int, default=52)
    parser.add_argument("--size", choices=["small", "full"], default="full")
    args = parser.parse_args()
    root = Path(args.lake)
    if not (root / ".built").exists():
        print(f"building a {args.weeks}-week {args.size} lake in {root} (once)")
        build(root, args.weeks, args.size)
    files = verify.files_on_disk(root)
    size = sum(files.values())
    times = []
    for _ in range(3):
        started = time.monotonic()
        problems = verify.verify(root)
        times.append(time.monotonic() - started)
    print(f"spine verify: {len(files):,} files, {size / 1e6:,.0f} MB, "
          f"{len(problems)} problem(s); best of 3 {min(times):.2f} s, worst {max(times):.2f} s "
          f"(target < 10 s for 52 weeks)")


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
