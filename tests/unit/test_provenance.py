"""What made a file: every manifest record's stamp (spine/lake/stamp.py) and `spine explain`
walking a calculation back to the raw capture and the fetch it came from."""

import json
import os
import subprocess

import pytest

from spine import config as config_
from spine import lake, steps
from spine.cli import main
from spine.ingest import decide, fetch
from spine.lake import stamp, verify
from tests.helpers import REPO, derive

TIER, WEEKS, AS_OF = "T2", ("2025-06-02", "2025-06-09"), "2025-08-14"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("provenance") / "lake"
    cfg = config_.load(lake_root=str(root), as_of=AS_OF, synthetic={"size": "small"})
    receipts = {}
    for week in WEEKS:
        receipts[week] = fetch.fetch(cfg, TIER, week, f"asof-{AS_OF}")
        decide.gate(cfg, TIER, week, receipts[week]["capture_id"])
        derive(cfg, TIER, week)
    return root, receipts


def explain(capsys, *args):
    code = main(["explain", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_explain_walks_a_calculation_back_to_its_fetch(built, capsys):
    root, receipts = built
    calc = lake.path(root, "calc", calc="symbol_trend", tier=TIER, week_start=WEEKS[1])
    code, out, _ = explain(capsys, calc, "--json")
    assert code == 0
    tree = json.loads(out)
    assert tree["path"] == "calc/symbol_trend/tier=T2/week_start=2025-06-09/part-0.parquet"
    assert tree["made"]["code"] == stamp.code_version()[0]  # this checkout's commit, dirty flag
    assert tree["made"]["lock"] == stamp.code_version()[1]

    def raws(node):
        found = [node] if node["path"].startswith("raw/") else []
        return found + [r for child in node.get("inputs", []) for r in raws(child)]

    reached = {n["fetch"]["capture_id"]: n["fetch"] for n in raws(tree)}
    # its window reads symbol_week of both weeks, each made from clean, made from raw
    assert set(reached) == {r["capture_id"] for r in receipts.values()}
    for week, receipt in receipts.items():
        got = reached[receipt["capture_id"]]
        assert got["request"] == receipt["request"] and got["source"] == "synthetic"
        assert got["receipts"] == [
            f"fetches/finra_otc_weekly/tier=T2/week_start={week}/asof-{AS_OF}.json"]
    code, text, _ = explain(capsys, calc)
    assert "fetched from synthetic" in text and f"asof-{AS_OF}.json" in text
    assert "(its inputs are shown above)" not in text.split("made from:")[0]


def test_a_step_records_its_config_and_a_report_its_declared_inputs(built, tmp_path):
    """A step's StepConfig puts the step and the config it read on every record it writes;
    what a weekly report reads is what rules/derive.smk declares (spine.steps.report_inputs)."""
    root, receipts = built
    os.environ["SPINE_PRODUCER"] = "weekly_report runs/weekly_report/test.ipynb"
    try:
        cfg = steps.StepConfig("weekly_report", {"lake_root": str(root), "report": {}})
        from spine.ingest.ledger import LakeState

        view = LakeState.read(root).week_view(WEEKS[1], False)
        decide.gate_reports({"lake_root": str(root)}, TIER, WEEKS[1])
        inputs = steps.report_inputs("weekly_report", root,
                                     {"week_start": WEEKS[1], "tiers": view})
        made = lake.made_from(root, *inputs)
        with stamp.reading(made):
            lake.write_file_atomic(lake.path(root, "weekly_report", week_start=WEEKS[1]),
                                   b"<html></html>")
    finally:
        del os.environ["SPINE_PRODUCER"]
    rec = verify.manifest(root)["reports/weekly/week_start=2025-06-09.html"]
    assert rec["made"]["step"] == "weekly_report"
    assert rec["made"]["config"] == json.loads(json.dumps(dict(cfg)))
    assert f"gates/finra_otc_weekly/tier=T2/week_start={WEEKS[1]}/capture_id=" \
           f"{receipts[WEEKS[1]]['capture_id']}.json" in rec["inputs"]
    assert f"calc/venue_share/tier=T2/week_start={WEEKS[0]}/part-0.parquet" in rec["inputs"]
    assert rec["inputs"] == made


def test_explain_errors_name_the_path_and_the_fix(built, tmp_path, capsys):
    root, _ = built
    outside = tmp_path / "notes.txt"
    outside.write_text("x")
    code, _, err = explain(capsys, outside)
    assert code == 2 and "is not in a lake" in err and str(outside) in err
    stray = root / "calc" / "stray.parquet"
    stray.write_bytes(b"x")
    try:
        code, _, err = explain(capsys, stray)
    finally:
        stray.unlink()
    assert code == 2 and "calc/stray.parquet" in err and "spine verify" in err


def test_the_code_version_costs_one_git_call_per_process_and_none_in_a_run(monkeypatch):
    calls = []
    real = subprocess.run
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append(a) or real(*a, **k))
    monkeypatch.setattr(stamp, "_code", {})
    monkeypatch.delenv(stamp.CODE_VAR, raising=False)
    for _ in range(3):
        stamp.stamp("x")
    assert len(calls) == 2  # rev-parse and status, once
    monkeypatch.setattr(stamp, "_code", {})
    monkeypatch.setenv(stamp.CODE_VAR, json.dumps({"commit": "c0ffee", "dirty": False}))
    monkeypatch.setenv(stamp.LOCK_VAR, "ab" * 32)
    assert stamp.stamp("x") == {"step": "x", "code": {"commit": "c0ffee", "dirty": False},
                                "lock": "ab" * 32}
    assert len(calls) == 2


def test_an_installed_package_is_not_a_checkout(tmp_path):
    assert stamp.code_version(tmp_path) == (stamp.NOT_A_CHECKOUT, None)
    assert (REPO / ".git").exists() and isinstance(stamp.code_version()[0], dict)
