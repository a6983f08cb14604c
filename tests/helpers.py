"""Builders for small, hand-checkable clean tables."""

import pandas as pd

from spine.schemas import CLEAN_COLUMNS


def clean_frame(rows, week_start="2025-06-02", tier="T1"):
    """rows: (symbol, summary_type 'ATS'|'OTC', mpid, shares, trades)."""
    records = []
    for symbol, kind, mpid, shares, trades in rows:
        records.append({
            "week_start": pd.Timestamp(week_start), "tier": tier,
            "summary_type": "ATS_W_SMBL_FIRM" if kind == "ATS" else "OTC_W_SMBL_FIRM",
            "symbol": symbol, "issue_name": f"{symbol} Inc", "mpid": mpid,
            "firm_crd": 1000 + sum(map(ord, mpid or "")), "participant_name": f"{mpid} LLC",
            "product_type": "UTP", "shares": float(shares), "trades": trades,
            "notional": float(shares) * 10, "initial_published": pd.Timestamp("2025-06-23"),
            "last_updated": pd.Timestamp("2025-06-23"), "capture_id": "c0ffee",
        })
    df = pd.DataFrame(records)[CLEAN_COLUMNS]
    df["firm_crd"] = df["firm_crd"].astype("Int64")
    df["trades"] = df["trades"].astype("Int64")
    for col in ("tier", "summary_type", "symbol", "issue_name", "mpid", "participant_name",
                "product_type", "capture_id"):
        df[col] = df[col].astype("str")
    return df
