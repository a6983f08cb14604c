"""Revisions by hand on the shared 8-week lake: `spine diff` on the recorded restatement, and a
restated file imported by hand that fails its gate: recorded, refused, clean untouched, and
`snakemake reports` renders exactly its gate report, its week's report, its revision report
and the index."""

import re
import subprocess
import sys

import pandas as pd
import pytest

from spine import lake
from spine.ingest.sources import finra_files, synthetic
from spine.vocabulary import DATASET_WEEKLY
from tests.helpers import executed, planned
from tests.workflow.conftest import RESTATED
from spine.ingest import history

pytestmark = pytest.mark.e2e


def test_spine_diff_shows_the_restatement(revision_runs):
    cli = subprocess.run([sys.executable, "-m", "spine.cli", "diff", "--tier", "T2",
                          "--week-start", RESTATED, "--lake-root", str(revision_runs.root)],
                         capture_output=True, text=True, check=True)
    assert re.fullmatch(r"\d+ added, \d+ removed, \d+ changed", cli.stdout.splitlines()[0])


def test_a_refused_import_is_recorded_and_reported(revision_runs, tmp_path):
    root = revision_runs.copy(tmp_path / "lake")
    week = "2025-06-23"
    clean_before = lake.path(root, "clean", tier="T2", week_start=week).read_bytes()
    rows = synthetic.weekly_rows("T2", week, "2025-08-15", size="small", aggregates=False)
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
    refused = history.events(str(root), DATASET_WEEKLY).query("event == 'refused'")
    assert len(refused) == 1
    jobs = planned(revision_runs.snake("reports", "-n", root=root))
    assert jobs == {"gate_report": 1, "weekly_report": 1, "revision_report": 1,
                    "revision_index": 1, "report_index": 1, "reports": 1,
                    "retract": 1}  # a new verdict: a new sweep
    assert executed(revision_runs.snake("reports", root=root)) == jobs
    assert lake.path(root, "clean", tier="T2", week_start=week).read_bytes() == clean_before
    html = lake.path(root, "revision_report", tier="T2", week_start=week,
                     old=refused.iloc[0]["previous_capture"],
                     new=refused.iloc[0]["capture_id"]).read_text()
    assert "refused" in html and "unique_natural_key" in html
    assert "Refused by a gate: T2" in lake.path(root, "weekly_report", week_start=week).read_text()
    assert planned(revision_runs.snake("reports", "-n", root=root)) == {}
