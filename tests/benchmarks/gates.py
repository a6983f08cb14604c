"""Benchmark: what reconciling a week with FINRA's aggregates costs, against the week's gate time
(target: at most 10%). Prints figures; asserts nothing.

For each tier, one full-size synthetic week (detail rows and FINRA's aggregates) is fetched into
a fresh lake, then decided again and again with `spine regate` (`decide.regate`: read the raw
capture, convert, run every check, record the verdict), alternately with the reconciliation
checks on and with them set to SKIP, in the same process (median of the runs), and the
reconciliation alone on the capture as the gate reads it (median of 20): its share of the gate.

    python tests/benchmarks/gates.py                          (make bench)
"""

from __future__ import annotations

import statistics
import tempfile
import time

import pyarrow.parquet as pq

from spine import config as config_
from spine import lake
from spine.ingest import decide
from spine.ingest import fetch
from spine.ingest import reconcile

AS_OF, WEEK, RUNS = "2025-09-30", "2025-06-02", 5
RECONCILE = ("reconciles_by_symbol", "reconciles_by_firm")


def main() -> None:
    with tempfile.TemporaryDirectory() as root:
        base = config_.load(lake_root=root, as_of=AS_OF, source="synthetic",
                            synthetic={"size": "full"})
        off = {**base, "gates": {**base["gates"], "severity": {c: "SKIP" for c in RECONCILE}}}
        for tier in ("T1", "T2", "OTCE"):
            receipt = fetch.fetch(base, tier, WEEK, fetch_key="asof-" + AS_OF)
            report = decide.gate(base, tier, WEEK, receipt["capture_id"])
            outcome = {c.check: c.status for c in report.checks if c.check in RECONCILE}
            timed = {"with": [], "without": []}
            for _ in range(RUNS):
                for name, cfg in (("with", base), ("without", off)):
                    start = time.perf_counter()
                    decide.regate(cfg, tier, WEEK, receipt["capture_id"])
                    timed[name].append(time.perf_counter() - start)
            with_, without = (statistics.median(timed[k]) for k in ("with", "without"))
            # the difference of two gates is within their noise: time the reconciliation itself
            raw = pq.read_table(lake.path(root, "capture", tier=tier, week_start=WEEK,
                                          capture_id=receipt["capture_id"])).to_pandas()
            alone = []
            for _ in range(4 * RUNS):
                start = time.perf_counter()
                reconcile.reconcile(raw)
                alone.append(time.perf_counter() - start)
            cost = statistics.median(alone)
            print(f"gate of a full {tier} week ({receipt.get('rows', '?'):,} raw rows): "
                  f"{with_:.3f} s with the reconciliation ({without:.3f} s without); the "
                  f"reconciliation alone {cost * 1000:.0f} ms = {cost / with_:.0%} of the gate "
                  f"(target at most 10%); {', '.join(f'{k} {v}' for k, v in outcome.items())}")


if __name__ == "__main__":
    main()
