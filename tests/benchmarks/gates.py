"""Benchmark: what reconciling a week with FINRA's aggregates costs, against the week's gate time
(target: at most 10%). Prints figures; asserts nothing.

For each tier, one full-size synthetic week (detail rows and FINRA's aggregates) is fetched into
a fresh lake, then decided again and again with `spine regate` (`pipeline.regate`: read the raw
capture, convert, run every check, record the verdict), alternately with the reconciliation
checks on and with them set to SKIP, in the same process. Median of the runs.

    python tests/benchmarks/gates.py                          (make bench)
"""

from __future__ import annotations

import statistics
import tempfile
import time

from spine import config as config_
from spine import pipeline

AS_OF, WEEK, RUNS = "2025-09-30", "2025-06-02", 5
RECONCILE = ("reconciles_by_symbol", "reconciles_by_firm")


def main() -> None:
    with tempfile.TemporaryDirectory() as root:
        base = config_.load(lake_root=root, as_of=AS_OF, source="synthetic",
                            synthetic={"size": "full"})
        off = {**base, "gates": {**base["gates"], "severity": {c: "SKIP" for c in RECONCILE}}}
        for tier in ("T1", "T2", "OTCE"):
            receipt = pipeline.fetch(base, tier, WEEK, fetch_key="asof-" + AS_OF)
            report = pipeline.gate(base, tier, WEEK, receipt["capture_id"])
            outcome = {c.check: c.status for c in report.checks if c.check in RECONCILE}
            timed = {"with": [], "without": []}
            for _ in range(RUNS):
                for name, cfg in (("with", base), ("without", off)):
                    start = time.perf_counter()
                    pipeline.regate(cfg, tier, WEEK, receipt["capture_id"])
                    timed[name].append(time.perf_counter() - start)
            with_, without = (statistics.median(timed[k]) for k in ("with", "without"))
            share = (with_ - without) / with_
            print(f"gate of a full {tier} week ({receipt.get('rows', '?'):,} raw rows): "
                  f"{with_:.3f} s with the reconciliation, {without:.3f} s without; the "
                  f"reconciliation {with_ - without:.3f} s = {share:.0%} of the gate "
                  f"(target at most 10%); {', '.join(f'{k} {v}' for k, v in outcome.items())}")


if __name__ == "__main__":
    main()
