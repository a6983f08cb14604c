"""`spine explain` on a lake the Snakefile wrote: a weekly report back to the fetches."""

import json
from collections import Counter

import pytest

from spine import lake
from spine.lake import verify
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


def test_each_report_records_the_inputs_its_rule_declares(revision_runs):
    """What a report's manifest record says it was made from (spine.steps.report_inputs for the
    notebook reports, `--inputs` for the indexes) is what its rule declares, as Snakemake's own
    `--detailed-summary` lists it; a revision report leaves out only the earlier weeks'
    `symbol_week` it reads for context (spine.steps.report_inputs says why)."""
    root = str(revision_runs.root)
    proc = revision_runs.snake("reports", "--detailed-summary")
    lines = [line.split("\t") for line in proc.stdout.splitlines() if line.startswith(root)]
    records = verify.manifest(revision_runs.root)
    seen = Counter()
    for out, _, rule, _, inputs, *_ in lines:
        if not rule.endswith(("_report", "_index")) or rule == "gate_report":
            continue
        rel = out[len(root) + 1:]
        declared = {p[len(root) + 1:] for p in inputs.split(",") if p.startswith(root + "/")}
        recorded = set(records[rel]["inputs"])
        seen[rule] += 1
        if rule == "revision_report":
            context = declared - recorded
            assert recorded < declared and all(p.startswith("calc/symbol_week/") for p in context)
        else:
            assert recorded == declared, (rule, rel, declared ^ recorded)
    assert seen == {"weekly_report": 8, "revision_report": 1, "revision_index": 1,
                    "report_index": 1}, seen
