"""Benchmark: detect and process one revised T2 week on a 26-week `full` lake.

    python tests/benchmarks/revision.py

Builds a lake with a 26-week backfill of T2 at full size (~170k rows a week), then runs the
weekly update at two as-of dates a day apart, between which the synthetic source restates one
T2 week inside the revision lookback. Prints the wall time of each weekly update and the jobs
Snakemake ran, by rule. The second update re-fetches all 8 lookback weeks, so it shows both an
identical re-fetch (7 weeks) and a revision (1 week) at once.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
START, END = "2025-01-06", "2025-06-30"  # 26 weeks
REVISED = "2025-06-16"  # a T2 week inside the lookback of the updates below
BEFORE, AFTER = "2025-08-20", "2025-08-21"


def snakemake(configfile: Path, *args: str) -> tuple[float, Counter]:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "snakemake", *args, "--cores", "2",
                           "--configfile", str(configfile)], cwd=REPO, env=env,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode:
        sys.exit(proc.stdout[-3000:] + proc.stderr[-3000:])
    jobs = Counter(re.findall(r"^(?:local)?(?:rule|checkpoint) (\w+):",
                              proc.stdout + proc.stderr, re.M))
    return seconds, jobs


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="spine-revision-bench-") as tmp:
        configfile = Path(tmp) / "config.yaml"
        configfile.write_text(yaml.safe_dump({
            "lake_root": str(Path(tmp) / "lake"), "tiers": ["T2"],
            "synthetic": {"size": "full", "restate": {"every_nth_week": 0},
                          "revisions": [{"tier": "T2", "week_start": REVISED,
                                         "published": AFTER}]}}))
        seconds, jobs = snakemake(configfile, "backfill", "--config", f"start={START}",
                                  f"end={END}", f"as_of={BEFORE}")
        print(f"26-week full T2 backfill: {seconds:,.0f} s, {sum(jobs.values())} jobs")
        seconds, jobs = snakemake(configfile, "--config", f"as_of={BEFORE}")
        print(f"weekly update as of {BEFORE} (first, fills the lookback): {seconds:,.1f} s, "
              f"{sum(jobs.values())} jobs {dict(jobs)}")
        seconds, jobs = snakemake(configfile, "--config", f"as_of={AFTER}")
        print(f"weekly update as of {AFTER}, T2 {REVISED} restated: {seconds:,.1f} s, "
              f"{sum(jobs.values())} jobs {dict(jobs)}")
        seconds, jobs = snakemake(configfile, "--config", f"as_of={AFTER}")
        print(f"no-op rerun: {seconds:,.1f} s, {sum(jobs.values())} jobs")


if __name__ == "__main__":
    main()
