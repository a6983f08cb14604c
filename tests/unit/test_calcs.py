import pytest

from spine import calcs
from tests.helpers import clean_frame

ROWS = [
    ("AAA", "ATS", "XATS", 100, 10),
    ("AAA", "ATS", "YATS", 300, 20),
    ("AAA", "OTC", "ZFRM", 600, 30),
    ("BBB", "ATS", "XATS", 50, 5),
]


def test_symbol_week_by_hand():
    out = calcs.symbol_week(clean_frame(ROWS)).set_index("symbol")
    a = out.loc["AAA"]
    assert (a.ats_shares, a.ats_trades, a.non_ats_shares, a.non_ats_trades) == (400, 30, 600, 30)
    assert (a.total_shares, a.total_trades, a.venue_count) == (1000, 60, 3)
    assert a.ats_share == pytest.approx(0.4)
    assert a.avg_trade_size == pytest.approx(1000 / 60)
    b = out.loc["BBB"]
    assert (b.ats_share, b.venue_count, b.non_ats_shares) == (1.0, 1, 0)


def test_symbol_hhi_by_hand():
    out = calcs.symbol_hhi(clean_frame(ROWS)).set_index("symbol")
    # AAA: venue shares 10%, 30%, 60% -> 100 + 900 + 3600
    assert out.loc["AAA", "hhi"] == pytest.approx(4600)
    assert out.loc["AAA", "top_venue"] == "ZFRM non-ATS"
    assert out.loc["AAA", "top_venue_share"] == pytest.approx(0.6)
    assert out.loc["BBB", "hhi"] == pytest.approx(10_000)


def test_firm_with_ats_and_dealer_rows_counts_as_two_venues():
    rows = [("AAA", "ATS", "GSCO", 500, 5), ("AAA", "OTC", "GSCO", 500, 5)]
    assert calcs.symbol_hhi(clean_frame(rows))["hhi"].iloc[0] == pytest.approx(5000)
    assert calcs.symbol_week(clean_frame(rows))["venue_count"].iloc[0] == 2


def test_venue_share_by_hand():
    out = calcs.venue_share(clean_frame(ROWS)).set_index("mpid")
    assert out.loc["ZFRM", "tier_share"] == pytest.approx(600 / 1050)
    assert out.loc["XATS", "tier_share"] == pytest.approx(150 / 1050)
    assert out.loc["XATS", "symbols"] == 2 and out.loc["XATS", "trades"] == 15
    assert list(out.sort_values("rank").index) == ["ZFRM", "YATS", "XATS"]
    assert out["tier_share"].sum() == pytest.approx(1.0)


def test_crd_only_firm_is_a_venue():
    rows = [("AAA", "OTC", None, 100, 1), ("AAA", "OTC", "ZFRM", 100, 1)]
    df = clean_frame(rows)
    out = calcs.venue_share(df)
    assert len(out) == 2 and out["mpid"].isna().sum() == 1
    assert calcs.symbol_hhi(df)["hhi"].iloc[0] == pytest.approx(5000)


def test_the_plan_lists_the_calc_steps_calculations():
    from spine import plan
    from spine.calcs import CALCS

    assert tuple(CALCS) == plan.WEEKLY_CALCS
