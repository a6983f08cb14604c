"""Raw FINRA rows (API field names, as received) -> the clean layout: the table clean holds and
the gates check (a capture is gated as clean would hold it; `spine.derive.clean` writes it).

Conversion never drops or repairs a row: a value that is not a number or a date becomes null and
the schema gate then names the row and field. Only detail summary types belong in clean; an
aggregate type (ATS_W_SMBL, OTC_W_FIRM, ...) would double count, so it is left in raw and counted.
"""

from __future__ import annotations

import pandas as pd

from spine.schemas import (
    API_TO_CLEAN,
    CLEAN_COLUMNS,
    DETAIL_SUMMARY_TYPES,
    REGSHO_TO_CLEAN,
)


def _dates(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, format="%Y-%m-%d", errors="coerce").astype("datetime64[ns]")


def _numbers(values: pd.Series) -> pd.Series:
    # FINRA sends numbers as JSON numbers, strings, or E-notation strings ("1.99E9").
    return pd.to_numeric(values, errors="coerce").astype(float)


def to_clean(raw: pd.DataFrame, capture_id: str) -> tuple[pd.DataFrame, int]:
    """Returns (clean detail rows, number of aggregate rows left out)."""
    missing = [c for c in API_TO_CLEAN if c not in raw.columns]
    if missing:
        raise ValueError(f"raw capture {capture_id} lacks FINRA fields {missing}")
    detail = raw["summaryTypeCode"].isin(DETAIL_SUMMARY_TYPES) | raw["summaryTypeCode"].isna()
    raw = raw[detail]
    df = raw[list(API_TO_CLEAN)].rename(columns=API_TO_CLEAN).reset_index(drop=True)
    for col in ("week_start", "initial_published", "last_updated"):
        df[col] = _dates(df[col])
    for col in ("shares", "notional"):
        df[col] = _numbers(df[col])
    trades = _numbers(df["trades"])
    df["trades"] = trades.where(trades == trades.round()).astype("Int64")
    df["firm_crd"] = _numbers(df["firm_crd"]).astype("Int64")
    for col in ("tier", "summary_type", "symbol", "issue_name", "mpid", "participant_name",
                "product_type"):
        df[col] = df[col].astype("str")  # missing stays missing
    df["capture_id"] = capture_id
    return df[CLEAN_COLUMNS], int((~detail).sum())



def regsho_to_clean(raw: pd.DataFrame, capture_id: str) -> pd.DataFrame:
    """Raw Reg SHO rows -> RegShoDaily (trade_date from the file's YYYYMMDD `Date`)."""
    df = raw[list(REGSHO_TO_CLEAN)].rename(columns=REGSHO_TO_CLEAN).reset_index(drop=True)
    df["trade_date"] = pd.to_datetime(df["trade_date"], format="%Y%m%d",
                                      errors="coerce").astype("datetime64[ns]")
    df["capture_id"] = capture_id
    return df
