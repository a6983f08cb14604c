"""FINRA's special rows through every registered calculation, with numbers worked out by hand.

docs/data-contract.md, "How each calculation treats FINRA's special rows", states what each
calculation does with each case; these tests hold the code to it:
1. non-ATS firms without an MPID, keyed by CRD number: one venue per CRD;
2. the pooled "De Minimis Firms" row (weeks before 2019-11-11): one venue, labelled
   `De Minimis Firms (pooled) non-ATS`, its shares in every total;
3. fractional share quantities (from 2026-02-23): kept in every sum and ratio;
4. a tape move (CTS and UTP rows) is one security line, a reused ticker (two issue names) two;
   per-symbol calculations sum a symbol's lines;
5. tier values outside T1/T2/OTCE never reach a calculation: the clean schema refuses them.

Every expected value below is computed by hand in the comments (not by the code under test);
each input table is a valid clean table (checked with `CleanWeekly`).
"""

import pandas as pd
import pandera.errors
import pytest

from spine.derive import calcs, registry
from spine.ingest.venues import venue_label
from spine.schemas import CLEAN_COLUMNS, CleanWeekly, RegShoDaily

POOL = "De Minimis Firms (pooled) non-ATS"  # the pooled row's venue label


def row(symbol, kind, shares, trades, *, mpid=None, crd=None, name=None, issue=None,
        product="UTP"):
    """One clean row: kind 'ATS' or 'OTC' (non-ATS); a venue by MPID, CRD number or name."""
    return {"symbol": symbol, "kind": kind, "shares": shares, "trades": trades, "mpid": mpid,
            "crd": crd, "name": name if name is not None else (f"{mpid} LLC" if mpid else None),
            "issue": issue or f"{symbol} Inc Common Stock", "product": product}


def pool(symbol, shares, trades, **kw):
    """FINRA's pooled row: non-ATS, no MPID, no CRD number, "De Minimis Firms"."""
    return row(symbol, "OTC", shares, trades, name="De Minimis Firms", **kw)


def clean(rows, week, tier):
    """A clean (tier, week) in CLEAN_COLUMNS order with CleanWeekly's dtypes, validated."""
    week = pd.Timestamp(week)
    published = week + pd.Timedelta(days=21)
    df = pd.DataFrame([{
        "week_start": week, "tier": tier,
        "summary_type": "ATS_W_SMBL_FIRM" if r["kind"] == "ATS" else "OTC_W_SMBL_FIRM",
        "symbol": r["symbol"], "issue_name": r["issue"], "mpid": r["mpid"],
        "firm_crd": r["crd"], "participant_name": r["name"], "product_type": r["product"],
        "shares": float(r["shares"]), "trades": r["trades"], "notional": None,
        "initial_published": published, "last_updated": published, "capture_id": "c0ffee",
    } for r in rows])[CLEAN_COLUMNS]
    df["week_start"] = df["week_start"].astype("datetime64[ns]")
    for col in ("initial_published", "last_updated"):
        df[col] = df[col].astype("datetime64[ns]")
    df["firm_crd"] = df["firm_crd"].astype("Int64")
    df["trades"] = df["trades"].astype("Int64")
    df["notional"] = df["notional"].astype(float)
    for col in ("tier", "summary_type", "symbol", "issue_name", "mpid", "participant_name",
                "product_type", "capture_id"):
        df[col] = df[col].astype("str")
    return CleanWeekly.validate(df)


def regsho(days: dict[str, list[tuple[str, float, float]]]) -> pd.DataFrame:
    """trade date -> [(symbol, short volume, total volume)], as clean Reg SHO."""
    df = pd.DataFrame([{"trade_date": pd.Timestamp(d), "symbol": s, "short_volume": float(sv),
                        "short_exempt_volume": 0.0, "total_volume": float(tv), "market": "B,Q,N",
                        "capture_id": "5h0r7"} for d, rows in days.items() for s, sv, tv in rows])
    df["trade_date"] = df["trade_date"].astype("datetime64[ns]")
    for col in ("symbol", "market", "capture_id"):
        df[col] = df[col].astype("str")
    return RegShoDaily.validate(df)


def derive(cleans: dict, tier: str, trading_days: dict, regsho_weeks: dict | None = None):
    """Every registered calculation of the tier for each week (in date order), the way the
    pipeline feeds them: `clean` of the week, Reg SHO of the week (when given), another
    calculation's output of the week or of its window of weeks. week -> name -> output."""
    regsho_weeks = regsho_weeks or {}
    done: dict = {}
    for week in sorted(pd.Timestamp(w) for w in cleans):
        out = done.setdefault(week, {})
        for entry in registry.for_tier(tier, regsho=week in regsho_weeks):
            inputs = {}
            for i in entry.inputs:
                if i.name == "clean":
                    inputs["clean"] = cleans[week]
                elif i.name == "regsho":
                    inputs["regsho"] = regsho_weeks[week]
                else:
                    first = week - pd.Timedelta(weeks=i.weeks - 1)
                    inputs[i.name] = pd.concat(
                        [done[w][i.name] for w in sorted(done) if first <= w <= week],
                        ignore_index=True)
            out[entry.name] = calcs.compute(entry.name, inputs, tier=tier, week_start=week,
                                            trading_days=trading_days)
    return done


def by_venue(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.set_index(venue_label(frame))


# --- 1. non-ATS firms keyed by CRD number -------------------------------------------------------

def test_crd_only_firms_are_one_venue_per_crd_through_every_calculation():
    """T1, 2025-06-02 (5 trading days). Non-ATS firms without an MPID: CRD 111 (its name
    spelled two ways), CRD 222, and CRD 333 and CRD 555 whose MPID is blank ("").

    AAA: NITE 500 (5 trades), CRD 111 100 (1), CRD 222 200 (2), CRD 333 100 (1),
         CRD 555 100 (1)                   -> 1,000 shares, 10 trades, 5 venues
         HHI = 50^2 + 10^2 + 20^2 + 10^2 + 10^2 = 2500 + 100 + 400 + 100 + 100 = 3,200
         (were the two blank MPIDs one venue: 2500 + 100 + 400 + 20^2 = 3,400, 4 venues)
    BBB: XATS 100 (1), NITE 200 (2), CRD 111 200 (2)   -> 500 shares, 5 trades, 3 venues
         HHI = 20^2 + 40^2 + 40^2 = 400 + 1600 + 1600 = 3,600
    Tier: 1,500 shares, 15 trades. Venues: NITE 700, CRD 111 300, CRD 222 200, then CRD 333,
    CRD 555 and XATS 100 each (tied 4th). ATS share 100 / 1500 = 1/15.
    venue HHI = (700^2 + 300^2 + 200^2 + 3 * 100^2) / 1500^2 * 10,000
              = (490,000 + 90,000 + 40,000 + 30,000) / 2,250,000 * 10,000 = 26,000 / 9.
    """
    week = pd.Timestamp("2025-06-02")
    rows = [row("AAA", "OTC", 500, 5, mpid="NITE", crd=444),
            row("AAA", "OTC", 100, 1, crd=111, name="ALPHA DEALER LLC"),
            row("AAA", "OTC", 200, 2, crd=222, name="BETA DEALER LLC"),
            row("AAA", "OTC", 100, 1, mpid="", crd=333, name="GAMMA DEALER LLC"),
            row("AAA", "OTC", 100, 1, mpid="", crd=555, name="DELTA DEALER LLC"),
            row("BBB", "ATS", 100, 1, mpid="XATS"),
            row("BBB", "OTC", 200, 2, mpid="NITE", crd=444),
            row("BBB", "OTC", 200, 2, crd=111, name="ALPHA DEALER L.L.C.")]
    c = clean(rows, week, "T1")
    assert venue_label(c).tolist() == [
        "NITE non-ATS", "CRD 111 non-ATS", "CRD 222 non-ATS", "CRD 333 non-ATS",
        "CRD 555 non-ATS", "XATS ATS", "NITE non-ATS", "CRD 111 non-ATS"]
    rs = regsho({"2025-06-02": [("AAA", 400, 2000)]})
    out = derive({week: c}, "T1", {week: 5}, {week: rs})[week]
    assert set(out) == set(registry.names())

    sw = out["symbol_week"].set_index("symbol")
    assert sw.loc["AAA", "venue_count"] == 5 and sw.loc["BBB", "venue_count"] == 3
    assert sw.loc["AAA", "non_ats_shares"] == 1000 and sw.loc["AAA", "ats_share"] == 0.0
    h = out["symbol_hhi"].set_index("symbol")
    assert h.loc["AAA", "hhi"] == pytest.approx(3200) and h.loc["AAA", "venue_count"] == 5
    assert h.loc["BBB", "hhi"] == pytest.approx(3600) and h.loc["BBB", "venue_count"] == 3

    vs = by_venue(out["venue_share"])
    assert len(vs) == 6  # one row per CRD, whatever the spelling of its name
    crd111 = vs.loc["CRD 111 non-ATS"]
    assert (crd111.shares, crd111.trades, crd111.symbols, crd111["rank"]) == (300, 3, 2, 2)
    assert pd.isna(crd111.mpid) and crd111.firm_crd == 111
    assert crd111.participant_name == "ALPHA DEALER LLC"  # the first name given
    assert crd111.tier_share == pytest.approx(300 / 1500)
    for blank, crd in (("CRD 333 non-ATS", 333), ("CRD 555 non-ATS", 555)):
        assert pd.isna(vs.loc[blank, "mpid"]) and vs.loc[blank, "firm_crd"] == crd
    assert vs["rank"].to_dict() == {"NITE non-ATS": 1, "CRD 111 non-ATS": 2,
                                    "CRD 222 non-ATS": 3, "CRD 333 non-ATS": 4,
                                    "CRD 555 non-ATS": 4, "XATS ATS": 4}

    ts = out["tier_summary"].iloc[0]
    assert (ts.total_shares, ts.total_trades, ts.ats_venues, ts.non_ats_venues) == (1500, 15, 1, 5)
    assert ts.ats_share == pytest.approx(1 / 15)
    assert ts.venue_hhi == pytest.approx(26_000 / 9)

    vt = out["venue_trend"].set_index("venue")
    assert set(vt.index) == {"NITE non-ATS", "CRD 111 non-ATS", "CRD 222 non-ATS",
                             "CRD 333 non-ATS", "CRD 555 non-ATS", "XATS ATS"}
    # non-ATS total 1,400: CRD 111's share of it 300 / 1400
    assert vt.loc["CRD 111 non-ATS", "type_share"] == pytest.approx(300 / 1400)
    assert set(vt["status"]) == {"no_previous_week"}

    # per-symbol calculations see volumes, not venues: CRD-only volume is in the totals
    st = out["symbol_trend"].set_index("symbol")
    assert st.loc["AAA", "shares"] == 1000 and st.loc["AAA", "shares_per_day"] == 200
    sv = out["short_volume_weekly"].set_index("symbol")
    assert sv.loc["AAA", "otc_total_shares"] == 1000
    assert sv.loc["AAA", "otc_share_of_regsho"] == pytest.approx(1000 / 2000)
    assert out["movers"].empty  # one week: no symbol has an earlier week


# --- 2. the pooled De Minimis row ----------------------------------------------------------------

DM_WEEKS = [pd.Timestamp("2019-09-30"), pd.Timestamp("2019-10-07")]  # 5 trading days each


def de_minimis_weeks():
    """T2. 2019-09-30:  AAA  XATS 200,000 (2 trades), NITE 400,000 (4), pool 200,000 (20)
                        BBB  pool 50,000 (5)
       2019-10-07:  AAA  XATS 300,000 (3), NITE 500,000 (5), CRD 12345 100,000 (2),
                         pool 100,000 (10)
                    BBB  pool 40,000 (4)            (a symbol only the pooled firms traded)
                    CCC  XATS 60,000 (6)"""
    w0, w1 = DM_WEEKS
    c0 = clean([row("AAA", "ATS", 200_000, 2, mpid="XATS"),
                row("AAA", "OTC", 400_000, 4, mpid="NITE", crd=444),
                pool("AAA", 200_000, 20), pool("BBB", 50_000, 5)], w0, "T2")
    c1 = clean([row("AAA", "ATS", 300_000, 3, mpid="XATS"),
                row("AAA", "OTC", 500_000, 5, mpid="NITE", crd=444),
                row("AAA", "OTC", 100_000, 2, crd=12345, name="SMALL DEALER LLC"),
                pool("AAA", 100_000, 10), pool("BBB", 40_000, 4),
                row("CCC", "ATS", 60_000, 6, mpid="XATS")], w1, "T2")
    # Reg SHO 2019-10-07: AAA 100,000 short of 400,000 each of the 5 days; CCC one day
    days = pd.date_range("2019-10-07", periods=5).strftime("%Y-%m-%d")
    rs = regsho({d: [("AAA", 100_000, 400_000)] + ([("CCC", 30_000, 60_000)] if i == 0 else [])
                 for i, d in enumerate(days)})
    return derive({w0: c0, w1: c1}, "T2", {w: 5 for w in DM_WEEKS}, {w1: rs})


def test_the_pooled_row_is_one_labelled_venue_and_its_shares_count_everywhere():
    out = de_minimis_weeks()[DM_WEEKS[1]]
    assert set(out) == set(registry.names())

    # symbol_week, 2019-10-07:
    #   AAA: ATS 300,000 / 3; non-ATS 500,000 + 100,000 + 100,000 = 700,000 / 5 + 2 + 10 = 17
    #        total 1,000,000 / 20, ATS share 0.3, venues XATS, NITE, CRD 12345, pool = 4,
    #        average trade 1,000,000 / 20 = 50,000
    #   BBB: only the pool: 40,000 / 4, ATS share 0, 1 venue, average trade 10,000
    sw = out["symbol_week"].set_index("symbol")
    a = sw.loc["AAA"]
    assert (a.ats_shares, a.ats_trades, a.non_ats_shares, a.non_ats_trades) == (
        300_000, 3, 700_000, 17)
    assert (a.total_shares, a.total_trades, a.venue_count) == (1_000_000, 20, 4)
    assert a.ats_share == pytest.approx(0.3) and a.avg_trade_size == 50_000
    b = sw.loc["BBB"]
    assert (b.total_shares, b.total_trades, b.non_ats_shares, b.venue_count) == (
        40_000, 4, 40_000, 1)
    assert b.ats_share == 0.0 and b.avg_trade_size == 10_000

    # symbol_hhi: AAA shares 30%, 50%, 10%, 10% -> 900 + 2500 + 100 + 100 = 3,600;
    # BBB: the pool alone -> 10,000, its top venue the (labelled) pool
    h = out["symbol_hhi"].set_index("symbol")
    assert h.loc["AAA", "hhi"] == pytest.approx(3600) and h.loc["AAA", "venue_count"] == 4
    assert h.loc["AAA", "top_venue"] == "NITE non-ATS"
    assert h.loc["AAA", "top_venue_share"] == pytest.approx(0.5)
    assert h.loc["BBB", "hhi"] == pytest.approx(10_000) and h.loc["BBB", "venue_count"] == 1
    assert h.loc["BBB", "top_venue"] == POOL and h.loc["BBB", "top_venue_share"] == 1.0

    # venue_share: the tier's 1,100,000 shares: NITE 500,000 (1st), XATS 360,000 / 9 trades /
    # 2 symbols (2nd), the pool 100,000 + 40,000 = 140,000 / 14 trades / 2 symbols (3rd, as
    # FINRA's firm aggregate lists it), CRD 12345 100,000 (4th); the shares sum to 1
    vs = by_venue(out["venue_share"])
    assert vs["rank"].to_dict() == {"NITE non-ATS": 1, "XATS ATS": 2, POOL: 3,
                                    "CRD 12345 non-ATS": 4}
    p = vs.loc[POOL]
    assert (p.shares, p.trades, p.symbols) == (140_000, 14, 2)
    assert pd.isna(p.mpid) and pd.isna(p.firm_crd) and p.participant_name == "De Minimis Firms"
    assert p.tier_share == pytest.approx(140_000 / 1_100_000)
    assert vs["tier_share"].sum() == pytest.approx(1.0)

    # tier_summary: 1,100,000 shares, 3 + 5 + 2 + 10 + 4 + 6 = 30 trades, 5 days;
    # ATS share 360,000 / 1,100,000 (the pool's 140,000 in the denominator); venues 1 ATS,
    # 3 non-ATS (NITE, CRD 12345, the pool);
    # HHI (500^2 + 360^2 + 140^2 + 100^2) / 1100^2 * 10,000 = 409,200 / 1,210,000 * 10,000
    #     = 37,200 / 11
    ts = out["tier_summary"].iloc[0]
    assert (ts.total_shares, ts.total_trades, ts.trading_days, ts.symbols) == (1_100_000, 30, 5, 3)
    assert ts.shares_per_day == 220_000 and ts.trades_per_day == 6
    assert ts.ats_share == pytest.approx(360_000 / 1_100_000)
    assert (ts.ats_venues, ts.non_ats_venues) == (1, 3)
    assert ts.venue_hhi == pytest.approx(37_200 / 11)
    assert ts.avg_trade_size == pytest.approx(1_100_000 / 30)

    # venue_trend: 2019-09-30's tier had 850,000 shares: NITE 400,000 (1st), the pool 250,000
    # (2nd), XATS 200,000 (3rd). The pool continues, 2nd -> 3rd (rank change -1); its share
    # of the non-ATS side 140,000 / (500,000 + 100,000 + 140,000) = 140 / 740
    vt = out["venue_trend"].set_index("venue")
    p = vt.loc[POOL]
    assert (p.status, p["rank"], p.previous_rank, p.rank_change) == ("continuing", 3, 2, -1)
    assert p.participant_name == "De Minimis Firms" and p.weeks_in_window == 2
    assert p.type_share == pytest.approx(140 / 740)
    assert p.mean_4w_tier_share == pytest.approx((250 / 850 + 140 / 1100) / 2)
    assert vt.loc["CRD 12345 non-ATS", "status"] == "entered"
    assert vt.loc["XATS ATS", "rank_change"] == 1  # 3rd -> 2nd

    # symbol_trend: AAA 1,000,000 / 5 = 200,000 a day, 2019-09-30 800,000 / 5 = 160,000;
    # mean (160,000 + 200,000) / 2 = 180,000; change 200,000 / 160,000 - 1 = 0.25.
    # BBB (only pooled firms): 8,000 a day against 10,000: change -0.2
    st = out["symbol_trend"].set_index("symbol")
    a = st.loc["AAA"]
    assert (a.shares, a.trades, a.shares_per_day, a.trades_per_day) == (1_000_000, 20, 200_000, 4)
    assert a.ats_share == pytest.approx(0.3) and a.prior_shares_per_day == 160_000
    assert a.mean_4w_shares_per_day == 180_000 and a.mean_13w_shares_per_day == 180_000
    assert a.weeks_in_window == 2 and pd.isna(a.z_shares_per_day)
    assert a.wow_change == pytest.approx(0.25)
    assert st.loc["BBB", "shares_per_day"] == 8_000 and st.loc["BBB", "ats_share"] == 0.0
    assert st.loc["BBB", "wow_change"] == pytest.approx(-0.2)

    # movers (by shares per day; no z-score with one earlier week): AAA rises 200,000 -
    # 160,000 = 40,000 a day; BBB falls 8,000 - 10,000 = -2,000 (its 10,000 a day last week
    # meets the 10,000 floor); CCC has no earlier week
    mv = out["movers"]
    assert set(mv["ranked_by"]) == {"shares_per_day"}
    rise, fall = mv[mv["direction"] == "rise"].iloc[0], mv[mv["direction"] == "fall"].iloc[0]
    assert (rise.symbol, rise["rank"], rise.change_shares_per_day) == ("AAA", 1, 40_000)
    assert (fall.symbol, fall["rank"], fall.change_shares_per_day) == ("BBB", 1, -2_000)
    assert len(mv) == 2

    # short_volume_weekly: AAA Reg SHO 5 x 100,000 = 500,000 short of 5 x 400,000 = 2,000,000
    # (ratio 0.25); OTC total 1,000,000 (the pool's 100,000 in it) = 0.5 of Reg SHO's volume.
    # BBB: no Reg SHO rows: no ratio, but its OTC total is the pool's 40,000.
    sv = out["short_volume_weekly"].set_index("symbol")
    a = sv.loc["AAA"]
    assert (a.short_volume, a.total_volume, a.days_with_data, a.trading_days) == (
        500_000, 2_000_000, 5, 5)
    assert a.short_ratio == 0.25 and a.otc_total_shares == 1_000_000
    assert a.otc_share_of_regsho == 0.5 and a.ats_share == pytest.approx(0.3)
    b = sv.loc["BBB"]
    assert b.otc_total_shares == 40_000 and b.ats_share == 0.0 and b.days_with_data == 0
    assert pd.isna(b.short_ratio) and pd.isna(b.otc_share_of_regsho)
    assert sv.loc["CCC", "short_ratio"] == 0.5 and sv.loc["CCC", "otc_share_of_regsho"] == 1.0


def test_the_pool_ends_on_2019_11_11_and_a_firm_named_de_minimis_is_a_firm():
    """T2. 2019-11-04: AAA XATS 300, NITE 500, pool 200.
    2019-11-11 (FINRA names every firm): AAA XATS 300, NITE 500, CRD 777 120, and a firm
    without MPID or CRD whose name is "DE MINIMIS BROKER DEALER A" 80: a firm, not the pool.
    AAA's HHI: 30^2 + 50^2 + 20^2 = 3,800 with 3 venues, then
    30^2 + 50^2 + 12^2 + 8^2 = 900 + 2500 + 144 + 64 = 3,608 with 4: the series breaks there."""
    w0, w1 = pd.Timestamp("2019-11-04"), pd.Timestamp("2019-11-11")
    c0 = clean([row("AAA", "ATS", 300, 3, mpid="XATS"), row("AAA", "OTC", 500, 5, mpid="NITE"),
                pool("AAA", 200, 20)], w0, "T2")
    c1 = clean([row("AAA", "ATS", 300, 3, mpid="XATS"), row("AAA", "OTC", 500, 5, mpid="NITE"),
                row("AAA", "OTC", 120, 6, crd=777, name="TINY BD LLC"),
                row("AAA", "OTC", 80, 8, name="DE MINIMIS BROKER DEALER A")], w1, "T2")
    assert venue_label(c1).tolist()[-1] == "DE MINIMIS BROKER DEALER A non-ATS"
    out = derive({w0: c0, w1: c1}, "T2", {w0: 5, w1: 5})
    h0, h1 = out[w0]["symbol_hhi"].iloc[0], out[w1]["symbol_hhi"].iloc[0]
    assert (h0.hhi, h0.venue_count) == (pytest.approx(3800), 3)
    assert (h1.hhi, h1.venue_count) == (pytest.approx(3608), 4)
    assert out[w0]["tier_summary"]["non_ats_venues"].iloc[0] == 2  # NITE and the pool
    vt = out[w1]["venue_trend"].set_index("venue")
    gone = vt.loc[POOL]  # 2019-11-04: 200 of 1,000 = 0.2 of the tier, 3rd
    assert (gone.status, gone.shares, gone.tier_share, gone.previous_rank) == ("exited", 0, 0, 3)
    assert pd.isna(gone["rank"]) and gone.mean_4w_tier_share == pytest.approx((0.2 + 0) / 2)
    crd = vt.loc["CRD 777 non-ATS"]
    assert (crd.status, crd["rank"]) == ("entered", 3)
    firm = vt.loc["DE MINIMIS BROKER DEALER A non-ATS"]
    assert (firm.status, firm["rank"]) == ("entered", 4)


# --- 3. fractional share quantities --------------------------------------------------------------

FR_WEEKS = [pd.Timestamp("2026-02-23"), pd.Timestamp("2026-03-02")]  # 5 trading days each


def fractional_weeks():
    """T1. 2026-02-23: FRAC XATS 80.5 (2 trades), NITE 170 (3); BIG NITE 250,000.5 (100)
    2026-03-02: FRAC XATS 100.25 (3), NITE 200.5 (4), JNST 0.125 (1)
                BIG  NITE 200,000.25 (50), XATS 100,000.5 (50)
                ODD  NITE 33,454.3651 (7)           (a quantity as FINRA's files carry it)"""
    w0, w1 = FR_WEEKS
    c0 = clean([row("FRAC", "ATS", 80.5, 2, mpid="XATS"), row("FRAC", "OTC", 170, 3, mpid="NITE"),
                row("BIG", "OTC", 250_000.5, 100, mpid="NITE")], w0, "T1")
    c1 = clean([row("FRAC", "ATS", 100.25, 3, mpid="XATS"),
                row("FRAC", "OTC", 200.5, 4, mpid="NITE"),
                row("FRAC", "OTC", 0.125, 1, mpid="JNST"),
                row("BIG", "OTC", 200_000.25, 50, mpid="NITE"),
                row("BIG", "ATS", 100_000.5, 50, mpid="XATS"),
                row("ODD", "OTC", 33_454.3651, 7, mpid="NITE")], w1, "T1")
    # Reg SHO (fractional too): FRAC 10.25 short of 30.75 on 03-02, 5.5 of 20.5 on 03-03
    rs = regsho({"2026-03-02": [("FRAC", 10.25, 30.75)], "2026-03-03": [("FRAC", 5.5, 20.5)]})
    return derive({w0: c0, w1: c1}, "T1", {w: 5 for w in FR_WEEKS}, {w1: rs})


def test_fractional_shares_are_kept_in_every_sum_and_ratio():
    out = fractional_weeks()[FR_WEEKS[1]]
    assert set(out) == set(registry.names())

    # symbol_week: FRAC ATS 100.25 / 3, non-ATS 200.5 + 0.125 = 200.625 / 5, total 300.875 / 8;
    # ATS share 100.25 / 300.875 = 802 / 2407 (x 8); average trade 300.875 / 8 = 37.609375
    # (an integer cast would give 300 / 8 = 37.5). BIG: 300,000.75 / 100 = 3,000.0075.
    # ODD: 33,454.3651 / 7. (Quarters, halves and eighths are exact in binary: ==.)
    sw = out["symbol_week"].set_index("symbol")
    f = sw.loc["FRAC"]
    assert (f.ats_shares, f.non_ats_shares, f.total_shares) == (100.25, 200.625, 300.875)
    assert (f.ats_trades, f.non_ats_trades, f.total_trades, f.venue_count) == (3, 5, 8, 3)
    assert f.ats_share == pytest.approx(802 / 2407) and f.avg_trade_size == 37.609375
    assert sw.loc["BIG", "total_shares"] == 300_000.75
    assert sw.loc["BIG", "avg_trade_size"] == pytest.approx(3_000.0075)
    assert sw.loc["ODD", "avg_trade_size"] == pytest.approx(33_454.3651 / 7)

    # symbol_hhi FRAC (in eighths: 802, 1604, 1 of 2407):
    # (802^2 + 1604^2 + 1^2) / 2407^2 * 10,000 = (643,204 + 2,572,816 + 1) / 5,793,649 * 10,000
    h = out["symbol_hhi"].set_index("symbol")
    assert h.loc["FRAC", "total_shares"] == 300.875
    assert h.loc["FRAC", "hhi"] == pytest.approx(3_216_021 / 5_793_649 * 10_000)
    assert h.loc["FRAC", "top_venue"] == "NITE non-ATS"
    assert h.loc["FRAC", "top_venue_share"] == pytest.approx(1604 / 2407)

    # venue_share: NITE 200.5 + 200,000.25 + 33,454.3651 = 233,655.1151 (4 + 50 + 7 = 61
    # trades), XATS 100.25 + 100,000.5 = 100,100.75 (3 + 50 = 53), JNST 0.125 (1);
    # tier 233,655.1151 + 100,100.75 + 0.125 = 333,755.9901
    tier = 333_755.9901
    vs = by_venue(out["venue_share"])
    assert vs.loc["NITE non-ATS", "shares"] == pytest.approx(233_655.1151, abs=1e-9)
    assert vs.loc["XATS ATS", "shares"] == 100_100.75 and vs.loc["JNST non-ATS", "shares"] == 0.125
    assert (vs.loc["NITE non-ATS", "trades"], vs.loc["XATS ATS", "trades"]) == (61, 53)
    assert vs.loc["JNST non-ATS", "tier_share"] == pytest.approx(0.125 / tier)
    assert vs["rank"].to_dict() == {"NITE non-ATS": 1, "XATS ATS": 2, "JNST non-ATS": 3}

    # tier_summary: 333,755.9901 shares, 8 + 100 + 7 = 115 trades, a day 66,751.19802
    ts = out["tier_summary"].iloc[0]
    assert ts.total_shares == pytest.approx(tier, abs=1e-9) and ts.total_trades == 115
    assert ts.shares_per_day == pytest.approx(66_751.19802)
    assert ts.ats_share == pytest.approx(100_100.75 / tier)
    assert ts.avg_trade_size == pytest.approx(tier / 115)
    assert ts.venue_hhi == pytest.approx(
        (233_655.1151 ** 2 + 100_100.75 ** 2 + 0.125 ** 2) / tier ** 2 * 10_000)

    # symbol_trend: FRAC 300.875 / 5 = 60.175 a day, 2026-02-23 250.5 / 5 = 50.1;
    # mean (50.1 + 60.175) / 2 = 55.1375; change 60.175 / 50.1 - 1.
    # BIG 300,000.75 / 5 = 60,000.15 a day against 250,000.5 / 5 = 50,000.1
    st = out["symbol_trend"].set_index("symbol")
    f = st.loc["FRAC"]
    assert f.shares == 300.875 and f.shares_per_day == pytest.approx(60.175)
    assert f.trades_per_day == pytest.approx(8 / 5)
    assert f.prior_shares_per_day == pytest.approx(50.1)
    assert f.mean_4w_shares_per_day == pytest.approx(55.1375)
    assert f.wow_change == pytest.approx(60.175 / 50.1 - 1)
    assert st.loc["BIG", "shares_per_day"] == pytest.approx(60_000.15)

    # movers: only BIG is above the 10,000-a-day floor with an earlier week; it rises
    # 60,000.15 - 50,000.1 = 10,000.05 a day (the fraction kept)
    mv = out["movers"]
    assert mv[["symbol", "direction", "ranked_by"]].values.tolist() == [
        ["BIG", "rise", "shares_per_day"]]
    assert mv["change_shares_per_day"].iloc[0] == pytest.approx(10_000.05)
    assert mv["prior_shares_per_day"].iloc[0] == pytest.approx(50_000.1)

    # venue_trend: JNST entered with 0.125 shares; its share of the non-ATS side
    # 0.125 / (233,655.1151 + 0.125)
    vt = out["venue_trend"].set_index("venue")
    j = vt.loc["JNST non-ATS"]
    assert (j.status, j["rank"], j.shares) == ("entered", 3, 0.125)
    assert j.type_share == pytest.approx(0.125 / (233_655.1151 + 0.125))

    # short_volume_weekly: FRAC short 10.25 + 5.5 = 15.75 of 30.75 + 20.5 = 51.25 (ratio
    # 63 / 205); OTC 300.875 / 51.25 of Reg SHO's volume (more than 1: published apart)
    sv = out["short_volume_weekly"].set_index("symbol")
    f = sv.loc["FRAC"]
    assert (f.short_volume, f.total_volume, f.days_with_data) == (15.75, 51.25, 2)
    assert f.short_ratio == pytest.approx(63 / 205) and f.otc_total_shares == 300.875
    assert f.otc_share_of_regsho == pytest.approx(300.875 / 51.25)
    assert f.ats_share == pytest.approx(802 / 2407)


# --- 4. a tape move and a reused ticker ---------------------------------------------------------

TM_WEEKS = [pd.Timestamp("2025-05-26"), pd.Timestamp("2025-06-02")]  # Memorial Day: 4, then 5


def tape_and_reuse_weeks():
    """T1. 2025-05-26: RUSE (Old Issuer) NITE 40,000 (4 trades).
    2025-06-02: TAPE moved tape: CTS XATS 100,000 (1), NITE 300,000 (3);
                                 UTP XATS 200,000 (2), JNST 400,000 (4)
                RUSE reused: "Old Issuer Inc" NITE 100,000 (1);
                             "New Issuer Inc" XATS 50,000 (1), NITE 150,000 (3)"""
    w0, w1 = TM_WEEKS
    old, new, tape = "Old Issuer Inc Common Stock", "New Issuer Inc Common Stock", "Tape Move Corp"
    c0 = clean([row("RUSE", "OTC", 40_000, 4, mpid="NITE", issue=old, product="CTS")], w0, "T1")
    c1 = clean([row("TAPE", "ATS", 100_000, 1, mpid="XATS", issue=tape, product="CTS"),
                row("TAPE", "OTC", 300_000, 3, mpid="NITE", issue=tape, product="CTS"),
                row("TAPE", "ATS", 200_000, 2, mpid="XATS", issue=tape, product="UTP"),
                row("TAPE", "OTC", 400_000, 4, mpid="JNST", issue=tape, product="UTP"),
                row("RUSE", "OTC", 100_000, 1, mpid="NITE", issue=old, product="CTS"),
                row("RUSE", "ATS", 50_000, 1, mpid="XATS", issue=new, product="UTP"),
                row("RUSE", "OTC", 150_000, 3, mpid="NITE", issue=new, product="UTP")], w1, "T1")
    rs = regsho({"2025-06-02": [("RUSE", 60_000, 600_000), ("TAPE", 250_000, 1_000_000)]})
    return derive({w0: c0, w1: c1}, "T1", {w0: 4, w1: 5}, {w1: rs})


def test_a_tape_move_is_one_security_line_and_a_reused_ticker_two():
    out = tape_and_reuse_weeks()[TM_WEEKS[1]]
    assert set(out) == set(registry.names())

    # symbol_week, one row per (symbol, issue name):
    #   TAPE (both tapes): ATS 300,000 / 3, non-ATS 700,000 / 7, total 1,000,000 / 10,
    #        ATS share 0.3, venues XATS (on both tapes: once), NITE, JNST = 3
    #   RUSE Old: NITE 100,000 / 1: 1 venue, ATS share 0
    #   RUSE New: 200,000 / 4, ATS share 50,000 / 200,000 = 0.25, 2 venues, average 50,000
    sw = out["symbol_week"].set_index(["symbol", "issue_name"])
    assert len(sw) == 3
    t = sw.loc[("TAPE", "Tape Move Corp")]
    assert (t.ats_shares, t.non_ats_shares, t.total_shares, t.total_trades) == (
        300_000, 700_000, 1_000_000, 10)
    assert t.venue_count == 3 and t.ats_share == pytest.approx(0.3)
    o = sw.loc[("RUSE", "Old Issuer Inc Common Stock")]
    n = sw.loc[("RUSE", "New Issuer Inc Common Stock")]
    assert (o.total_shares, o.venue_count, o.ats_share) == (100_000, 1, 0.0)
    assert (n.total_shares, n.total_trades, n.venue_count) == (200_000, 4, 2)
    assert n.ats_share == 0.25 and n.avg_trade_size == 50_000

    # symbol_hhi, the same lines and venues: TAPE XATS 30%, NITE 30%, JNST 40%
    # -> 900 + 900 + 1600 = 3,400 (as two lines it would be 6,250 and 5,555.6);
    # RUSE Old 10,000; RUSE New 25% / 75% -> 625 + 5625 = 6,250
    h = out["symbol_hhi"].set_index(["symbol", "issue_name"])
    assert h.loc[("TAPE", "Tape Move Corp"), "hhi"] == pytest.approx(3400)
    assert h.loc[("TAPE", "Tape Move Corp"), "venue_count"] == 3
    assert h.loc[("TAPE", "Tape Move Corp"), "top_venue"] == "JNST non-ATS"
    assert h.loc[("RUSE", "Old Issuer Inc Common Stock"), "hhi"] == pytest.approx(10_000)
    assert h.loc[("RUSE", "New Issuer Inc Common Stock"), "hhi"] == pytest.approx(6250)
    assert h.loc[("RUSE", "New Issuer Inc Common Stock"), "top_venue_share"] == 0.75

    # venue_share: NITE 300,000 + 100,000 + 150,000 = 550,000, 7 trades, 2 symbols (TAPE and
    # RUSE: a ticker counts once); JNST 400,000; XATS 350,000, 2 symbols; tier 1,300,000
    vs = by_venue(out["venue_share"])
    assert (vs.loc["NITE non-ATS", "shares"], vs.loc["NITE non-ATS", "trades"],
            vs.loc["NITE non-ATS", "symbols"]) == (550_000, 7, 2)
    assert vs.loc["XATS ATS", "symbols"] == 2
    assert vs["rank"].to_dict() == {"NITE non-ATS": 1, "JNST non-ATS": 2, "XATS ATS": 3}

    # tier_summary: symbols counts tickers (2), not lines (3); ATS share 350 / 1300 = 7 / 26;
    # HHI (550^2 + 400^2 + 350^2) / 1300^2 * 10,000 = 585,000 / 1,690,000 * 10,000 = 45,000 / 13
    ts = out["tier_summary"].iloc[0]
    assert (ts.symbols, ts.total_shares, ts.total_trades) == (2, 1_300_000, 15)
    assert ts.ats_share == pytest.approx(7 / 26) and ts.venue_hhi == pytest.approx(45_000 / 13)

    # symbol_trend, per symbol: RUSE = both issuers, 300,000 / 5 = 60,000 a day, ATS share
    # 50,000 / 300,000 = 1/6; the week before (Memorial Day, 4 days) 40,000 / 4 = 10,000:
    # change 5.0, mean (10,000 + 60,000) / 2 = 35,000. TAPE: both tapes, 200,000 a day.
    st = out["symbol_trend"].set_index("symbol")
    r = st.loc["RUSE"]
    assert (r.shares, r.trades, r.shares_per_day) == (300_000, 5, 60_000)
    assert r.ats_share == pytest.approx(1 / 6) and r.prior_shares_per_day == 10_000
    assert r.wow_change == pytest.approx(5.0) and r.mean_4w_shares_per_day == 35_000
    assert st.loc["TAPE", "shares_per_day"] == 200_000 and len(st) == 2

    # movers: RUSE rises 60,000 - 10,000 = 50,000 a day; TAPE has no earlier week
    mv = out["movers"]
    assert mv[["symbol", "direction", "change_shares_per_day"]].values.tolist() == [
        ["RUSE", "rise", 50_000]]

    # venue_trend: three venues (XATS once for both tapes); NITE's share of the non-ATS side
    # 550,000 / 950,000
    vt = out["venue_trend"].set_index("venue")
    assert set(vt.index) == {"NITE non-ATS", "JNST non-ATS", "XATS ATS"}
    assert vt.loc["NITE non-ATS", "type_share"] == pytest.approx(550 / 950)
    assert vt.loc["NITE non-ATS", "status"] == "continuing"

    # short_volume_weekly, per symbol (Reg SHO knows tickers only): RUSE OTC 300,000 against
    # Reg SHO 600,000 (0.5), short 60,000 / 600,000 = 0.1; TAPE 1,000,000 / 1,000,000 = 1.0
    sv = out["short_volume_weekly"].set_index("symbol")
    assert len(sv) == 2
    assert sv.loc["RUSE", "otc_total_shares"] == 300_000 and sv.loc["RUSE", "short_ratio"] == 0.1
    assert sv.loc["RUSE", "otc_share_of_regsho"] == 0.5
    assert sv.loc["RUSE", "ats_share"] == pytest.approx(1 / 6)
    assert sv.loc["TAPE", "otc_share_of_regsho"] == 1.0 and sv.loc["TAPE", "short_ratio"] == 0.25


# --- 5. tier values outside T1/T2/OTCE -----------------------------------------------------------

@pytest.mark.parametrize("tier", ["NMS", "NA"])
def test_an_undocumented_tier_never_reaches_a_calculation(tier):
    """FINRA has sent `NMS` and `NA`: the clean schema (the gates' `schema` check) refuses
    them, so no calculation is ever given such a row."""
    with pytest.raises(pandera.errors.SchemaError, match="isin"):
        clean([row("AAA", "ATS", 100, 1, mpid="XATS")], "2025-06-02", tier)
