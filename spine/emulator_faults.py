"""The disagreements between FINRA's aggregates and its detail rows that the emulator can serve
(`spine.emulator.Faults.reconcile`: a `"T2:2025-06-02"` key, tier and week_start, to one of
the names below), each a function of the week's rows (API layout in, API layout out).

The row is the first candidate in the order of its key (security line: symbol, issue name,
product type; firm: MPID, else CRD, else name), so the same week always breaks the same way:
- `symbol_total_off_by_one`: one ATS_W_SMBL row's totalWeeklyShareQuantity is 1 more than its
  detail rows' sum (the first security line whose ATS detail rows are all whole shares, so
  the difference is beyond the fractional tolerance);
- `firm_row_missing`: one OTC_W_FIRM row is removed (the firm's detail rows stay);
- `detail_row_missing`: one OTC_W_SMBL_FIRM detail row is removed while the aggregates stay
  whole (the first by security line, then firm);
- `tier_value_nms`: the first 3 ATS_W_SMBL_FIRM rows carry FINRA's undocumented
  tierIdentifier `NMS` (the aggregates keep the tier and still agree: the tier gate sees it,
  not reconcile);
- `new_ats`: one extra ATS, MPID `ZZAT`, name `ZZ ALTERNATIVE TRADING`, trades the first 5
  security lines that have non-ATS rows (a tenth of the first firm's shares there, at least
  100), with ATS_W_SMBL_FIRM rows and the aggregates recomputed to agree with them: FINRA
  lists an ATS that no reference list has (reconcile agrees; the ATS list check sees it).
"""

from __future__ import annotations

import pandas as pd

from spine.ingest.reconcile import (DETAIL, FIRM, NOTIONAL, SHARES, SMBL, SYMBOL_KEY, TRADES,
                                    aggregate, firm_key)
from spine.vocabulary import SIDES

NEW_ATS = {"MPID": "ZZAT", "marketParticipantName": "ZZ ALTERNATIVE TRADING",
           "firmCRDNumber": 999001}  # no synthetic firm's CRD (theirs are below 330,000)
NEW_ATS_LINES = 5  # security lines the new ATS trades
NMS_ROWS = 3  # detail rows with tierIdentifier NMS


def _in_key_order(rows: pd.DataFrame, summary_type: str, by: str = SMBL) -> pd.DataFrame:
    """The rows of one summary type in the order of their key (security line, then firm)."""
    rows = rows[rows["summaryTypeCode"] == summary_type]
    keys = pd.DataFrame({"_firm": firm_key(rows).astype("string").fillna("")})
    if by == SMBL:
        keys = rows[SYMBOL_KEY].astype("string").fillna("").join(keys)
    return rows.loc[keys.sort_values(list(keys.columns), kind="mergesort").index]


def symbol_total_off_by_one(rows: pd.DataFrame) -> pd.DataFrame:
    """One ATS_W_SMBL row 1 share more than its detail rows (a line without fractional rows)."""
    side = SIDES["ATS"]
    detail = rows[rows["summaryTypeCode"] == side[DETAIL]]
    fractional = detail[detail[SHARES] % 1 != 0]
    skip = set(fractional[SYMBOL_KEY].itertuples(index=False, name=None))
    lines = _in_key_order(rows, side[SMBL])
    keys = lines[SYMBOL_KEY].itertuples(index=False, name=None)
    pick = next(i for i, key in zip(lines.index, keys) if key not in skip)
    out = rows.copy()
    out.loc[pick, SHARES] += 1
    return out


def firm_row_missing(rows: pd.DataFrame) -> pd.DataFrame:
    """One OTC_W_FIRM row removed."""
    firms = _in_key_order(rows, SIDES["non-ATS"][FIRM], by=FIRM)
    return rows.drop(index=firms.index[0])


def detail_row_missing(rows: pd.DataFrame) -> pd.DataFrame:
    """One OTC_W_SMBL_FIRM detail row removed, the aggregates left whole."""
    return rows.drop(index=_in_key_order(rows, SIDES["non-ATS"][DETAIL]).index[0])


def tier_value_nms(rows: pd.DataFrame) -> pd.DataFrame:
    """A few detail rows with FINRA's undocumented tierIdentifier `NMS`."""
    out = rows.copy()
    first = _in_key_order(rows, SIDES["ATS"][DETAIL]).index[:NMS_ROWS]
    out.loc[first, "tierIdentifier"] = "NMS"
    return out


def new_ats(rows: pd.DataFrame) -> pd.DataFrame:
    """A new ATS (`ZZAT`) trading a few security lines, its aggregates consistent with it."""
    detail = rows[rows["summaryTypeCode"].isin([s[DETAIL] for s in SIDES.values()])]
    lines = _in_key_order(detail, SIDES["non-ATS"][DETAIL]).drop_duplicates(SYMBOL_KEY)
    extra = lines.head(NEW_ATS_LINES).copy()
    extra["summaryTypeCode"] = SIDES["ATS"][DETAIL]
    for name, value in NEW_ATS.items():
        extra[name] = value
    price = extra[NOTIONAL] / extra[SHARES]
    extra[SHARES] = (extra[SHARES] // 10).clip(lower=100)
    extra[TRADES] = (extra[SHARES] // 200).clip(lower=1)
    extra[NOTIONAL] = (extra[SHARES] * price).round(2)
    detail = pd.concat([detail, extra.astype(detail.dtypes.to_dict())], ignore_index=True)
    return pd.concat([detail, aggregate(detail)], ignore_index=True)


RECONCILE_FAULTS = {f.__name__: f for f in (symbol_total_off_by_one, firm_row_missing,
                                            detail_row_missing, tier_value_nms, new_ats)}
