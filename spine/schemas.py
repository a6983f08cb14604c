"""pandera schemas for every table that crosses a step, and the FINRA field mapping.

Column names are Market Spine's one spelling (`week_start`, `tier`, `mpid`, ...); the FINRA API's
camelCase names appear only here and in the raw layer, which keeps data exactly as received.
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

TIERS = ["T1", "T2", "OTCE"]
DETAIL_SUMMARY_TYPES = ["ATS_W_SMBL_FIRM", "OTC_W_SMBL_FIRM"]
ATS = "ATS_W_SMBL_FIRM"
NON_ATS = "OTC_W_SMBL_FIRM"

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
# number for non-ATS firms that report without one; a security line is symbol + issue name +
# product type, because FINRA repeats a ticker that moved tape (CTS and UTP) or was reused.
NATURAL_KEY = [
    "week_start", "tier", "summary_type", "symbol", "issue_name", "product_type", "mpid", "firm_crd",
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
    totalWeeklyTradeCount: Series[float] = pa.Field(nullable=True, coerce=True)
    totalWeeklyShareQuantity: Series[float] = pa.Field(nullable=True, coerce=True)
    totalNotionalSum: Series[float] = pa.Field(nullable=True, coerce=True)
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
    tier: Series[str] = pa.Field(isin=TIERS)
    summary_type: Series[str] = pa.Field(isin=DETAIL_SUMMARY_TYPES)
    symbol: Series[str] = pa.Field(str_length={"min_value": 1})
    issue_name: Series[str] = pa.Field(nullable=True)
    mpid: Series[str] = pa.Field(nullable=True)
    firm_crd: Series[pd.Int64Dtype] = pa.Field(nullable=True)
    participant_name: Series[str] = pa.Field(nullable=True)
    product_type: Series[str] = pa.Field(nullable=True)
    shares: Series[float] = pa.Field(ge=0)
    trades: Series[pd.Int64Dtype] = pa.Field(ge=0)
    notional: Series[float] = pa.Field(ge=0, nullable=True)
    initial_published: Series[pd.Timestamp]
    last_updated: Series[pd.Timestamp]
    capture_id: Series[str]

    class Config:
        strict = True
        ordered = True

    @pa.dataframe_check(error="a venue needs an MPID or a CRD number")
    def venue_identified(cls, df: pd.DataFrame) -> pd.Series:
        return df["mpid"].notna() | df["firm_crd"].notna()

    @pa.dataframe_check(error="natural key is not unique")
    def unique_natural_key(cls, df: pd.DataFrame) -> pd.Series:
        return ~df.duplicated(subset=NATURAL_KEY, keep=False)


class SymbolWeek(pa.DataFrameModel):
    """Per (week, tier, security line): ATS vs non-ATS volume and activity."""

    week_start: Series[pd.Timestamp]
    tier: Series[str] = pa.Field(isin=TIERS)
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

    class Config:
        strict = True


class VenueShare(pa.DataFrameModel):
    """Per (week, tier, summary type, venue): volume and share of the tier's volume."""

    week_start: Series[pd.Timestamp]
    tier: Series[str] = pa.Field(isin=TIERS)
    summary_type: Series[str] = pa.Field(isin=DETAIL_SUMMARY_TYPES)
    mpid: Series[str] = pa.Field(nullable=True)
    firm_crd: Series[pd.Int64Dtype] = pa.Field(nullable=True)
    participant_name: Series[str] = pa.Field(nullable=True)
    shares: Series[float] = pa.Field(ge=0)
    trades: Series[int] = pa.Field(ge=0)
    symbols: Series[int] = pa.Field(ge=1)
    tier_share: Series[float] = pa.Field(ge=0, le=1)
    rank: Series[int] = pa.Field(ge=1)

    class Config:
        strict = True


class SymbolHHI(pa.DataFrameModel):
    """Per (week, tier, security line): Herfindahl-Hirschman index of venue shares, 0..10,000."""

    week_start: Series[pd.Timestamp]
    tier: Series[str] = pa.Field(isin=TIERS)
    symbol: Series[str]
    issue_name: Series[str] = pa.Field(nullable=True)
    total_shares: Series[float] = pa.Field(ge=0)
    venue_count: Series[int] = pa.Field(ge=1)
    hhi: Series[float] = pa.Field(ge=0, le=10_000)
    top_venue: Series[str] = pa.Field(nullable=True)
    top_venue_share: Series[float] = pa.Field(ge=0, le=1, nullable=True)

    class Config:
        strict = True
