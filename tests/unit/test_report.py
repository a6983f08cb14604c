"""Report formatting: what a reviewer reads has no raw Python reprs and no float noise."""

import re

import numpy as np
import pandas as pd

from spine.derive import calcs
from spine.ingest import reconcile
from spine.reports import index, style
from spine.reports import revision as revisions
from spine.reports.symbol import Symbol
from spine.reports.weekly import Week
from spine import calendar as cal
from tests.helpers import REPO
from spine.ingest import ledger

REPRS = re.compile(r">\s*(None|nan|NaN|NaT|<NA>|inf)\s*<|Timestamp\(|\d{2}:\d{2}:\d{2}<|"
                   r"\de[+-]\d\d|\.\d{5,}<")


def test_styled_tables_have_no_raw_reprs():
    df = pd.DataFrame({
        "summary_type": ["ATS_W_SMBL_FIRM", "OTC_W_SMBL_FIRM"],
        "participant_name": [None, "X LLC"],
        "shares": [4584707340.5117, np.nan],
        "odd_measure": [56.0, -4.241e6],
        "small_measure": [0.123456789, None],
        "week_start": pd.to_datetime(["2025-08-21", None]),
        "ats_share": [0.5, np.nan],
        "rank_change": pd.array([1, None], dtype="Int64"),
    })
    html = style.styled(df).to_html()
    assert not REPRS.search(html), REPRS.search(html)
    assert "4,584,707,341" in html and "-4,241,000" in html and "2025-08-21<" in html
    assert ">ATS<" in html and ">non-ATS<" in html  # FINRA's codes in words
    assert ">ATS share<" in html and ">Participant name<" in html


def test_gate_measurements_read_as_numbers():
    assert reconcile.plain(None) == "-"
    assert reconcile.plain(1234567.891) == "1,234,568"
    assert reconcile.plain([1, 2.5]) == "1, 2.5"
    assert style.header("z_shares_per_day") == "Z-score shares per day"
    assert style.header("mean_13w_tier_share") == "Mean 13-week tier share"


# --- reports that say what they show ---------------------------------------------------------

WEEKS = [pd.Timestamp("2025-05-05") + pd.Timedelta(weeks=i) for i in range(5)]  # 05-26: 4 days
DAYS = {w: cal.trading_days(w.date()) for w in WEEKS}


def week_of(calcs_: dict, history: dict | None = None) -> Week:
    tiers = list(calcs_)
    return Week(WEEKS[-1].date(), tiers, gates={t: {} for t in tiers}, calcs=calcs_,
                history=history or {})


def movers_after(per_day: dict[str, list[float]]) -> pd.DataFrame:
    """movers of the last of WEEKS, from each symbol's shares per trading day in WEEKS."""
    sw = pd.DataFrame([{"week_start": w, "tier": "T1", "symbol": sym, "total_shares": v * DAYS[w],
                        "total_trades": 100, "ats_shares": v * DAYS[w] / 2}
                       for sym, vols in per_day.items() for w, v in zip(WEEKS, vols) if v])
    trend = calcs.compute("symbol_trend", {"symbol_week": sw}, week_start=WEEKS[-1],
                          trading_days=DAYS)
    return trend, calcs.compute("movers", {"symbol_trend": trend})


def test_movers_start_from_three_earlier_weeks_and_say_how_many():
    """The first weekly update holds 8 weeks: a z-score must not wait for 8 earlier ones."""
    trend, movers = movers_after({"UP": [50e3, 60e3, 40e3, 50e3, 200e3],
                                  "DOWN": [50e3, 60e3, 40e3, 50e3, 5e3],
                                  "NEW": [None, None, 50e3, 60e3, 300e3]})  # 2 earlier weeks
    z = trend.set_index("symbol")["z_shares_per_day"]
    assert z["UP"] > 0 > z["DOWN"] and pd.isna(z["NEW"])
    shown = week_of({"T1": {"movers": movers}}).movers(10)["T1"]
    assert shown["symbol"].tolist() == ["UP", "DOWN"]
    assert shown["earlier_weeks"].tolist() == [4, 4]
    note = week_of({"T1": {"movers": movers}}).movers_note(10)
    assert "at least 3" in note and "T1: every z-score below uses 4 earlier weeks" in note
    assert "Earlier weeks (of 12)<" in style.styled(shown).to_html()
    empty = week_of({"T1": {"movers": calcs.empty("movers")}},
                    {"T1": {"tier_summary": pd.DataFrame({"week_start": WEEKS[-2:]})}})
    assert "No symbol has 3 earlier weeks yet" in empty.movers_note(10)
    assert "T1 2" in empty.movers_note(10)


def venue_trend_table() -> pd.DataFrame:
    return pd.DataFrame({"rank": pd.array([1, 2], dtype="Int64"),
                         "rank_change": pd.array([0, 1], dtype="Int64"),
                         "venue": ["XA ATS", "ZF non-ATS"],
                         "summary_type": ["ATS_W_SMBL_FIRM", "OTC_W_SMBL_FIRM"],
                         "participant_name": ["X", "Z"], "shares": [600.0, 400.0],
                         "tier_share": [0.6, 0.4], "mean_13w_tier_share": [0.55, 0.45],
                         "status": ["continuing", "continuing"]})


def test_a_window_shorter_than_its_name_says_how_many_weeks_it_holds():
    short = week_of({"T1": {"venue_trend": venue_trend_table()}},
                    {"T1": {"tier_summary": pd.DataFrame({"week_start": WEEKS})}})
    html = style.styled(short.top_venues(5)["T1"]).to_html()
    assert "Mean tier share (5 of 13 weeks)<" in html and "13-week" not in html
    assert "T1 5 of 13 weeks" in short.window_note()
    full = pd.DataFrame({"week_start": [WEEKS[-1] - pd.Timedelta(weeks=i) for i in range(13)]})
    whole = week_of({"T1": {"venue_trend": venue_trend_table()}},
                    {"T1": {"tier_summary": full}})
    assert "Mean 13-week tier share<" in style.styled(whole.top_venues(5)["T1"]).to_html()
    assert whole.window_note() == "All 13 weeks are in the lake for T1."
    # the revision report's symbol trend: the weeks of its window the lake holds
    assert "5 of the 13 weeks of its window (this one and 4 earlier)" in revisions.trend_note(
        [w.date() for w in WEEKS[:-1]])
    assert style.window_label("shares per day before", 5) == (
        "Mean shares per day before (5 of 13 weeks)")


def a_symbol() -> Symbol:
    weekly = pd.DataFrame({"week_start": WEEKS[-2:], "issue_name": "Alpha Inc",
                           "ats_shares": [1e6, 2e6], "non_ats_shares": [3e6, 3e6],
                           "total_shares": [4e6, 5e6], "total_trades": [100, 120]})
    trend = pd.DataFrame({"week_start": WEEKS[-2:], "mean_13w_shares_per_day": [8e5, 9e5],
                          "weeks_in_window": [4, 5], "z_shares_per_day": [None, 1.5],
                          "wow_change": [0.1, 0.25]})
    short = pd.DataFrame({"week_start": WEEKS[-2:], "short_ratio": [0.4, 0.5],
                          "otc_share_of_regsho": [0.9, 1.3]})
    return Symbol("T1", "ALPH", weekly, trend, pd.DataFrame(), short, pd.DataFrame())


def test_the_symbol_table_says_how_many_weeks_each_mean_holds():
    s = a_symbol()
    html = style.styled(s.table()).to_html()
    assert "Mean shares per day, its weeks of the last 13<" in html
    assert "Weeks in the mean (of 13)<" in html and "13-week" not in html
    assert "at least 3" in s.table_note()


def test_otc_share_of_regsho_above_100_percent_says_why_on_the_page():
    sv = pd.DataFrame({"otc_share_of_regsho": [0.8, 1.4, None]})
    note = week_of({"T1": {"short_volume_weekly": sv}}).short_volume_note()
    assert "can exceed 100%" in note and "media-reported" in note
    assert "T1: 1 of 2 symbols above 100%" in note
    assert "ALPH: 1 of 2 weeks above 100%" in a_symbol().table_note()
    # and the pages show the notes
    for notebook, calls in (("weekly_report", ["week.short_volume_note()", "week.movers_note(",
                                               "week.window_note()"]),
                            ("symbol_report", ["s.table_note()"]),
                            ("revision_report", ["revisions.trend_note("])):
        source = (REPO / "notebooks" / f"{notebook}.ipynb").read_text()
        assert all(c in source for c in calls), notebook


def test_the_index_shows_each_weeks_status_and_links_its_revisions(tmp_path):
    listing = {
        "weekly": [["2025-06-02", {"T1": ["accepted", "restated"], "T2": ["held back"]}],
                   ["2025-06-09", {"T1": ["overridden", "revision held back"],
                                   "OTCE": ["pinned"]}]],
        "revisions": [["T1", "2025-06-02", "a" * 16, "b" * 16, "accepted",
                       "20250801T120000000000"]],
        "symbols": []}
    out = tmp_path / "index.html"
    index.report_index(listing["weekly"], listing["revisions"], listing["symbols"], str(out))
    html = out.read_text()
    rows = {m.group(1): m.group(0) for m in re.finditer(
        r"<tr><td><a href=\"weekly/week_start=([\d-]+)\.html\">.*?</tr>", html)}
    assert list(rows) == ["2025-06-09", "2025-06-02"]  # newest first
    assert "<th>T1</th><th>T2</th><th>OTCE</th><th>revisions</th>" in html
    assert "<td>accepted, restated</td><td><b>held back</b></td><td>-</td>" in rows["2025-06-02"]
    assert ('href="revisions/tier=T1/week_start=2025-06-02/' + "a" * 16 + "_to_" + "b" * 16
            + '.html"') in rows["2025-06-02"]
    assert "<b>overridden</b>, <b>revision held back</b>" in rows["2025-06-09"]
    assert "<b>pinned</b>" in rows["2025-06-09"] and "revisions/" not in rows["2025-06-09"]
    assert all(f"<b>{s}</b>:" in html or f"<li>{s}:" in html for s in index.INDEX_STATUS)


def test_index_listing_derives_each_status_from_the_ledger():
    a, b, c = "a" * 16, "b" * 16, "c" * 16

    def ev(n, event, capture):
        return f"2025080{n}T120000000000-{event}-{capture}.parquet"
    st = ledger.LakeState({
        "T1/2025-06-02": [ev(1, "captured", a), ev(1, "accepted", a), ev(2, "captured", b),
                          ev(2, "accepted", b), ev(3, "captured", c), ev(3, "refused", c)],
        "T2/2025-06-02": [ev(1, "captured", a), ev(1, "refused", a)],
        "OTCE/2025-06-02": [ev(1, "captured", a), ev(1, "refused", a), ev(2, "overridden", a)],
        "T1/2025-06-09": [ev(1, "captured", a), ev(1, "accepted", a), ev(2, "captured", b),
                          ev(2, "accepted", b), ev(3, "pinned", a)],
    })
    assert st.week_statuses() == [
        ["2025-06-02", {"T1": ["accepted", "restated", "revision held back"],
                        "T2": ["held back"], "OTCE": ["overridden"]}],
        ["2025-06-09", {"T1": ["pinned", "restated"]}]]
    assert [r[:4] for r in st.revision_list()] == [
        ["T1", "2025-06-02", a, b], ["T1", "2025-06-02", b, c], ["T1", "2025-06-09", a, b]]
