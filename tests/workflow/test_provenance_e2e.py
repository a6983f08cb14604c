"""`spine explain` on a lake the Snakefile wrote: a weekly report back to the fetches."""

import json

import pytest

from spine import lake
from spine.cli import main

pytestmark = pytest.mark.e2e


def test_explain_a_weekly_report_reaches_the_fetch_requests(revision_runs, capsys):
    report = lake.path(revision_runs.root, "weekly_report", week_start="2025-06-16")
    assert main(["explain", str(report), "--json"]) == 0
    tree = json.loads(capsys.readouterr().out)
    assert tree["made"]["step"] == "weekly_report" and "config" in tree["made"]
    assert tree["made"]["code"]["commit"]  # the run set it once for its jobs
    kinds = {n["path"].split("/")[0] for n in tree["inputs"]}
    assert kinds == {"gates", "calc"}, kinds

    def fetches(node):
        found = [node["fetch"]] if "fetch" in node else []
        for child in node.get("inputs", []) + ([node["capture"]] if "capture" in node else []):
            found += fetches(child)
        return found

    got = fetches(tree)
    assert got and all(f["source"] == "synthetic" and f["request"]["tier"] == "T2" for f in got)
    assert any(f["request"]["week_start"] == "2025-06-16" for f in got)
    notebook = revision_runs.root / "runs" / "weekly_report" / "week_start=2025-06-16.ipynb"
    assert main(["explain", str(notebook)]) == 0
    assert "fetched from synthetic" in capsys.readouterr().out
