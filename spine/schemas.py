"""pandera schemas for every table that crosses a step, and the FINRA field mapping.

Column names are Market Spine's one spelling (`week_start`, `tier`, `mpid`, ...); the FINRA API's
camelCase names appear only here and in the raw layer, which keeps data exactly as received.
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from spine.vocabulary import DETAIL_SUMMARY_TYPES, TIERS

# The FINRA Query API's weeklySummary fields, in the API's order: the raw layer's layout.
API_FIELDS = [
    "issueSymbolIdentifier", "issueName", "firmCRDNumber", "MPID", "marketParticipantName",
    "tierIdentifier", "tierDescription", "summaryStartDate", "weekStartDate",
    "totalWeeklyTradeCount", "totalWeeklyShareQuantity", "totalNotionalSum", "productTypeCode",
    "summaryTypeCode", "lastUpdateDate", "initialPublishedDate", "lastReportedDate",
]
API_INTEGERS = ("firmCRDNumber", "totalWeeklyTradeCount")
API_FLOATS = ("totalWeeklyShareQuantity", "totalNotionalSum")


class ParseError(ValueError):
    """A value that is not what its field needs; `row` is the 0-based row of the table."""

    def __init__(self, row: int, field: str, value: object, expected: str):
        self.row, self.field, self.value = row, field, value
        super().__init__(f"field {field}: {value!r} is not {expected}")


def normalise_weekly(df: pd.DataFrame) -> pd.DataFrame:
    """Rows with API field names -> the raw layout with one dtype per field, whatever the source.

    Numbers may arrive as JSON numbers, strings or E-notation ("1.99E9"); a value that is not a
    number raises ParseError naming the row and field: nothing is coerced to null silently.
    """
    out = pd.DataFrame(index=df.index)
    for name in API_FIELDS:
        col = df[name] if name in df.columns else pd.Series(None, index=df.index, dtype=object)
        if name in API_INTEGERS + API_FLOATS:
            out[name] = parse_numbers(col, name, integer=name in API_INTEGERS, required=False)
        else:
            out[name] = col.astype("str")
    return out.reset_index(drop=True)


def parse_numbers(col: pd.Series, name: str, *, integer: bool, required: bool) -> pd.Series:
    """Text or numbers -> float (or nullable Int64); the first bad value raises ParseError.
    Empty values are null unless `required`."""
    as_text = col.astype("string").str.strip()
    present = col.notna() & (as_text != "")
    number = pd.to_numeric(as_text.where(present), errors="coerce")
    bad = (present | required) & number.isna()
    if integer:
        bad |= present & number.notna() & (number != number.round())
    if bad.any():
        i = int(bad.to_numpy().nonzero()[0][0])
        raise ParseError(i, name, col.iloc[i], "an integer" if integer else "a number")
    return number.astype("Int64") if integer else number.astype(float)


# FINRA Query API field -> clean column. Fields not listed stay in raw only.
API_TO_CLEAN = {
    "weekStartDate": "week_start",
    "tierIdentifier": "tier",
    "summaryTypeCode": "summary_type",
    "issueSymbolIdentifier": "symbol",
    "issueName": "issue_name",
    "MPID": "mpid",
    "firmCRDNumber": "firm_crd",
    "marketParticipantName": "participant_name",
    "productTypeCode": "product_type",
    "totalWeeklyShareQuantity": "shares",
    "totalWeeklyTradeCount": "trades",
    "totalNotionalSum": "notional",
    "initialPublishedDate": "initial_published",
    "lastUpdateDate": "last_updated",
}

# One row per (week, tier, summary type, security line, venue). A venue is an MPID, or a CRD
# number for non-ATS firms that report without one, or (download files carry no CRD) the
# participant name; a security line is symbol + issue name + product type, because FINRA
# repeats a ticker that moved tape (CTS and UTP) or was reused.
NATURAL_KEY = [
    "week_start", "tier", "summary_type", "symbol", "issue_name", "product_type", "mpid",
    "firm_crd", "participant_name",
]

CLEAN_COLUMNS = [
    "week_start", "tier", "summary_type", "symbol", "issue_name", "mpid", "firm_crd",
    "participant_name", "product_type", "shares", "trades", "notional", "initial_published",
    "last_updated", "capture_id",
]


class RawWeekly(pa.DataFrameModel):
    """FINRA weeklySummary rows as received (API field names), plus capture metadata."""

    issueSymbolIdentifier: Series[str] = pa.Field(nullable=True)
    issueName: Series[str] = pa.Field(nullable=True)
    firmCRDNumber: Series[pd.Int64Dtype] = pa.Field(nullable=True)
    MPID: Series[str] = pa.Field(nullable=True)
    marketParticipantName: Series[str] = pa.Field(nullable=True)
    tierIdentifier: Series[str] = pa.Field(nullable=True)
    tierDescription: Series[str] = pa.Field(nullable=True)
    summaryStartDate: Series[str] = pa.Field(nullable=True)
    weekStartDate: Series[str] = pa.Field(nullable=True)
    totalWeeklyTradeCount: Series[pd.Int64Dtype] = pa.Field(nullable=True)
    totalWeeklyShareQuantity: Series[float] = pa.Field(nullable=True)
    totalNotionalSum: Series[float] = pa.Field(nullable=True)
    productTypeCode: Series[str] = pa.Field(nullable=True)
    summaryTypeCode: Series[str] = pa.Field(nullable=True)
    lastUpdateDate: Series[str] = pa.Field(nullable=True)
    initialPublishedDate: Series[str] = pa.Field(nullable=True)
    lastReportedDate: Series[str] = pa.Field(nullable=True)
    capture_id: Series[str]
    retrieved_at: Series[pd.Timestamp] = pa.Field(coerce=True)

    class Config:
        strict = True


class CleanWeekly(pa.DataFrameModel):
    """The current accepted version of a (tier, week): detail rows only."""

    week_start: Series[pd.Timestamp]
    tier: Series[str] = pa.Field(isin=list(TIERS))
    summary_type: Series[str] = pa.Field(isin=list(DETAIL_SUMMARY_TYPES))
    symbol: Series[str] = pa.Field(str_length={"min_value": 1})
    issue_name: Series[str] = pa.Field(nullable=True)
    mpid: Series[str] = pa.Field(nullable=True)
    firm_crd: Series[pd.Int64Dtype] = pa.Field(nullable=True)
    participant_name: Series[str] = pa.Field(nullable=True)
    product_type: Series[str] = pa.Field(nullable=True)
    shares: Series[float] = pa.Field(ge=0)
    trades: Series[pd.Int64Dtype] = pa.Field(ge=0)
    notional: Series[float] = pa.Field(ge=0, nullable=True)
    initial_published: Series[pd.Timestamp] = pa.Field(nullable=True)  # absent in download files
    last_updated: Series[pd.Timestamp]
    capture_id: Series[str]

    class Config:
        strict = True
        ordered = True

    @pa.dataframe_check(error="a venue needs an MPID, a CRD number or a participant name")
    def venue_identified(cls, df: pd.DataFrame) -> pd.Series:
        return df["mpid"].notna() | df["firm_crd"].notna() | df["participant_name"].notna()

    @pa.dataframe_check(error="natural key is not unique")
    def unique_natural_key(cls, df: pd.DataFrame) -> pd.Series:
        return ~df.duplicated(subset=NATURAL_KEY, keep=False)


class TierWeek(pa.DataFrameModel):
    """The partition keys every weekly calculation starts with."""

    week_start: Series[pd.Timestamp]
    tier: Series[str] = pa.Field(isin=list(TIERS))

    class Config:
        strict = True


class SymbolWeek(TierWeek):
    """Per (week, tier, security line): ATS vs non-ATS volume and activity."""

    symbol: Series[str]
    issue_name: Series[str] = pa.Field(nullable=True)
    ats_shares: Series[float] = pa.Field(ge=0)
    ats_trades: Series[int] = pa.Field(ge=0)
    non_ats_shares: Series[float] = pa.Field(ge=0)
    non_ats_trades: Series[int] = pa.Field(ge=0)
    total_shares: Series[float] = pa.Field(ge=0)
    total_trades: Series[int] = pa.Field(ge=0)
    ats_share: Series[float] = pa.Field(ge=0, le=1, nullable=True)
    venue_count: Series[int] = pa.Field(ge=1)
    avg_trade_size: Series[float] = pa.Field(ge=0, nullable=True)


class VenueShare(TierWeek):
    """Per (week, tier, summary type, venue): volume and share of the tier's volume."""

    summary_type: Series[str] = pa.Field(isin=list(DETAIL_SUMMARY_TYPES))
    mpid: Series[str] = pa.Field(nullable=True)
    firm_crd: Series[pd.Int64Dtype] = pa.Field(nullable=True)
    participant_name: Series[str] = pa.Field(nullable=True)
    shares: Series[float] = pa.Field(ge=0)
    trades: Series[int] = pa.Field(ge=0)
    symbols: Series[int] = pa.Field(ge=1)
    tier_share: Series[float] = pa.Field(ge=0, le=1)
    rank: Series[int] = pa.Field(ge=1)


class SymbolHHI(TierWeek):
    """Per (week, tier, security line): Herfindahl-Hirschman index of venue shares, 0..10,000."""

    symbol: Series[str]
    issue_name: Series[str] = pa.Field(nullable=True)
    total_shares: Series[float] = pa.Field(ge=0)
    venue_count: Series[int] = pa.Field(ge=1)
    hhi: Series[float] = pa.Field(ge=0, le=10_000)
    top_venue: Series[str] = pa.Field(nullable=True)
    top_venue_share: Series[float] = pa.Field(ge=0, le=1, nullable=True)


# --- Reg SHO daily short-sale volume (consolidated NMS file, CNMSshvolYYYYMMDD.txt) ----------

REGSHO_FIELDS = ["Date", "Symbol", "ShortVolume", "ShortExemptVolume", "TotalVolume", "Market"]
REGSHO_NUMBERS = ("ShortVolume", "ShortExemptVolume", "TotalVolume")


def normalise_regsho(df: pd.DataFrame) -> pd.DataFrame:
    """Reg SHO rows (file field names) -> one dtype per field; a bad number raises ParseError."""
    out = pd.DataFrame(index=df.index)
    for name in REGSHO_FIELDS:
        col = df[name]
        if name in REGSHO_NUMBERS:
            out[name] = parse_numbers(col, name, integer=False, required=True)
        else:
            out[name] = col.astype("str")
    return out.reset_index(drop=True)


class RawRegSho(pa.DataFrameModel):
    """A Reg SHO daily file's rows as received, plus capture metadata."""

    Date: Series[str]
    Symbol: Series[str]
    ShortVolume: Series[float]
    ShortExemptVolume: Series[float]
    TotalVolume: Series[float]
    Market: Series[str] = pa.Field(nullable=True)
    capture_id: Series[str]
    retrieved_at: Series[pd.Timestamp] = pa.Field(coerce=True)

    class Config:
        strict = True


REGSHO_TO_CLEAN = {"Date": "trade_date", "Symbol": "symbol", "ShortVolume": "short_volume",
                   "ShortExemptVolume": "short_exempt_volume", "TotalVolume": "total_volume",
                   "Market": "market"}


class RegShoDaily(pa.DataFrameModel):
    """Clean Reg SHO: per trade date and symbol, short volume reported to FINRA facilities."""

    trade_date: Series[pd.Timestamp]
    symbol: Series[str] = pa.Field(str_length={"min_value": 1})
    short_volume: Series[float] = pa.Field(ge=0)
    short_exempt_volume: Series[float] = pa.Field(ge=0)
    total_volume: Series[float] = pa.Field(ge=0)
    market: Series[str] = pa.Field(nullable=True)
    capture_id: Series[str]

    class Config:
        strict = True
        ordered = True

    @pa.dataframe_check(error="a symbol appears twice on one trade date")
    def unique_symbol_per_day(cls, df: pd.DataFrame) -> pd.Series:
        return ~df.duplicated(subset=["trade_date", "symbol"], keep=False)

    @pa.dataframe_check(error="short volume exceeds total volume")
    def short_within_total(cls, df: pd.DataFrame) -> pd.Series:
        return df["short_volume"] <= df["total_volume"] + 1e-9


class ShortVolumeWeekly(TierWeek):
    """Per (week, NMS tier, symbol): Reg SHO short ratio over the week's trading days, beside
    FINRA's weekly OTC total for the symbol and the share of Reg SHO's volume it accounts for."""

    symbol: Series[str]
    short_volume: Series[float] = pa.Field(ge=0)
    total_volume: Series[float] = pa.Field(ge=0)  # Reg SHO (consolidated NMS file), the week
    short_ratio: Series[float] = pa.Field(ge=0, le=1, nullable=True)
    trading_days: Series[int] = pa.Field(ge=1, le=5)
    days_with_data: Series[int] = pa.Field(ge=0, le=5)
    otc_total_shares: Series[float] = pa.Field(ge=0)  # ATS + non-ATS, FINRA's weekly data
    ats_share: Series[float] = pa.Field(ge=0, le=1, nullable=True)
    otc_share_of_regsho: Series[float] = pa.Field(ge=0, nullable=True)


class TierSummary(TierWeek):
    """Per (week, tier): the tier's off-exchange volume, how it splits, how concentrated."""

    trading_days: Series[int] = pa.Field(ge=1, le=5)
    total_shares: Series[float] = pa.Field(ge=0)
    total_trades: Series[int] = pa.Field(ge=0)
    shares_per_day: Series[float] = pa.Field(ge=0)
    trades_per_day: Series[float] = pa.Field(ge=0)
    ats_share: Series[float] = pa.Field(ge=0, le=1, nullable=True)
    ats_venues: Series[int] = pa.Field(ge=0)
    non_ats_venues: Series[int] = pa.Field(ge=0)
    venue_hhi: Series[float] = pa.Field(ge=0, le=10_000)
    symbols: Series[int] = pa.Field(ge=0)
    avg_trade_size: Series[float] = pa.Field(ge=0, nullable=True)


class SymbolTrend(TierWeek):
    """Per (week, tier, symbol traded that week): volume per trading day against the symbol's
    own trailing window (so a holiday week is not read as a drop)."""

    symbol: Series[str]
    trading_days: Series[int] = pa.Field(ge=1, le=5)
    shares: Series[float] = pa.Field(ge=0)
    trades: Series[int] = pa.Field(ge=0)
    shares_per_day: Series[float] = pa.Field(ge=0)
    trades_per_day: Series[float] = pa.Field(ge=0)
    ats_share: Series[float] = pa.Field(ge=0, le=1, nullable=True)
    mean_4w_shares_per_day: Series[float] = pa.Field(ge=0)
    mean_13w_shares_per_day: Series[float] = pa.Field(ge=0)
    weeks_in_window: Series[int] = pa.Field(ge=1, le=13)
    prior_shares_per_day: Series[float] = pa.Field(ge=0, nullable=True)
    z_shares_per_day: Series[float] = pa.Field(nullable=True)
    wow_change: Series[float] = pa.Field(ge=-1, nullable=True)


class Movers(TierWeek):
    """Per (week, tier): the symbols that rose or fell most against their own trailing weeks,
    ranked by z-score and by the change in shares per trading day."""

    direction: Series[str] = pa.Field(isin=["rise", "fall"])
    ranked_by: Series[str] = pa.Field(isin=["z_score", "shares_per_day"])
    rank: Series[int] = pa.Field(ge=1)
    symbol: Series[str]
    shares_per_day: Series[float] = pa.Field(ge=0)
    prior_shares_per_day: Series[float] = pa.Field(ge=0)
    change_shares_per_day: Series[float]
    z_shares_per_day: Series[float] = pa.Field(nullable=True)
    weeks_in_window: Series[int] = pa.Field(ge=1, le=13)


class VenueTrend(TierWeek):
    """Per (week, tier, venue present this week or the week before): its share of the tier
    over time, rank change, and whether it entered or exited."""

    venue: Series[str]
    summary_type: Series[str] = pa.Field(isin=list(DETAIL_SUMMARY_TYPES))
    participant_name: Series[str] = pa.Field(nullable=True)
    shares: Series[float] = pa.Field(ge=0)
    tier_share: Series[float] = pa.Field(ge=0, le=1)
    type_share: Series[float] = pa.Field(ge=0, le=1)
    mean_4w_tier_share: Series[float] = pa.Field(ge=0, le=1)
    mean_13w_tier_share: Series[float] = pa.Field(ge=0, le=1)
    weeks_in_window: Series[int] = pa.Field(ge=0, le=13)
    rank: Series[pd.Int64Dtype] = pa.Field(ge=1, nullable=True)
    previous_rank: Series[pd.Int64Dtype] = pa.Field(ge=1, nullable=True)
    rank_change: Series[pd.Int64Dtype] = pa.Field(nullable=True)
    status: Series[str] = pa.Field(isin=["continuing", "entered", "exited", "no_previous_week"])
