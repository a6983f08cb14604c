"""Overrides on record and `spine regate`: the ledger decides, clean and asof follow."""

import datetime as dt
import subprocess
import sys

import pytest

from spine import config as config_
from spine.ingest import ledger
from spine.ingest.ledger import LakeState
from spine.ingest import decide
from spine.ingest import fetch
from spine.ingest import history

TIER, WEEK = "T2", dt.date(2025, 6, 2)
BEFORE, AFTER = "2025-08-14", "2025-08-15"


@pytest.fixture
def refused(tmp_path):
    """A week accepted, then a restatement refused by a (strict) previous-version band."""
    cfg = config_.load(lake_root=str(tmp_path / "lake"), as_of=BEFORE, synthetic={
        "size": "small", "restate": {"every_nth_week": 0},
        "revisions": [{"tier": TIER, "week_start": WEEK.isoformat(), "published": AFTER}]})
    first = fetch.fetch(cfg, TIER, WEEK, f"asof-{BEFORE}")["capture_id"]
    assert decide.gate(cfg, TIER, WEEK, first).status == "PASS"
    strict = dict(cfg, as_of=AFTER, gates={**cfg["gates"], "previous_change_max": 0.0})
    second = fetch.fetch(strict, TIER, WEEK, f"asof-{AFTER}")["capture_id"]
    report = decide.gate(strict, TIER, WEEK, second)
    assert report.status == "FAIL" and [c.check for c in report.failures] == ["symbols_vs_previous"]
    return cfg, first, second


def spine(*args, root):
    return subprocess.run([sys.executable, "-m", "spine.cli", *args, "--lake-root", root],
                          capture_output=True, text=True)


def test_an_override_lets_the_refused_capture_through_on_record_and_is_reversible(refused):
    cfg, first, second = refused
    root = cfg["lake_root"]
    wrong = spine("override", "--tier", TIER, "--week-start", str(WEEK), "--check",
                  "rows_in_band", "--reason", "x", root=root)
    assert wrong.returncode == 2 and "failed symbols_vs_previous; --check must name exactly" \
        in wrong.stderr
    done = spine("override", "--tier", TIER, "--week-start", str(WEEK), "--check",
                 "symbols_vs_previous", "--reason", "FINRA confirmed the restatement", root=root)
    assert done.returncode == 0, done.stderr
    # the next command it prints is for this lake, not the default one
    assert f"then: snakemake --cores 2 reports --config lake_root={root}" in done.stdout
    state = LakeState.read(root).get(TIER, WEEK)
    assert state.held == second and second in state.overrides
    event = ledger.read_event(ledger.ledger_dir(root, TIER, WEEK) / state.overrides[second].file)
    assert event["reason"] == "FINRA confirmed the restatement"
    assert event["report"]["checks"] == ["symbols_vs_previous"] and event["report"]["by"]
    assert set(history.as_known_at(root=root)["capture_id"]) == {second}
    undo = spine("override", "--revoke", "--tier", TIER, "--week-start", str(WEEK),
                 "--reason", "taken back", root=root)
    assert undo.returncode == 0, undo.stderr
    assert LakeState.read(root).get(TIER, WEEK).held == first
    assert set(history.as_known_at(root=root)["capture_id"]) == {first}
    v = history.validity(root, "finra_otc_weekly")
    assert list(v["capture_id"]) == [first, second, first] and list(v["event"]) == [
        "accepted", "overridden", "revoked"]


def test_regate_applies_new_settings_only_when_asked_and_records_it(refused):
    cfg, first, second = refused
    root = cfg["lake_root"]
    # the held capture, decided again under settings that refuse it: clean lets it go
    strict = dict(cfg, gates={**cfg["gates"], "max_row_shares": 1.0})
    held, report = decide.regate(strict, TIER, WEEK)
    assert report.status == "FAIL" and "values_finite" in {c.check for c in report.failures}
    assert held is None and LakeState.read(root).get(TIER, WEEK).held is None
    # and again under the normal settings: accepted, clean holds it again
    held, report = decide.regate(cfg, TIER, WEEK, first)
    assert report.status == "PASS" and held == first
    # the refused restatement, decided again with the default settings, is accepted
    held, report = decide.regate(cfg, TIER, WEEK, second)
    assert report.status == "PASS" and held == second
    ev = history.events(root, "finra_otc_weekly")
    assert (ev["run"] == "spine regate").sum() == 3
    cli = spine("regate", "--all", root=root)
    assert cli.returncode == 0 and "1 capture(s) decided again, 0 week(s) changed" in cli.stdout


def test_the_revision_report_says_who_let_the_restatement_through(refused):
    from spine.reports import revision as revisions

    cfg, first, second = refused
    root = cfg["lake_root"]
    decide.override(cfg, TIER, WEEK, ["symbols_vs_previous"], "confirmed with FINRA")
    decide.gate_reports(cfg, TIER, WEEK)
    d = revisions.diff(root, TIER, WEEK, first, second)
    heading = revisions.title(root, d)
    assert "then **let through by an override** of" in heading
    assert '"confirmed with FINRA"' in heading
