"""The data as it really was, through gates, clean and every calculation (in process): a week
of 2019-10, when small non-ATS firms were pooled into one "De Minimis Firms" row per symbol
with no MPID and no CRD, and a week of 2026-03, when the tape carries fractional share sizes.
The calculations' treatment of each case is stated in docs/data-contract.md and hand-computed
in tests/unit/test_calc_cases.py; here the whole way from a capture to every output."""

import datetime as dt

import pandas as pd
import pytest

from spine import config as config_
from spine.ingest import decide
from tests.helpers import derive
from spine.ingest import fetch
from spine.derive.calc import read_calc
from spine.derive.clean import read_clean
from spine.derive import registry

DE_MINIMIS = "De Minimis Firms"


def run_week(root, tier, week):
    as_of = (week + dt.timedelta(days=60)).isoformat()
    cfg = config_.load(lake_root=str(root), as_of=as_of, synthetic={"size": "small"},
                       regsho={"enabled": False})
    capture = fetch.fetch(cfg, tier, week, f"asof-{as_of}")["capture_id"]
    report = decide.gate(cfg, tier, week, capture)
    checks = {c.check: c for c in report.checks}
    assert report.status == "PASS", [c.message for c in report.failures]
    for name in ("reconciles_by_symbol", "reconciles_by_firm"):
        assert checks[name].status == "PASS", checks[name].message
    derive(cfg, tier, week)
    clean = read_clean(cfg["lake_root"], tier, week)
    calcs = {c.name: read_calc(cfg["lake_root"], c.name, tier, week)
             for c in registry.for_tier(tier, False)}
    return clean, calcs


@pytest.mark.parametrize("tier", ["T2", "OTCE"])
def test_a_2019_week_with_pooled_de_minimis_rows(tmp_path, tier):
    week = dt.date(2019, 10, 7)
    clean, calcs = run_week(tmp_path / "lake", tier, week)
    pooled = clean[clean["participant_name"] == DE_MINIMIS]
    assert len(pooled) > 0 and pooled["mpid"].isna().all() and pooled["firm_crd"].isna().all()
    assert (pooled["summary_type"] == "OTC_W_SMBL_FIRM").all()
    assert not pooled.duplicated(["symbol", "issue_name", "product_type"]).any()
    assert (clean["shares"] == clean["shares"].round()).all()  # whole shares before 2026-02-23
    # every share is in the symbol totals, the pooled row's included
    sw = calcs["symbol_week"]
    non_ats = clean.loc[clean["summary_type"] == "OTC_W_SMBL_FIRM", "shares"].sum()
    assert sw["non_ats_shares"].sum() == pytest.approx(non_ats)
    assert sw["ats_shares"].sum() + sw["non_ats_shares"].sum() == pytest.approx(
        clean["shares"].sum())
    for name, frame in calcs.items():  # movers compares with earlier weeks: none in this lake
        assert len(frame) or name == "movers", f"{name} is empty for {tier} {week}"


def test_a_2026_week_with_fractional_shares_keeps_every_fraction(tmp_path):
    week = dt.date(2026, 3, 2)
    clean, calcs = run_week(tmp_path / "lake", "T2", week)
    fractional = clean["shares"] != clean["shares"].round()
    assert 0.05 < fractional.mean() < 0.25
    assert clean["participant_name"].ne(DE_MINIMIS).all()  # every firm reports itself now
    no_mpid = clean[clean["mpid"].isna()]
    assert len(no_mpid) and no_mpid["firm_crd"].notna().all()  # keyed by CRD
    sw = calcs["symbol_week"]
    assert sw["ats_shares"].sum() + sw["non_ats_shares"].sum() == pytest.approx(
        clean["shares"].sum(), abs=1e-6)
    assert (sw["ats_shares"] % 1 != 0).any() or (sw["non_ats_shares"] % 1 != 0).any()
    for name, frame in calcs.items():
        assert len(frame) or name == "movers", f"{name} is empty for T2 {week}"
    # the lake reads back with pandas as a directory, fractions intact
    back = pd.read_parquet(tmp_path / "lake" / "clean" / "finra_otc_weekly")
    assert back["shares"].sum() == pytest.approx(clean["shares"].sum())
