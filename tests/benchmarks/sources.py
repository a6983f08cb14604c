"""Benchmark: the real-source code paths on a full-size T2 week (~170k rows).

    python tests/benchmarks/sources.py

Prints rows per second of (1) the FINRA Query API client against the loopback emulator with
pages of 5000 (JSON over HTTP, parsing and normalising included; the emulator's own work runs in
the same process and is included too, so this is a lower bound), and (2) the download-file
parser on the same week written in the published 8-column layout (ATS and non-ATS files).
"""

from __future__ import annotations

import resource
import time

from spine.emulator import Emulator
from spine.ingest.sources import catalog, finra_files, synthetic

AS_OF, TIER, WEEK = "2025-08-01", "T2", "2025-06-02"


def main() -> None:
    rows = synthetic.weekly_rows(TIER, WEEK, AS_OF, size="full", aggregates=False)
    with Emulator(as_of=AS_OF, size="full") as em:
        em.weekly(TIER, WEEK)  # warm the emulator's cache: measure the client, not the generator
        source = catalog.get("finra_api", {"finra_api": {"base_url": em.base_url,
                                                         "requests_per_second": 20}})
        start = time.perf_counter()
        capture = source.fetch("finra_otc_weekly", {"tier": TIER, "week_start": WEEK})
        api_seconds = time.perf_counter() - start
    pages = len(capture.payload)
    payload_mb = sum(len(b) for _, b in capture.payload) / 1e6
    print(f"FINRA API client, {TIER} week {WEEK}: {len(capture.table):,} rows in {pages} pages "
          f"({payload_mb:.0f} MB JSON) in {api_seconds:.2f} s = "
          f"{len(capture.table) / api_seconds:,.0f} rows/s (rate limit 20 requests/s)")

    files = {}
    for kind, stype in finra_files.KINDS.items():
        files[kind] = finra_files.render_download(rows[rows["summaryTypeCode"] == stype]).encode()
    start = time.perf_counter()
    parsed = sum(len(finra_files.parse(data, f"{TIER}_{WEEK}_{kind}.txt", tier=TIER,
                                       week_start=WEEK)) for kind, data in files.items())
    parse_seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    size_mb = sum(len(d) for d in files.values()) / 1e6
    print(f"download-file parser, {TIER} week {WEEK}: {parsed:,} rows ({size_mb:.0f} MB) in "
          f"{parse_seconds:.2f} s = {parsed / parse_seconds:,.0f} rows/s, "
          f"process peak RSS {peak:,.0f} MB")


if __name__ == "__main__":
    main()
