"""Revisions without Snakemake: the ledger, diffs, validity intervals, as-of queries, pinning,
and a kill at every write of a revision."""

import datetime as dt
import time

import duckdb
import pandas as pd
import pytest

import spine
from spine import config as config_
from spine import lake
from spine.ingest.ledger import LakeState
from spine.ingest import decide
from tests.helpers import derive
from spine.ingest import fetch
from spine.derive.clean import read_clean
from spine.reports import revision as revisions
from spine.schemas import NATURAL_KEY
from spine.vocabulary import DATASET_WEEKLY
from tests.helpers import REPO
from spine.ingest import history

TIER, WEEK = "T2", dt.date(2025, 6, 2)
BEFORE, AFTER = "2025-08-14", "2025-08-15"  # the synthetic source restates the week on AFTER


@pytest.fixture
def lake_cfg(tmp_path):
    cfg = config_.load(lake_root=str(tmp_path / "lake"), as_of=BEFORE, synthetic={
        "size": "small", "restate": {"every_nth_week": 0},
        "revisions": [{"tier": TIER, "week_start": WEEK.isoformat(), "published": AFTER}]})
    receipt = fetch.fetch(cfg, TIER, WEEK, f"asof-{BEFORE}")
    decide.gate(cfg, TIER, WEEK, receipt["capture_id"])
    derive(cfg, TIER, WEEK)
    return cfg


def revise(cfg, as_of=AFTER, **gate_overrides):
    later = dict(cfg, as_of=as_of)
    if gate_overrides:
        later["gates"] = {**cfg["gates"], **gate_overrides}
    receipt = fetch.fetch(later, TIER, WEEK, f"asof-{as_of}")
    report = decide.gate(later, TIER, WEEK, receipt["capture_id"])
    derive(later, TIER, WEEK)  # what the derive stage does: clean follows the ledger
    decide.gate_reports(later, TIER, WEEK)
    return receipt, report


def held(cfg):
    """The capture the ledger says clean holds."""
    return LakeState.read(cfg["lake_root"]).get(TIER, WEEK).held


def clean_path(cfg):
    return lake.path(cfg["lake_root"], "clean", tier=TIER, week_start=WEEK)


def test_identical_refetch_is_seen_again_and_changes_nothing(lake_cfg):
    before = clean_path(lake_cfg).stat().st_mtime_ns
    receipt = fetch.fetch(lake_cfg, TIER, WEEK, "asof-2025-08-13")
    assert receipt["new_capture"] is False
    events = history.events(lake_cfg["lake_root"], DATASET_WEEKLY)
    assert list(events["event"]) == ["captured", "accepted", "seen_again"]
    raw = lake.path(lake_cfg["lake_root"], "raw", tier=TIER, week_start=WEEK)
    assert len(list(raw.glob("*.parquet"))) == 1
    assert clean_path(lake_cfg).stat().st_mtime_ns == before


def test_a_revision_changes_adds_and_removes_rows_and_advances_clean(lake_cfg):
    old = lake.held_capture(clean_path(lake_cfg))
    receipt, report = revise(lake_cfg)
    assert report.status == "PASS" and receipt["new_capture"]
    new = receipt["capture_id"]
    assert lake.held_capture(clean_path(lake_cfg)) == new != old
    verdict = lake.read_json(lake.path(lake_cfg["lake_root"], "gate", tier=TIER, week_start=WEEK,
                                       capture_id=new))
    assert verdict["revision"] and verdict["previous_capture"] == old
    d = revisions.diff(lake_cfg["lake_root"], TIER, WEEK)
    assert (d.old_capture, d.new_capture) == (old, new)
    assert len(d.added) and len(d.removed) and len(d.changed)
    assert d.headline() == f"{len(d.added)} added, {len(d.removed)} removed, {len(d.changed)} changed"
    totals = d.totals()
    assert (totals["rows_after"] - totals["rows_before"]).sum() == len(d.added) - len(d.removed)
    assert not d.largest("symbol").empty and not d.calc_effect()["summary"].empty
    # raw keeps both captures; the ledger says what happened, in order
    events = history.events(lake_cfg["lake_root"], DATASET_WEEKLY)
    assert list(events["event"]) == ["captured", "accepted", "captured", "accepted"]
    assert events.iloc[-1]["previous_capture"] == old


def test_as_of_chooses_per_partition_never_per_row(lake_cfg):
    root = lake_cfg["lake_root"]
    time.sleep(0.01)
    between = pd.Timestamp.now(tz="UTC")
    time.sleep(0.01)
    revise(lake_cfg)
    d = revisions.diff(root, TIER, WEEK)
    then = spine.asof("finra_otc_weekly", known_at=between, root=root)
    now = spine.asof("finra_otc_weekly", root=root)
    assert set(then["capture_id"]) == {d.old_capture} and set(now["capture_id"]) == {d.new_capture}
    # a row the revision removed is in the earlier view and not in the latest: per partition
    gone = d.removed[NATURAL_KEY]
    assert len(gone.merge(then[NATURAL_KEY], on=NATURAL_KEY)) == len(gone)
    assert len(gone.merge(now[NATURAL_KEY], on=NATURAL_KEY)) == 0
    assert len(now) == len(d.new) and len(then) == len(d.old)
    pd.testing.assert_frame_equal(now.reset_index(drop=True),
                                  read_clean(root, TIER, WEEK).reset_index(drop=True),
                                  check_like=True)
    # naive means UTC; before anything was accepted there is nothing
    with pytest.warns(UserWarning, match="first acceptance was at"):  # not silently empty
        assert spine.asof("finra_otc_weekly", known_at="2001-01-01T00:00:00", root=root).empty
    naive = between.tz_convert(None).isoformat()
    assert set(spine.asof("finra_otc_weekly", known_at=naive, root=root)["capture_id"]) == {d.old_capture}


def test_validity_intervals_and_the_documented_duckdb_query(lake_cfg):
    root = lake_cfg["lake_root"]
    time.sleep(0.01)
    between = pd.Timestamp.now(tz="UTC")
    time.sleep(0.01)
    revise(lake_cfg)
    v = history.validity(root, DATASET_WEEKLY)
    assert len(v) == 2 and v["valid_to"].isna().sum() == 1
    assert v.iloc[0]["valid_to"] == v.iloc[1]["valid_from"]
    # The point-in-time query in docs/data-contract.md, run as written (lake path and moment
    # substituted), gives the rows spine.asof gives.
    doc = (REPO / "docs" / "data-contract.md").read_text()
    sql = doc.split("### Point in time")[1].split("```sql")[1].split("```")[0]
    sql = sql.replace("'data/", f"'{root}/").replace("2025-08-20 12:00:00+00",
                                                     between.strftime("%Y-%m-%d %H:%M:%S.%f+00"))
    got = duckdb.connect().execute(sql).fetchdf()
    want = spine.asof("finra_otc_weekly", known_at=between, root=root)
    assert set(got["capture_id"]) == set(want["capture_id"]) and len(got) == len(want)


def test_a_revision_that_fails_its_gate_is_kept_and_clean_stays(lake_cfg):
    root = lake_cfg["lake_root"]
    # a trailing accepted week, so that an impossible count band can refuse the revision
    prior = WEEK - dt.timedelta(days=7)
    r = fetch.fetch(lake_cfg, TIER, prior, f"asof-{BEFORE}")
    decide.gate(lake_cfg, TIER, prior, r["capture_id"])
    derive(lake_cfg, TIER, prior)
    old = lake.held_capture(clean_path(lake_cfg))
    before = clean_path(lake_cfg).read_bytes()
    receipt, report = revise(lake_cfg, band_min_weeks=1, rows_band=[5.0, 6.0])
    assert report.status == "FAIL" and {c.check for c in report.failures} == {"rows_in_band"}
    assert clean_path(lake_cfg).read_bytes() == before
    assert lake.held_capture(clean_path(lake_cfg)) == old
    assert lake.path(root, "capture", tier=TIER, week_start=WEEK,
                     capture_id=receipt["capture_id"]).exists()  # kept in raw
    events = history.events(root, DATASET_WEEKLY, tier=TIER, week_start=WEEK.isoformat())
    last = events.iloc[-1]
    assert (last["event"], last["capture_id"], last["previous_capture"]) == (
        "refused", receipt["capture_id"], old)
    assert set(spine.asof(root=root).query("week_start == @WEEK")["capture_id"]) == {old}


def test_pin_rolls_back_and_forward_recorded(lake_cfg):
    root = lake_cfg["lake_root"]
    old = lake.held_capture(clean_path(lake_cfg))
    receipt, _ = revise(lake_cfg)
    new = receipt["capture_id"]
    assert decide.pin(lake_cfg, TIER, WEEK, old, "restatement under review") == new
    assert held(lake_cfg) == old
    derive(lake_cfg, TIER, WEEK)
    assert lake.held_capture(clean_path(lake_cfg)) == old
    assert set(spine.asof(root=root)["capture_id"]) == {old}
    decide.pin(lake_cfg, TIER, WEEK, new, "review done")
    derive(lake_cfg, TIER, WEEK)
    assert lake.held_capture(clean_path(lake_cfg)) == new
    pinned = history.events(root, DATASET_WEEKLY).query("event == 'pinned'")
    assert list(pinned["reason"]) == ["restatement under review", "review done"]
    with pytest.raises(ValueError, match="no passing gate verdict"):
        decide.pin(lake_cfg, TIER, WEEK, "0123456789abcdef", "typo")


@pytest.mark.parametrize("fail_at", range(1, 8))
def test_a_kill_during_a_revision_leaves_the_lake_before_or_after(lake_cfg, monkeypatch, fail_at):
    """Interrupt the revision at its n-th file write; the ledger (the commit point) says before
    or after, clean is a whole file of one or the other, and a rerun completes."""
    root = lake_cfg["lake_root"]
    old = held(lake_cfg)
    real = lake.write_file_atomic
    calls = {"n": 0}

    def dying(path, data, **kwargs):
        calls["n"] += 1
        if calls["n"] == fail_at:
            raise KeyboardInterrupt("killed")
        return real(path, data, **kwargs)

    monkeypatch.setattr(lake, "write_file_atomic", dying)
    try:
        revise(lake_cfg)
        finished = True
    except KeyboardInterrupt:
        finished = False
    monkeypatch.setattr(lake, "write_file_atomic", real)
    now = held(lake_cfg)
    assert not list(clean_path(lake_cfg).parent.glob("*.tmp")), "no half-written file"
    assert lake.held_capture(clean_path(lake_cfg)) in {old, now}
    assert finished or calls["n"] >= fail_at
    # whatever happened, the point-in-time view agrees with the ledger, and a rerun completes
    assert set(spine.asof(root=root)["capture_id"]) == {now}
    receipt, report = revise(lake_cfg)
    assert report.status == "PASS"
    assert held(lake_cfg) == receipt["capture_id"]
    assert lake.held_capture(clean_path(lake_cfg)) == receipt["capture_id"]
    assert set(spine.asof(root=root)["capture_id"]) == {receipt["capture_id"]}
