"""Market-structure calculations on one clean (tier, week) partition.

Each calculation is a pure function of a CleanWeekly frame, checked against its schema on the
way out. The input is not validated again by each function: clean is validated once, by the
gate's schema check, before it is accepted (three CleanWeekly validations of a full T2 week per
calc job were a third of its work). Shares are the volume measure everywhere ("share of volume" = share of shares).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import DataFrame

from spine.schemas import (
    ATS,
    NON_ATS,
    CleanWeekly,
    RegShoDaily,
    ShortVolume,
    SymbolHHI,
    SymbolRolling,
    SymbolWeek,
    VenueShare,
)

SECURITY = ["week_start", "tier", "symbol", "issue_name"]


def venue_label(clean: pd.DataFrame) -> pd.Series:
    """A venue is one reporting MPID (or `CRD <number>` for a firm that reports without one)
    within one summary type, so a firm that runs an ATS and also trades as a non-ATS dealer
    counts as two venues: `GSCO ATS` and `GSCO non-ATS`."""
    crd = "CRD " + clean["firm_crd"].astype("string")
    ident = clean["mpid"].astype("string").fillna(crd).fillna(clean["participant_name"])
    return ident + np.where(clean["summary_type"] == ATS, " ATS", " non-ATS")


@pa.check_output(SymbolWeek.to_schema())
def symbol_week(clean: DataFrame[CleanWeekly]) -> DataFrame[SymbolWeek]:
    df = clean.assign(
        ats_shares=clean["shares"].where(clean["summary_type"] == ATS, 0.0),
        ats_trades=clean["trades"].where(clean["summary_type"] == ATS, 0),
        non_ats_shares=clean["shares"].where(clean["summary_type"] == NON_ATS, 0.0),
        non_ats_trades=clean["trades"].where(clean["summary_type"] == NON_ATS, 0),
        venue=venue_label(clean),
    )
    out = df.groupby(SECURITY, dropna=False, sort=True).agg(
        ats_shares=("ats_shares", "sum"),
        ats_trades=("ats_trades", "sum"),
        non_ats_shares=("non_ats_shares", "sum"),
        non_ats_trades=("non_ats_trades", "sum"),
        venue_count=("venue", "nunique"),
    ).reset_index()
    out["total_shares"] = out["ats_shares"] + out["non_ats_shares"]
    out["total_trades"] = out["ats_trades"] + out["non_ats_trades"]
    total = out["total_shares"].where(out["total_shares"] > 0)
    out["ats_share"] = out["ats_shares"] / total
    trades = out["total_trades"].where(out["total_trades"] > 0)
    out["avg_trade_size"] = out["total_shares"] / trades
    for c in ("ats_trades", "non_ats_trades", "total_trades", "venue_count"):
        out[c] = out[c].astype(np.int64)
    return out[list(SymbolWeek.to_schema().columns)]


@pa.check_output(VenueShare.to_schema())
def venue_share(clean: DataFrame[CleanWeekly]) -> DataFrame[VenueShare]:
    keys = ["week_start", "tier", "summary_type", "mpid", "firm_crd", "participant_name"]
    out = clean.groupby(keys, dropna=False, sort=True).agg(
        shares=("shares", "sum"),
        trades=("trades", "sum"),
        symbols=("symbol", "nunique"),
    ).reset_index()
    tier_total = out.groupby(["week_start", "tier"])["shares"].transform("sum")
    out["tier_share"] = (out["shares"] / tier_total.where(tier_total > 0)).fillna(0.0)
    out["rank"] = out.groupby(["week_start", "tier"])["shares"].rank(
        method="min", ascending=False).astype(np.int64)
    out["trades"] = out["trades"].astype(np.int64)
    out["symbols"] = out["symbols"].astype(np.int64)
    out = out.sort_values(["rank", "summary_type", "mpid"], kind="mergesort")
    return out[list(VenueShare.to_schema().columns)].reset_index(drop=True)


@pa.check_output(SymbolHHI.to_schema())
def symbol_hhi(clean: DataFrame[CleanWeekly]) -> DataFrame[SymbolHHI]:
    """HHI of each security's venue shares on the 0-10,000 scale (10,000 = a single venue)."""
    df = clean.assign(venue=venue_label(clean))
    per_venue = df.groupby(SECURITY + ["venue"], dropna=False, sort=False)["shares"].sum()
    per_venue = per_venue.reset_index()
    total = per_venue.groupby(SECURITY, dropna=False)["shares"].transform("sum")
    per_venue["venue_share"] = per_venue["shares"] / total.where(total > 0)
    per_venue["sq"] = (per_venue["venue_share"] * 100) ** 2
    top = per_venue.sort_values("shares", ascending=False, kind="mergesort").drop_duplicates(SECURITY)
    out = per_venue.groupby(SECURITY, dropna=False, sort=True).agg(
        total_shares=("shares", "sum"),
        venue_count=("venue", "nunique"),
        hhi=("sq", lambda s: s.sum(min_count=1)),
    ).reset_index()
    out = out.merge(
        top[SECURITY + ["venue", "venue_share"]].rename(
            columns={"venue": "top_venue", "venue_share": "top_venue_share"}),
        on=SECURITY, how="left")
    # A security with zero shares on every venue has no defined concentration.
    out["hhi"] = out["hhi"].fillna(0.0).clip(0, 10_000)
    out["top_venue"] = out["top_venue"].astype(object).where(out["total_shares"] > 0, None)
    out["venue_count"] = out["venue_count"].astype(np.int64)
    return out[list(SymbolHHI.to_schema().columns)]


CALCS = {
    "symbol_week": symbol_week,
    "venue_share": venue_share,
    "symbol_hhi": symbol_hhi,
}
CALC_SCHEMAS = {
    "symbol_week": SymbolWeek,
    "venue_share": VenueShare,
    "symbol_hhi": SymbolHHI,
    "short_volume": ShortVolume,  # from symbol_week and Reg SHO; see pipeline.calc_short_volume
    "symbol_rolling": SymbolRolling,  # from symbol_week of a window of weeks; pipeline.calc_rolling
}


@pa.check_types
def short_volume(symbol_week_: DataFrame[SymbolWeek], regsho: DataFrame[RegShoDaily],
                 trading_days: int) -> DataFrame[ShortVolume]:
    """Per symbol of the tier-week: Reg SHO short volume / total volume summed over the week's
    trading days, beside the symbol's ATS share of off-exchange volume.

    Reg SHO is keyed by symbol only, so the weekly rows of a symbol (several issue names or
    tapes) are summed first. A symbol with no Reg SHO rows that week has no ratio (null)."""
    weekly = symbol_week_.groupby(["week_start", "tier", "symbol"], sort=True).agg(
        ats_shares=("ats_shares", "sum"), otc_total_shares=("total_shares", "sum")).reset_index()
    weekly["ats_share"] = weekly["ats_shares"] / weekly["otc_total_shares"].where(
        weekly["otc_total_shares"] > 0)
    daily = regsho.groupby("symbol").agg(
        short_volume=("short_volume", "sum"), total_volume=("total_volume", "sum"),
        days_with_data=("trade_date", "nunique")).reset_index()
    out = weekly.merge(daily, on="symbol", how="left")
    out[["short_volume", "total_volume"]] = out[["short_volume", "total_volume"]].fillna(0.0)
    out["days_with_data"] = out["days_with_data"].fillna(0).astype(np.int64)
    out["short_ratio"] = out["short_volume"] / out["total_volume"].where(out["total_volume"] > 0)
    out["trading_days"] = np.int64(trading_days)
    return out[list(ShortVolume.to_schema().columns)]


ROLLING_WEEKS = 4  # the window of `symbol_rolling`, this week included


@pa.check_types
def symbol_rolling(window: DataFrame[SymbolWeek], trading_days: dict) -> DataFrame[SymbolRolling]:
    """Rolling view of the latest week in `window` (the symbol_week rows of up to
    ROLLING_WEEKS consecutive weeks): shares per trading day this week and over the window, the
    z-score of this week's shares per day against the window's earlier weeks (null with fewer
    than two of them or no spread), and ATS share this week and over the window.
    `trading_days` maps each week_start (Timestamp) to its XNYS trading days."""
    latest = window["week_start"].max()
    per = window.groupby(["week_start", "tier", "symbol"], sort=True).agg(
        shares=("total_shares", "sum"), ats=("ats_shares", "sum")).reset_index()
    per["days"] = per["week_start"].map(trading_days).astype(float)
    per["per_day"] = per["shares"] / per["days"]
    this = per[per["week_start"] == latest].set_index(["tier", "symbol"])
    allw = per.groupby(["tier", "symbol"]).agg(
        weeks_in_window=("week_start", "nunique"), shares=("shares", "sum"),
        days=("days", "sum"), ats=("ats", "sum"))
    earlier = per[per["week_start"] < latest].groupby(["tier", "symbol"])["per_day"].agg(
        ["mean", "std", "count"])
    out = this[["week_start"]].join(allw, how="left").join(earlier, how="left")
    out["shares_per_day"] = this["per_day"]
    out["window_shares_per_day"] = out["shares"] / out["days"]
    spread = out["std"].where((out["count"] >= 2) & (out["std"] > 0))
    out["shares_per_day_z"] = (out["shares_per_day"] - out["mean"]) / spread
    out["ats_share"] = this["ats"] / this["shares"].where(this["shares"] > 0)
    out["window_ats_share"] = out["ats"] / out["shares"].where(out["shares"] > 0)
    out["weeks_in_window"] = out["weeks_in_window"].astype(np.int64)
    out = out.reset_index()
    return out[list(SymbolRolling.to_schema().columns)]
