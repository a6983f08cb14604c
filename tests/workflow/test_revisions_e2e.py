"""Revisions through the real Snakefile: an identical re-fetch reruns nothing downstream; a
restatement reruns exactly what depends on it (shown with Snakemake's dry-run summary); a
restated file imported by hand that fails its gate is recorded and reported."""

import re
import subprocess
import sys

import pandas as pd
import pytest

from spine import lake, ledger
from spine.sources import finra_files, synthetic
from tests.helpers import run_snakemake

pytestmark = pytest.mark.e2e

WEEKS = ["2025-06-23", "2025-06-30", "2025-07-07"]  # T2 weeks first published within 3 weeks


def job_counts(output: str) -> dict[str, int]:
    if "Nothing to be done" in output:
        return {}
    table = output.split("Job stats:")[1].split("\n\n")[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)
            if m[1] != "total"}


def test_revision_lifecycle(tmp_path):
    root = tmp_path / "lake"
    config = {"lake_root": str(root), "tiers": ["T2"], "revision_lookback_weeks": 3,
              "regsho": {"enabled": False},
              "synthetic": {"size": "small", "restate": {"every_nth_week": 0},
                            "revisions": [{"tier": "T2", "week_start": WEEKS[0],
                                           "published": "2025-08-15"}]}}

    def snake(as_of, *args, check=True):
        return run_snakemake(tmp_path, config, *args, "--config", f"as_of={as_of}", check=check)

    def receipts(as_of):
        return [str(lake.path(root, "fetch", tier="T2", week_start=w, fetch_key=f"asof-{as_of}"))
                for w in WEEKS]

    snake("2025-08-13")
    first = {w: lake.read_json(receipts("2025-08-13")[i])["capture_id"] for i, w in enumerate(WEEKS)}

    # An identical re-fetch: the fetches run, and then nothing downstream has anything to do.
    snake("2025-08-14", *receipts("2025-08-14"))
    assert job_counts(snake("2025-08-14", "--dry-run").stdout) == {}
    assert [lake.read_json(p)["new_capture"] for p in receipts("2025-08-14")] == [False] * 3

    # A restatement of the first week: after the fetches, the new capture needs its gate, and the
    # two later weeks their count bands; the rest waits on the verdict (no calculation yet) ...
    snake("2025-08-15", *receipts("2025-08-15"))
    new = lake.read_json(receipts("2025-08-15")[0])["capture_id"]
    assert new != first[WEEKS[0]]
    pending = job_counts(snake("2025-08-15", "--dry-run").stdout)
    assert pending["gate"] == 3 and "calc" not in pending and "fetch" not in pending
    # ... and once it is gated, exactly what depends on that week: its calculations, the three
    # rolling windows that contain it, the reports that show them, the revision report.
    gate = lake.path(root, "gate", tier="T2", week_start=WEEKS[0], capture_id=new)
    snake("2025-08-15", str(gate))
    expected = {"calc": 1, "symbol_rolling": 3, "report": 3, "revision_report": 1,
                "revision_index": 1, "gate_summary": 1, "weekly": 1}
    assert job_counts(snake("2025-08-15", "--dry-run").stdout) == expected
    proc = snake("2025-08-15")
    ran = proc.stdout + proc.stderr
    executed = re.findall(r"^(?:local)?(?:rule|checkpoint) (\w+):", ran, re.M)
    assert {r: executed.count(r) for r in set(executed)} == expected
    html = lake.path(root, "revision", tier="T2", week_start=WEEKS[0], old=first[WEEKS[0]],
                     new=new).read_text()
    assert re.search(r"\d+ added, \d+ removed, \d+ changed", html)
    assert "Effect on rolling outputs" in html and "executed fetch notebook" in html
    index = lake.path(root, "revision_index").read_text()
    assert f"{first[WEEKS[0]]}</code> &rarr; <code>{new}" in index
    cli = subprocess.run([sys.executable, "-m", "spine.cli", "diff", "--tier", "T2",
                          "--week-start", WEEKS[0], "--lake-root", str(root)],
                         capture_output=True, text=True, check=True)
    assert re.fullmatch(r"\d+ added, \d+ removed, \d+ changed", cli.stdout.splitlines()[0])

    # A restated file imported by hand that fails its gate (a duplicated row): recorded,
    # refused, clean untouched, and `reports` renders its revision report.
    week = WEEKS[1]
    clean_before = lake.path(root, "clean", tier="T2", week_start=week).read_bytes()
    rows = synthetic.weekly_rows("T2", week, "2025-08-15", size="small")
    files = []
    for kind, stype in finra_files.KINDS.items():
        part = rows[rows["summaryTypeCode"] == stype]
        if kind == "ats":
            part = pd.concat([part, part.head(1)])  # a restatement with a duplicated row
        path = tmp_path / f"T2_{week}_{kind}.txt"
        path.write_text(finra_files.render_download(part))
        files.append(str(path))
    proc = subprocess.run([sys.executable, "-m", "spine.cli", "import-file", *files, "--tier",
                           "T2", "--week-start", week, "--lake-root", str(root)],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "FAIL  unique_natural_key" in proc.stdout
    assert lake.path(root, "clean", tier="T2", week_start=week).read_bytes() == clean_before
    refused = ledger.events(str(root), lake.DATASET).query("event == 'refused'")
    assert len(refused) == 1
    assert job_counts(snake("2025-08-15", "reports", "--dry-run").stdout) == {
        "report": 1, "revision_report": 1, "revision_index": 1, "reports": 1}
    snake("2025-08-15", "reports")
    refused_capture = refused.iloc[0]["capture_id"]
    html = lake.path(root, "revision", tier="T2", week_start=week,
                     old=refused.iloc[0]["previous_capture"], new=refused_capture).read_text()
    assert "refused" in html and "unique_natural_key" in html
