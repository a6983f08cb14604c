import pandas as pd
import pytest

from spine.derive import calcs
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


# --- the registry -------------------------------------------------------------------------------

def test_every_registry_entry_has_its_function_and_schema():
    from spine.derive import registry
    from spine import schemas

    for entry in registry.CALCS:
        assert callable(getattr(calcs, entry.name)), entry.name
        assert hasattr(schemas, entry.schema), entry.schema


def test_the_registry_refuses_a_calculation_reading_a_later_one(monkeypatch):
    from spine.derive import registry

    bad = registry.Calc("early", 1, "Movers", (registry.Input("movers"),), "reads a later one")
    monkeypatch.setattr(registry, "CALCS", (bad, *registry.CALCS))
    with pytest.raises(ValueError, match="'early' reads 'movers', which is not an earlier"):
        registry.check()


def test_reach_follows_the_inputs():
    from spine import plan
    from spine.derive import registry

    assert registry.reach("symbol_week") == 1
    assert registry.reach("symbol_trend") == 13
    assert registry.reach("movers") == 13  # reads symbol_trend of its own week
    assert plan.REACH_WEEKS == 13
    assert [c.name for c in registry.for_tier("OTCE", regsho=True)] == [
        c.name for c in registry.CALCS if c.name != "short_volume_weekly"]


# --- multi-week calculations, by hand ----------------------------------------------------------

WEEKS = pd.date_range("2025-03-03", periods=13, freq="7D")  # 13 Mondays; 2025-04-14 week has
DAYS = {w: 5 for w in WEEKS} | {pd.Timestamp("2025-04-14"): 4}  # Good Friday (4 trading days)


def symbol_weeks(volumes: dict[str, list[float | None]], tier="T1") -> pd.DataFrame:
    """symbol -> shares per week (None: not traded that week), through symbol_week itself."""
    frames = []
    for i, week in enumerate(WEEKS):
        rows = [(sym, "ATS", "XATS", v[i] / 2, 10) for sym, v in volumes.items() if v[i]]
        rows += [(sym, "OTC", "ZFRM", v[i] / 2, 10) for sym, v in volumes.items() if v[i]]
        if rows:
            frames.append(calcs.symbol_week(clean_frame(rows, week_start=week, tier=tier)))
    return pd.concat(frames, ignore_index=True)


def trend(volumes, week=WEEKS[-1]):
    return calcs.compute("symbol_trend", {"symbol_week": symbol_weeks(volumes)},
                         week_start=week, trading_days=DAYS).set_index("symbol")


def test_symbol_trend_by_hand_and_a_holiday_week_is_not_a_drop():
    flat = [5_000.0] * 13
    flat[6] = 4_000.0  # the holiday week trades 4 days at the same 1,000 a day
    out = trend({"AAA": flat})
    a = out.loc["AAA"]
    assert a.shares_per_day == 1_000 and a.mean_13w_shares_per_day == pytest.approx(1_000)
    assert a.mean_4w_shares_per_day == pytest.approx(1_000) and a.weeks_in_window == 13
    assert a.z_shares_per_day == pytest.approx(0.0) and a.wow_change == pytest.approx(0.0)
    holiday = calcs.compute("symbol_trend", {"symbol_week": symbol_weeks({"AAA": flat})},
                            week_start=pd.Timestamp("2025-04-14"), trading_days=DAYS)
    assert holiday["shares_per_day"].iloc[0] == 1_000  # not 800
    assert holiday["wow_change"].iloc[0] == pytest.approx(0.0)


def test_symbol_trend_z_score_by_hand():
    # 12 earlier weeks alternating 800 and 1,200 a day (mean 1,000, sample std 208.85), then 2,000
    earlier = [4_000.0 if i % 2 else 6_000.0 for i in range(12)]
    earlier[6] = earlier[6] * 4 / 5  # the holiday week: same per day
    out = trend({"AAA": earlier + [10_000.0]})
    per_day = pd.Series([800.0 if i % 2 else 1_200.0 for i in range(12)])
    assert out.loc["AAA", "prior_shares_per_day"] == pytest.approx(1_000)
    assert out.loc["AAA", "z_shares_per_day"] == pytest.approx(1_000 / per_day.std())
    assert out.loc["AAA", "wow_change"] == pytest.approx(2_000 / 800 - 1)


def test_a_symbol_that_appears_mid_window_has_no_z_score_until_it_has_history():
    out = trend({"NEW": [None] * 10 + [5_000.0, 5_000.0, 20_000.0],
                 "OLD": [5_000.0] * 13})
    new = out.loc["NEW"]
    assert new.weeks_in_window == 3 and pd.isna(new.z_shares_per_day)
    assert new.mean_13w_shares_per_day == pytest.approx(2_000)  # mean of 1,000, 1,000, 4,000
    assert new.prior_shares_per_day == pytest.approx(1_000)
    assert new.wow_change == pytest.approx(3.0)
    # a week it did not trade is not in its window; it is not in this week's rows either
    assert "GONE" not in trend({"GONE": [5_000.0] * 12 + [None], "OLD": [5_000.0] * 13}).index


def test_near_constant_volume_does_not_score_in_the_hundreds():
    earlier = [5_000.0 + (i % 2) for i in range(12)]  # std ~0.1 share a day
    earlier[6] = earlier[6] * 4 / 5  # the holiday week: the same per trading day
    out = trend({"AAA": earlier + [6_000.0]})
    # the spread is floored at a tenth of the mean: (1,200 - 1,000.1) / 100.01
    assert out.loc["AAA", "z_shares_per_day"] == pytest.approx(2.0, abs=0.01)


def test_movers_by_hand():
    base = [50_000.0] * 12
    base[6] = 40_000.0  # the holiday week: the same 10,000 a day
    vols = {"UP": [v * (1.2 if i % 2 else 0.8) for i, v in enumerate(base)] + [150_000.0],
            "DOWN": [v * (1.2 if i % 2 else 0.8) for i, v in enumerate(base)] + [10_000.0],
            "TINY": [b / 500 * (1.2 if i % 2 else 0.8) for i, b in enumerate(base)] + [1_000.0],
            "FLAT": base + [50_000.0]}
    t = trend(vols).reset_index()
    out = calcs.compute("movers", {"symbol_trend": t})
    z = out[out["ranked_by"] == "z_score"]
    assert z[z["direction"] == "rise"]["symbol"].tolist() == ["UP"]
    assert z[z["direction"] == "fall"]["symbol"].tolist() == ["DOWN"]
    assert "TINY" not in set(out["symbol"])  # 200 shares a day: under the floor
    by_volume = out[(out["ranked_by"] == "shares_per_day") & (out["direction"] == "rise")]
    assert by_volume.iloc[0]["change_shares_per_day"] == pytest.approx(30_000 - 10_000)


def venue_weeks(shares_by_week: list[dict[str, float]]) -> pd.DataFrame:
    frames = []
    for week, shares in zip(WEEKS, shares_by_week):
        rows = [("AAA", "ATS" if m.endswith("A") else "OTC", m, v, 1) for m, v in shares.items()]
        frames.append(calcs.venue_share(clean_frame(rows, week_start=week)))
    return pd.concat(frames, ignore_index=True)


def test_venue_trend_entries_exits_and_rank_changes_by_hand():
    weeks = [{"XA": 600, "YA": 300, "ZF": 100}] * 11 + [
        {"XA": 600, "YA": 300, "ZF": 100},
        {"XA": 300, "ZF": 500, "NEWA": 200}]  # YA exits, NEWA enters, ZF moves from 3rd to 1st
    out = calcs.compute("venue_trend", {"venue_share": venue_weeks(weeks)},
                        week_start=WEEKS[-1]).set_index("venue")
    assert out.loc["YA ATS", "status"] == "exited" and pd.isna(out.loc["YA ATS", "rank"])
    assert out.loc["YA ATS", "previous_rank"] == 2 and out.loc["YA ATS", "tier_share"] == 0
    assert out.loc["NEWA ATS", "status"] == "entered" and out.loc["NEWA ATS", "rank"] == 3
    assert out.loc["ZF non-ATS", "rank_change"] == 2  # 3rd -> 1st
    assert out.loc["ZF non-ATS", "mean_13w_tier_share"] == pytest.approx((12 * 0.1 + 0.5) / 13)
    assert out.loc["XA ATS", "mean_4w_tier_share"] == pytest.approx((3 * 0.6 + 0.3) / 4)
    # within a tier and summary type the venues' shares sum to 1
    present = out[out["status"] != "exited"]
    assert present.groupby("summary_type")["type_share"].sum().tolist() == pytest.approx([1, 1])
    first = calcs.compute("venue_trend", {"venue_share": venue_weeks(weeks[:1])},
                          week_start=WEEKS[0])
    assert set(first["status"]) == {"no_previous_week"}


def test_tier_summary_by_hand():
    clean = clean_frame(ROWS)
    week = pd.Timestamp("2025-06-02")
    out = calcs.compute("tier_summary", {"venue_share": calcs.venue_share(clean),
                                         "symbol_week": calcs.symbol_week(clean)},
                        week_start=week, tier="T1", trading_days={week: 5}).iloc[0]
    assert out.total_shares == 1050 and out.total_trades == 65 and out.symbols == 2
    assert out.ats_share == pytest.approx(450 / 1050)
    assert (out.ats_venues, out.non_ats_venues) == (2, 1)
    # venue shares 600/1050, 300/1050, 150/1050
    assert out.venue_hhi == pytest.approx(sum((100 * v / 1050) ** 2 for v in (600, 300, 150)))
    assert out.shares_per_day == pytest.approx(210) and out.avg_trade_size == pytest.approx(1050 / 65)


# --- properties --------------------------------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

VENUES = ["XA", "YA", "ZA", "PF", "QF", "RF"]
row = st.tuples(st.sampled_from(["AAA", "BBB", "CCC", "DDD"]), st.sampled_from(VENUES),
                st.one_of(st.integers(1, 10**9).map(float),
                          st.floats(0.0001, 1e9, allow_nan=False, allow_infinity=False)),
                st.integers(1, 10**5))


def frame_from(rows) -> pd.DataFrame:
    seen, out = set(), []
    for symbol, venue, shares, trades in rows:
        if (symbol, venue) not in seen:
            seen.add((symbol, venue))
            out.append((symbol, "ATS" if venue.endswith("A") else "OTC", venue, shares, trades))
    return clean_frame(out)


@settings(max_examples=60, deadline=None)
@given(st.lists(row, min_size=1, max_size=40))
def test_shares_sum_to_one_and_hhi_stays_in_range(rows):
    clean = frame_from(rows)
    vs = calcs.compute("venue_share", {"clean": clean})
    assert vs["tier_share"].sum() == pytest.approx(1.0)
    week = pd.Timestamp("2025-06-02")
    vt = calcs.compute("venue_trend", {"venue_share": vs}, week_start=week)
    for _, shares in vt.groupby("summary_type")["type_share"]:
        assert shares.sum() == pytest.approx(1.0)
    hhi = calcs.compute("symbol_hhi", {"clean": clean})
    assert hhi["hhi"].between(0, 10_000).all()
    single = hhi["venue_count"] == 1
    assert hhi.loc[single, "hhi"].tolist() == pytest.approx([10_000.0] * int(single.sum()))
    ts = calcs.compute("tier_summary", {"venue_share": vs,
                                        "symbol_week": calcs.symbol_week(clean)},
                       week_start=week, tier="T1", trading_days={week: 5})
    assert 0 <= ts["venue_hhi"].iloc[0] <= 10_000
    if len(vs) == 1:
        assert ts["venue_hhi"].iloc[0] == pytest.approx(10_000)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(1, 1e8, allow_nan=False), min_size=13, max_size=13),
       st.integers(0, 12))
def test_per_trading_day_values_do_not_change_when_a_week_is_split_evenly(per_day, holiday):
    """A week with fewer trading days and proportionally fewer shares reads the same per
    trading day as if it had five."""
    holiday_week = WEEKS[holiday]
    days = {w: 5 for w in WEEKS} | {holiday_week: 3}
    full = {"AAA": [v * 5 for v in per_day]}
    split = {"AAA": [v * days[w] for v, w in zip(per_day, WEEKS)]}

    def run(vols, days):
        sw = pd.DataFrame({"week_start": WEEKS, "tier": "T1", "symbol": "AAA",
                           "total_shares": vols["AAA"], "total_trades": 10,
                           "ats_shares": [v / 2 for v in vols["AAA"]]})
        return calcs.compute("symbol_trend", {"symbol_week": sw},
                             week_start=WEEKS[-1], trading_days=days).iloc[0]

    a, b = run(full, {w: 5 for w in WEEKS}), run(split, days)
    for col in ("shares_per_day", "mean_4w_shares_per_day", "mean_13w_shares_per_day",
                "prior_shares_per_day", "z_shares_per_day", "wow_change"):
        assert b[col] == pytest.approx(a[col], rel=1e-9, nan_ok=True), col
