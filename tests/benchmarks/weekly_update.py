"""Benchmark: the weekly update for one `full` week of all three tiers, from an empty lake, then
a no-op rerun. Prints wall time per step, rows per second and peak memory per job.

    make bench              (or: python tests/benchmarks/weekly_update.py [--week 2025-06-02])

Targets on a 2-core machine: full update < 60 s, no-op rerun < 5 s, every job < 1.5 GB peak RSS.
Per-job figures come from Snakemake's own `benchmark:` records (<lake>/benchmarks/), whose
max_rss covers the whole process tree of a job: papermill and its notebook kernel.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def run(configfile: Path, week: str, env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "snakemake", "backfill", "--cores", "2", "--quiet", "rules",
         "--configfile", str(configfile), "--config", f"start={week}", f"end={week}"],
        cwd=REPO, env=env, check=True)
    return time.perf_counter() - start


def step_times(root: Path) -> list[tuple[str, str, float, float]]:
    """(step, partition, seconds, peak RSS MB) per job, from Snakemake's benchmark files."""
    out = []
    for tsv in sorted((root / "benchmarks").rglob("*.tsv")):
        header, values = tsv.read_text().splitlines()[:2]
        record = dict(zip(header.split("\t"), values.split("\t")))
        rel = tsv.relative_to(root / "benchmarks")
        step, part = rel.parts[0], "/".join(p for p in Path(*rel.parts[1:]).with_suffix("").parts
                                            if p.startswith(("tier=", "week_start=")))
        rss = float(record["max_rss"]) if record["max_rss"] not in ("", "NA", "-") else 0.0
        out.append((step, part, float(record["s"]), rss))
    order = {"fetch": 0, "gate": 1, "calc": 2, "report": 3}
    return sorted(out, key=lambda r: (order.get(r[0], 9), r[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--week", default="2025-06-02")
    parser.add_argument("--as-of", default="2025-08-01")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="spine-bench-") as tmp:
        root = Path(tmp) / "lake"
        configfile = Path(tmp) / "config.yaml"
        configfile.write_text(yaml.safe_dump({
            "lake_root": str(root), "as_of": args.as_of, "tiers": ["T1", "T2", "OTCE"],
            "synthetic": {"seed": 7, "size": "full", "revisions": []}}))
        env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
        full = run(configfile, args.week, env)
        noop = run(configfile, args.week, env)
        rows = {}
        for receipt in (root / "fetches" / "finra_otc_weekly").rglob("asof-*.json"):
            r = json.loads(receipt.read_text())
            rows[r["tier"]] = r["rows"]
        total_rows = sum(rows.values())
        print(f"\nWeekly update, week {args.week}, full size: "
              + ", ".join(f"{t} {n:,} rows" for t, n in sorted(rows.items())))
        print(f"{'step':8} {'partition':36} {'seconds':>8} {'rows/s':>10} {'peak MB':>8}")
        worst = 0.0
        for step, part, seconds, peak in step_times(root):
            tier = part.split("/")[0].removeprefix("tier=")
            n = rows.get(tier, total_rows)
            rate = f"{n / seconds:,.0f}" if seconds else "-"
            worst = max(worst, peak)
            print(f"{step:8} {part:36} {seconds:8.1f} {rate:>10} {peak:8.0f}")
        print(f"\nfull weekly update: {full:6.1f} s wall ({total_rows / full:,.0f} rows/s end to end)"
              f"   target < 60 s")
        print(f"no-op rerun:        {noop:6.1f} s wall   target < 5 s")
        print(f"peak memory of any job: {worst:,.0f} MB   target < 1,536 MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
