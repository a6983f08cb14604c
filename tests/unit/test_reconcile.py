"""FINRA's aggregates as the judge: the reconciliation checks and FINRA's word on who is an ATS.

Each injected disagreement is one the emulator can serve (spine.emulator.Faults.reconcile):
one symbol's total off by one share, one firm's row missing, a detail row missing while the
aggregates are whole; and a capture with no aggregates (a download file) is SKIP, never PASS.
"""

import datetime as dt

import pandas as pd
import pytest

from spine.ingest import ats, reconcile
from spine.ingest import convert
from spine.ingest.checks import FAIL, PASS, SKIP, WARN
from spine.ingest.gates import GateConfig, evaluate
from spine.vocabulary import DETAIL_SUMMARY_TYPES, SIDES
from spine.ingest.sources.synthetic import weekly_rows

WEEK = dt.date(2025, 6, 2)
AS_OF = "2025-09-01"


def detail(tier="T2", week=WEEK):
    rows = weekly_rows(tier, week, AS_OF)
    return rows[rows["summaryTypeCode"].isin(DETAIL_SUMMARY_TYPES)].reset_index(drop=True)


def with_aggregates(rows):
    return pd.concat([rows, reconcile.aggregate(rows)], ignore_index=True)


def gate(raw, cfg=None, tier="T2"):
    clean, aggregates = convert.to_clean(raw, "c" * 16)
    return evaluate(clean, dataset="finra_otc_weekly", tier=tier, week_start=WEEK,
                    capture_id="c" * 16, trailing=pd.DataFrame(columns=["rows", "symbols"]),
                    aggregate_rows=aggregates, cfg=cfg, as_of=AS_OF, ats_mpids=ats.mpids(),
                    raw=raw)


def check(report, name):
    return next(c for c in report.checks if c.check == name)


def test_aggregates_have_one_row_per_key_and_the_detail_totals():
    rows = detail()
    agg = reconcile.aggregate(rows)
    for side in SIDES.values():
        d = rows[rows["summaryTypeCode"] == side["detail"]]
        total = d["totalWeeklyShareQuantity"].sum()
        for kind in ("symbol", "firm"):
            a = agg[agg["summaryTypeCode"] == side[kind]]
            assert a["totalWeeklyShareQuantity"].sum() == pytest.approx(total, abs=1e-3)
            assert a["totalWeeklyTradeCount"].sum() == d["totalWeeklyTradeCount"].sum()
        smbl = agg[agg["summaryTypeCode"] == side["symbol"]]
        assert len(smbl) == len(d.drop_duplicates(reconcile.SYMBOL_KEY))
        assert smbl["MPID"].isna().all() and smbl["firmCRDNumber"].isna().all()
        firm = agg[agg["summaryTypeCode"] == side["firm"]]
        assert firm["issueSymbolIdentifier"].isna().all()
        assert len(firm) == reconcile.firm_key(d).nunique()


def test_a_whole_week_reconciles_and_a_download_file_week_says_skip():
    report = gate(with_aggregates(detail()))
    for name in ("reconciles_by_symbol", "reconciles_by_firm"):
        assert check(report, name).status == PASS, check(report, name).message
    assert report.status == PASS
    bare = gate(detail())  # detail only: what a download file gives
    for name in ("reconciles_by_symbol", "reconciles_by_firm"):
        c = check(bare, name)
        assert c.status == SKIP and "no FINRA" in c.message and "download file" in c.message


def test_one_symbol_total_off_by_one_share_holds_the_week_back_naming_it():
    raw = with_aggregates(detail())
    i = raw.index[raw["summaryTypeCode"] == "ATS_W_SMBL"][0]
    symbol = raw.at[i, "issueSymbolIdentifier"]
    ours = raw.at[i, "totalWeeklyShareQuantity"]
    raw.loc[i, "totalWeeklyShareQuantity"] = ours + 1
    report = gate(raw)
    c = check(report, "reconciles_by_symbol")
    assert report.status == FAIL and c.status == FAIL and c.measured >= 1
    m = c.message
    assert f"T2 week {WEEK}" in m and "ATS:" in m and symbol in m
    assert "difference -1" in m and "FINRA" in m and "our sum" in m
    assert f"refetch --config 'weeks=[{WEEK}]' 'tiers=[T2]'" in m
    assert "spine override --tier T2 --week-start 2025-06-02 --check reconciles_by_symbol" in m
    assert "E+" not in m and "e+" not in m
    # the firm aggregate still agrees with the detail
    assert check(report, "reconciles_by_firm").status == PASS


def test_a_missing_firm_row_is_a_warning_until_the_firm_check_is_made_a_failure():
    raw = with_aggregates(detail())
    j = raw.index[raw["summaryTypeCode"] == "OTC_W_FIRM"][0]
    firm = raw.at[j, "MPID"] if pd.notna(raw.at[j, "MPID"]) else f"CRD {raw.at[j, 'firmCRDNumber']}"
    raw = raw.drop(j)
    report = gate(raw)
    c = check(report, "reconciles_by_firm")
    assert c.status == WARN and report.status == PASS
    assert "non-ATS" in c.message and firm in c.message and "its default severity" in c.message
    strict = gate(raw, GateConfig.from_config({"severity": {"reconciles_by_firm": "FAIL"}}))
    assert check(strict, "reconciles_by_firm").status == FAIL and strict.status == FAIL


def test_a_detail_row_missing_while_the_aggregates_are_whole_is_found_both_ways():
    raw = with_aggregates(detail())
    k = raw.index[raw["summaryTypeCode"] == "OTC_W_SMBL_FIRM"][0]
    symbol, shares = raw.at[k, "issueSymbolIdentifier"], raw.at[k, "totalWeeklyShareQuantity"]
    report = gate(raw.drop(k))
    c = check(report, "reconciles_by_symbol")
    assert c.status == FAIL and symbol in c.message and "non-ATS" in c.message
    assert "non-ATS total shares" in c.message
    assert check(report, "reconciles_by_firm").status == WARN


def test_fractional_quantities_are_held_within_half_a_share_per_key():
    rows = detail()
    first = rows.index[rows["summaryTypeCode"] == "ATS_W_SMBL_FIRM"][0]
    rows.loc[first, "totalWeeklyShareQuantity"] = 100.4
    raw = with_aggregates(rows)
    key = tuple(rows.loc[first, c] for c in reconcile.SYMBOL_KEY)
    smbl = raw[(raw["summaryTypeCode"] == "ATS_W_SMBL")
               & (raw["issueSymbolIdentifier"] == key[0]) & (raw["issueName"] == key[1])
               & (raw["productTypeCode"] == key[2])].index[0]
    raw.loc[smbl, "totalWeeklyShareQuantity"] = round(raw.at[smbl, "totalWeeklyShareQuantity"]) \
        if raw.at[smbl, "totalWeeklyShareQuantity"] % 1 else raw.at[smbl, "totalWeeklyShareQuantity"]
    assert check(gate(raw), "reconciles_by_symbol").status == PASS  # 0.4 share: within 0.5
    raw.loc[smbl, "totalWeeklyShareQuantity"] += 1
    assert check(gate(raw), "reconciles_by_symbol").status == FAIL


def test_finra_lists_a_new_ats_the_week_goes_through_with_a_warning_and_is_recorded():
    rows = detail()
    extra = rows[rows["summaryTypeCode"] == "ATS_W_SMBL_FIRM"].head(5).copy()
    extra["MPID"], extra["marketParticipantName"] = "ZZAT", "ZZ ALTERNATIVE TRADING"
    extra["firmCRDNumber"] = 999999
    raw = with_aggregates(pd.concat([rows, extra], ignore_index=True))
    report = gate(raw)
    assert report.status == PASS
    assert check(report, "summary_type_venues").status == PASS
    assert "ATS_W_FIRM rows of this week" in check(report, "summary_type_venues").message
    new = check(report, "ats_list_current")
    assert new.status == WARN and "ZZAT (ZZ ALTERNATIVE TRADING)" in new.message
    assert report.measures["new_ats"] == {"ZZAT": "ZZ ALTERNATIVE TRADING"}
    assert report.to_dict()["new_ats"] == {"ZZAT": "ZZ ALTERNATIVE TRADING"}
    # a download file (no ATS_W_FIRM rows): the type was inferred, the list still judges
    bare = gate(pd.concat([rows, extra], ignore_index=True))
    assert check(bare, "summary_type_venues").status == FAIL
    assert check(bare, "ats_list_current").status == SKIP


def test_non_ats_rows_under_an_mpid_finra_lists_as_an_ats_this_week_are_refused():
    rows = detail()
    raw = with_aggregates(rows)
    ats_mpid = raw.loc[raw["summaryTypeCode"] == "ATS_W_FIRM", "MPID"].iloc[0]
    i = raw.index[raw["summaryTypeCode"] == "OTC_W_SMBL_FIRM"][0]
    raw.loc[i, "MPID"] = ats_mpid
    c = check(gate(raw), "summary_type_venues")
    assert c.status == FAIL and ats_mpid in c.message


@pytest.mark.parametrize("value", ["NMS", "NA"])
def test_an_undocumented_tier_value_is_refused_with_the_reason(value):
    rows = detail()
    rows.loc[rows.index[:3], "tierIdentifier"] = value
    c = check(gate(with_aggregates(rows)), "tier_matches_request")
    assert c.status == FAIL and c.measured == 3
    assert f"{value!r} is a tier value FINRA sends but does not document" in c.message
    assert "does not guess" in c.message
