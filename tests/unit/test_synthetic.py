import datetime as dt

import numpy as np
import pandas as pd
import pytest

from spine import calendar as cal
from spine.schemas import API_FIELDS
from spine.sources import synthetic
from spine.sources.synthetic import Revision

D = dt.date.fromisoformat
AS_OF = "2025-09-30"


def rows(tier="T2", week="2025-06-02", **kw):
    return synthetic.weekly_rows(tier, week, kw.pop("as_of", AS_OF), size=kw.pop("size", "small"), **kw)


def test_deterministic_for_a_seed_and_different_across_seeds():
    a, b = rows(seed=3), rows(seed=3)
    pd.testing.assert_frame_equal(a, b)
    assert not rows(seed=4)["totalWeeklyShareQuantity"].equals(a["totalWeeklyShareQuantity"])


@pytest.mark.parametrize("tier", ["T1", "T2", "OTCE"])
def test_api_fields_and_both_detail_types(tier):
    df = rows(tier)
    assert list(df.columns) == API_FIELDS
    assert set(df["summaryTypeCode"]) == {"ATS_W_SMBL_FIRM", "OTC_W_SMBL_FIRM"}
    assert (df["tierIdentifier"] == tier).all()
    assert (df["totalWeeklyShareQuantity"] > 0).all() and (df["totalWeeklyTradeCount"] >= 1).all()
    published = cal.publication_date(tier, D("2025-06-02")).isoformat()
    assert (df["initialPublishedDate"] == published).all()
    assert (df["lastUpdateDate"] == published).all()
    # a non-ATS firm that reports with a CRD number and no MPID
    assert (df["MPID"].isna() & df["firmCRDNumber"].notna()).any()


def test_ats_mpids_are_real_per_tier():
    otce = set(rows("OTCE").query("summaryTypeCode == 'ATS_W_SMBL_FIRM'")["MPID"])
    assert otce <= {m for m, _ in synthetic.ATS_MPIDS["OTCE"]} and "OTCN" in otce
    nms = set(rows("T1").query("summaryTypeCode == 'ATS_W_SMBL_FIRM'")["MPID"])
    assert {"SGMT", "INCR", "UBSA"} <= nms


def test_quirks_tape_move_reused_ticker_fractional_shares():
    df = rows("T1", size="full")
    per_symbol = df.groupby("issueSymbolIdentifier")
    assert (per_symbol["productTypeCode"].nunique() > 1).any()  # moved tape mid-week
    assert (per_symbol["issueName"].nunique() > 1).any()  # reused ticker
    fractional = (df["totalWeeklyShareQuantity"] % 1 > 0).mean()
    assert 0.08 < fractional < 0.18
    assert df["issueSymbolIdentifier"].str.contains("[a-z]").any()  # lowercase suffix


def test_full_size_matches_a_real_week():
    for tier, expected in {"T1": 72_000, "T2": 168_000, "OTCE": 24_000}.items():
        n = len(rows(tier, size="full"))
        assert 0.9 * expected < n < 1.1 * expected, (tier, n)


def test_universe_persists_and_volumes_autocorrelate():
    weeks = [D("2025-05-05") + dt.timedelta(days=7 * i) for i in range(6)]
    frames = [rows("T2", w, size="full") for w in weeks]
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
    normal = rows("T1", "2025-06-09", size="full")["totalWeeklyShareQuantity"].sum()
    holiday = rows("T1", "2025-05-26", size="full")["totalWeeklyShareQuantity"].sum()
    assert holiday < normal * 0.95


def test_unpublished_week_is_refused():
    with pytest.raises(LookupError, match="first published on 2025-07-07"):
        rows("T2", "2025-06-02", as_of="2025-07-06")


def test_revision_schedule_restates_an_old_week():
    rev = [Revision("T2", D("2025-06-02"), D("2025-08-15"))]
    before = rows(revisions=rev, as_of="2025-08-14")
    pd.testing.assert_frame_equal(before, rows(as_of="2025-08-14"))
    after = rows(revisions=rev, as_of="2025-08-15")
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
