import datetime as dt
from functools import cache

import numpy as np
import pandas as pd
import pytest

from spine.ingest import ats, reconcile
from spine import calendar as cal
from spine.ingest.sources import synthetic, synthetic_market
from spine.ingest.sources.synthetic import Revision
from spine.schemas import API_FIELDS
from spine.vocabulary import AGGREGATE_SUMMARY_TYPES, DETAIL_SUMMARY_TYPES, SUMMARY_TYPES

D = dt.date.fromisoformat
AS_OF = "2025-09-30"
LATE_AS_OF = "2026-12-01"  # every week below is published by then
ATS, NON_ATS = DETAIL_SUMMARY_TYPES


def rows(tier="T2", week="2025-06-02", **kw):
    return synthetic.weekly_rows(tier, week, kw.pop("as_of", AS_OF), size=kw.pop("size", "small"), **kw)


def detail(tier="T2", week="2025-06-02", **kw):
    return rows(tier, week, aggregates=False, **kw)


@cache
def full_week(tier: str, week: str = "2025-06-02") -> pd.DataFrame:
    """A full-size week, detail and aggregates (made once per module run: ~1 s each)."""
    return synthetic.weekly_rows(tier, week, LATE_AS_OF, size="full")


def detail_of(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["summaryTypeCode"].isin(DETAIL_SUMMARY_TYPES)]


def no_problems(df: pd.DataFrame) -> dict:
    """reconcile's problems per check (both checks ran: none skipped)."""
    outcomes = reconcile.reconcile(df)
    assert all(o.skip is None for o in outcomes.values()), outcomes
    return {check: o.problems for check, o in outcomes.items() if o.problems}


def test_deterministic_for_a_seed_and_different_across_seeds():
    a, b = rows(seed=3), rows(seed=3)
    pd.testing.assert_frame_equal(a, b)
    assert not rows(seed=4)["totalWeeklyShareQuantity"].equals(a["totalWeeklyShareQuantity"])


@pytest.mark.parametrize("tier", ["T1", "T2", "OTCE"])
def test_api_fields_detail_and_aggregate_types(tier):
    df = rows(tier)
    assert list(df.columns) == API_FIELDS
    assert set(df["summaryTypeCode"]) == set(SUMMARY_TYPES)
    assert (df["tierIdentifier"] == tier).all()
    assert (df["totalWeeklyShareQuantity"] > 0).all() and (df["totalWeeklyTradeCount"] >= 1).all()
    published = cal.publication_date(tier, D("2025-06-02")).isoformat()
    assert (df["initialPublishedDate"] == published).all()
    assert (df["lastUpdateDate"] == published).all()
    # a non-ATS firm that reports with a CRD number and no MPID
    assert (df["MPID"].isna() & df["firmCRDNumber"].notna()).any()


def test_without_aggregates_the_detail_rows_alone():
    only = detail()
    assert set(only["summaryTypeCode"]) == set(DETAIL_SUMMARY_TYPES)
    both = detail_of(rows())
    key = API_FIELDS[:5] + ["productTypeCode", "summaryTypeCode"]
    pd.testing.assert_frame_equal(only.sort_values(key, ignore_index=True),
                                  both.sort_values(key, ignore_index=True))
    assert not no_problems(rows())


def test_ats_mpids_are_real_per_tier():
    listed = ats.mpids()
    otce = set(detail("OTCE").query("summaryTypeCode == @ATS")["MPID"])
    assert otce <= {m for m, _ in synthetic_market.ATS_MPIDS["OTCE"]} and "OTCN" in otce
    nms = set(detail("T1").query("summaryTypeCode == @ATS")["MPID"])
    assert {"SGMT", "INCR", "UBSA"} <= nms
    assert otce | nms <= listed
    # a full week: about 33 NMS ATSs, every one a real ATS MPID; OTCE's ~10 on ~5,000 rows
    for tier in ("T1", "T2"):
        venues = set(full_week(tier).query("summaryTypeCode == @ATS")["MPID"])
        assert len(venues) == 33 and venues <= listed
    otce_full = full_week("OTCE").query("summaryTypeCode == @ATS")
    assert 4_500 < len(otce_full) < 5_500 and 8 <= otce_full["MPID"].nunique() <= 10


def test_quirks_tape_move_reused_ticker_lowercase_untrimmed():
    df = detail_of(full_week("T1"))
    per_symbol = df.groupby("issueSymbolIdentifier")
    assert (per_symbol["productTypeCode"].nunique() > 1).any()  # moved tape mid-week
    assert (per_symbol["issueName"].nunique() > 1).any()  # reused ticker
    assert df["issueSymbolIdentifier"].str.contains("[a-z]").any()  # lowercase suffix
    assert df["issueName"].str.contains("  ").any()  # issueName not trimmed


def test_fractional_shares_only_from_2026_02_23():
    before = detail_of(full_week("T1", "2026-02-16"))["totalWeeklyShareQuantity"]
    assert (before % 1 == 0).all()
    after = detail_of(full_week("T1", "2026-02-23"))["totalWeeklyShareQuantity"]
    assert 0.10 < (after % 1 > 0).mean() < 0.16  # about 13% of rows


def test_full_size_matches_a_real_week():
    for tier, expected in {"T1": 72_000, "T2": 168_000, "OTCE": 24_000}.items():
        n = len(detail_of(full_week(tier)))
        assert 0.9 * expected < n < 1.1 * expected, (tier, n)


@pytest.mark.parametrize("tier", ["T1", "T2", "OTCE"])
def test_a_full_week_reconciles_exactly(tier):
    df = full_week(tier)
    assert not no_problems(df)
    # FINRA's aggregates: one row per security line and side, one per firm
    smbl = df[df["summaryTypeCode"] == "ATS_W_SMBL"]
    lines = detail_of(df).query("summaryTypeCode == @ATS")[reconcile.SYMBOL_KEY].drop_duplicates()
    assert len(smbl) == len(lines)
    firms = df[df["summaryTypeCode"] == "OTC_W_FIRM"]
    non_ats = detail_of(df).query("summaryTypeCode == @NON_ATS")
    assert len(firms) == reconcile.firm_key(non_ats).nunique()


@pytest.mark.parametrize("tier", ["T1", "T2"])
def test_ats_share_and_wholesaler_concentration(tier):
    """FINRA_FACTS "Magnitudes": ATS share of off-exchange shares about 16-31%; non-ATS volume
    concentrated in a few wholesalers."""
    df = detail_of(full_week(tier))
    shares = df.groupby("summaryTypeCode")["totalWeeklyShareQuantity"].sum()
    assert 0.16 < shares[ATS] / shares.sum() < 0.31
    non_ats = df[df["summaryTypeCode"] == NON_ATS]
    firms = non_ats.groupby("marketParticipantName")["totalWeeklyShareQuantity"].sum()
    top = firms.sort_values(ascending=False) / firms.sum()
    assert 0.50 < top.iloc[:2].sum() < 0.65 and top.iloc[:5].sum() > 0.80
    assert list(top.index[:2]) == ["CITADEL SECURITIES LLC", "VIRTU AMERICAS LLC"]


def test_de_minimis_firms_pooled_before_2019_11_11(monkeypatch):
    week = D("2019-11-04")
    df = detail("T2", week, as_of=LATE_AS_OF)
    pool = df[df["marketParticipantName"] == synthetic_market.DE_MINIMIS_NAME]
    assert len(pool) and (pool["summaryTypeCode"] == NON_ATS).all()
    assert pool["MPID"].isna().all() and pool["firmCRDNumber"].isna().all()
    assert not pool.duplicated(reconcile.SYMBOL_KEY).any()  # one per security line
    assert not (df["MPID"].isna() & df["firmCRDNumber"].notna()).any()  # no CRD-only firm
    # the pooled row is the sum of the small firms' rows, the other rows as they were
    pooled = synthetic_market.base_rows(7, "small", "T2", week)
    monkeypatch.setattr(synthetic_market, "DE_MINIMIS_UNTIL", D("2014-01-06"))
    every = synthetic_market.base_rows(7, "small", "T2", week)
    small = every["marketParticipantName"].isin(
        [name for _, name, w in synthetic_market.NON_ATS_FIRMS
         if w < synthetic_market.DE_MINIMIS_WEIGHT])
    line = ["issueSymbolIdentifier", "issueName", "productTypeCode"]
    values = ["totalWeeklyShareQuantity", "totalWeeklyTradeCount"]
    expected = every[small].groupby(line)[values].sum()
    got = pooled[pooled["marketParticipantName"] == synthetic_market.DE_MINIMIS_NAME]
    pd.testing.assert_frame_equal(got.groupby(line)[values].sum(), expected)
    pd.testing.assert_frame_equal(pooled.iloc[: (~small).sum()],
                                  every[~small].reset_index(drop=True), check_dtype=False)
    assert not no_problems(rows("T2", week, as_of=LATE_AS_OF))


def test_every_firm_reports_itself_from_2019_11_11():
    df = detail("T2", "2019-11-11", as_of=LATE_AS_OF)
    assert not (df["marketParticipantName"] == synthetic_market.DE_MINIMIS_NAME).any()
    crd_only = df[df["MPID"].isna()]
    assert len(crd_only) and crd_only["firmCRDNumber"].notna().all()
    assert set(crd_only["marketParticipantName"]) <= {
        name for mpid, name, _ in synthetic_market.NON_ATS_FIRMS if mpid is None}


def test_universe_persists_and_volumes_autocorrelate():
    weeks = [D("2025-05-05") + dt.timedelta(days=7 * i) for i in range(6)]
    frames = [detail("T2", w, size="full") for w in weeks]
    pairs = [set(zip(f["issueSymbolIdentifier"], f["MPID"].fillna(""), f["summaryTypeCode"]))
             for f in frames]
    jaccard = len(pairs[0] & pairs[1]) / len(pairs[0] | pairs[1])
    assert jaccard > 0.75
    vols = pd.DataFrame({i: f.groupby("issueSymbolIdentifier")["totalWeeklyShareQuantity"].sum()
                         for i, f in enumerate(frames)}).dropna()
    logs = np.log(vols)
    devs = logs.sub(logs.mean(axis=1), axis=0)
    lag1 = np.corrcoef(devs.iloc[:, :-1].to_numpy().ravel(), devs.iloc[:, 1:].to_numpy().ravel())[0, 1]
    assert lag1 > 0.2  # week-to-week deviations persist (AR(1))
    top = vols.sum(axis=1).sort_values(ascending=False)
    assert top.iloc[: len(top) // 100].sum() / top.sum() > 0.05  # heavy tail: top 1% carry >5%


def test_holiday_week_has_fewer_shares():
    normal = detail("T1", "2025-06-09", size="full")["totalWeeklyShareQuantity"].sum()
    holiday = detail("T1", "2025-05-26", size="full")["totalWeeklyShareQuantity"].sum()
    assert holiday < normal * 0.95


def test_unpublished_week_is_refused():
    with pytest.raises(LookupError, match="first published on 2025-07-07"):
        rows("T2", "2025-06-02", as_of="2025-07-06")


def test_revision_schedule_restates_an_old_week():
    rev = [Revision("T2", D("2025-06-02"), D("2025-08-15"))]
    before = detail(revisions=rev, as_of="2025-08-14")
    pd.testing.assert_frame_equal(before, detail(as_of="2025-08-14"))
    after = detail(revisions=rev, as_of="2025-08-15")
    key = ["issueSymbolIdentifier", "issueName", "productTypeCode", "MPID", "firmCRDNumber",
           "summaryTypeCode"]
    merged = before.merge(after, on=key, how="outer", suffixes=("_b", "_a"), indicator=True)
    assert (merged["_merge"] == "left_only").any(), "a revision removes rows"
    assert (merged["_merge"] == "right_only").any(), "a revision adds rows"
    both = merged[merged["_merge"] == "both"]
    assert (both["totalWeeklyShareQuantity_b"] != both["totalWeeklyShareQuantity_a"]).any()
    assert (after["lastUpdateDate"] == "2025-08-15").any()
    assert (after["initialPublishedDate"] == "2025-07-07").all()
    # other weeks and tiers are untouched
    pd.testing.assert_frame_equal(rows("T1", revisions=rev), rows("T1"))


def test_a_restated_weeks_aggregates_are_restated_too():
    rev = [Revision("T2", D("2025-06-02"), D("2025-08-15"))]
    before, after = rows(revisions=rev, as_of="2025-08-14"), rows(revisions=rev, as_of="2025-08-15")
    assert not no_problems(after)
    totals = [df[df["summaryTypeCode"] == "OTC_W_FIRM"]["totalWeeklyShareQuantity"].sum()
              for df in (before, after)]
    assert totals[0] != totals[1]
    restated = after[after["summaryTypeCode"].isin(AGGREGATE_SUMMARY_TYPES)]
    assert (restated["lastUpdateDate"] == "2025-08-15").any()
