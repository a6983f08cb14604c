"""FINRA's own totals as the judge: a week's detail rows against FINRA's aggregates of them.

FINRA publishes, in the same `weeklySummary` dataset as the detail rows (`ATS_W_SMBL_FIRM`,
`OTC_W_SMBL_FIRM`), four aggregates of them, and a capture stores them in raw beside the detail
(never in clean, where they would double count):
- `ATS_W_SMBL` / `OTC_W_SMBL`: one row per security line (symbol, issue name, product type);
- `ATS_W_FIRM` / `OTC_W_FIRM`: one row per firm (its MPID, or its CRD where a non-ATS firm
  reports without one; a pre-2019-11-11 pooled "De Minimis Firms" row has neither and is keyed
  by its name).

`aggregate` computes them from detail rows the way FINRA does (the synthetic source and the
emulator publish them with it); `reconcile` holds a capture's detail to the aggregates it came
with: the same keys on both sides, per key the same shares, trades and notional, and per side
one total whichever way it is summed. Trades are exact. Shares are exact where the key's
quantities are whole; where they are fractional (on either side) within half a share, since
FINRA does not document how it rounds fractional quantities (a side's total: half a share per
fractional key). Notional within a cent per detail row plus one part in 10^7 (FINRA sends large
sums in E-notation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

DETAIL, SMBL, FIRM = "detail", "SMBL", "FIRM"
# side -> its detail type and its two aggregates
SIDES = {
    "ATS": {DETAIL: "ATS_W_SMBL_FIRM", SMBL: "ATS_W_SMBL", FIRM: "ATS_W_FIRM"},
    "non-ATS": {DETAIL: "OTC_W_SMBL_FIRM", SMBL: "OTC_W_SMBL", FIRM: "OTC_W_FIRM"},
}
AGGREGATE_SUMMARY_TYPES = [t for s in SIDES.values() for t in (s[SMBL], s[FIRM])]
SYMBOL_KEY = ["issueSymbolIdentifier", "issueName", "productTypeCode"]
FIRM_FIELDS = ["MPID", "firmCRDNumber", "marketParticipantName"]
SHARES, TRADES, NOTIONAL = ("totalWeeklyShareQuantity", "totalWeeklyTradeCount",
                            "totalNotionalSum")
VALUES = [SHARES, TRADES, NOTIONAL]
CHECKS = {SMBL: "reconciles_by_symbol", FIRM: "reconciles_by_firm"}
SHOWN = 3  # differences named per kind in a message


def firm_key(rows: pd.DataFrame) -> pd.Series:
    """A firm as FINRA aggregates it: its MPID, else `CRD <number>`, else its name (the pooled
    De Minimis row has neither MPID nor CRD)."""
    mpid = rows["MPID"].astype("string")
    mpid = mpid.where(mpid.str.len() > 0)
    if not mpid.isna().any():
        return mpid
    crd = "CRD " + rows["firmCRDNumber"].astype("Int64").astype("string")
    return mpid.fillna(crd).fillna(rows["marketParticipantName"].astype("string")).fillna("")


def symbol_key(rows: pd.DataFrame) -> list[pd.Series]:
    """A security line: symbol, issue name, product type (a tape move or a reused ticker is
    two lines)."""
    return [rows[c].astype("string").fillna("") for c in SYMBOL_KEY]


def _label(key) -> str:
    return " | ".join(key) if isinstance(key, tuple) else str(key)


def _sums(rows: pd.DataFrame, key) -> pd.DataFrame:
    """Per key: shares, trades, notional (null when every row's is), rows, fractional rows."""
    shares = rows[SHARES].to_numpy(dtype=float, na_value=np.nan)
    frame = pd.DataFrame({
        SHARES: shares,
        TRADES: rows[TRADES].to_numpy(dtype=float, na_value=np.nan),
        NOTIONAL: rows[NOTIONAL].to_numpy(dtype=float, na_value=np.nan),
        "rows": 1,
        "fractional": (shares != np.floor(shares)).astype(int),
    })
    keys = [k.to_numpy() for k in key] if isinstance(key, list) else [key.to_numpy()]
    out = frame.groupby(keys, sort=True).sum(min_count=1)
    return out.assign(rows=out["rows"].fillna(0), fractional=out["fractional"].fillna(0))


def aggregate(detail: pd.DataFrame) -> pd.DataFrame:
    """FINRA's four aggregates of a week's detail rows (API layout in, API layout out): per
    side, one `*_W_SMBL` row per security line and one `*_W_FIRM` row per firm. Shares keep 4
    decimals, notional 2; the dates are the group's latest `lastUpdateDate` and earliest
    `initialPublishedDate`."""
    out = []
    week_fields = ["tierIdentifier", "tierDescription", "summaryStartDate", "weekStartDate",
                   "lastReportedDate"]
    for side in SIDES.values():
        rows = detail[detail["summaryTypeCode"] == side[DETAIL]]
        if not len(rows):
            continue
        for kind, keys in ((SMBL, SYMBOL_KEY), (FIRM, ["_firm"])):
            frame = rows.assign(_firm=firm_key(rows)) if kind == FIRM else rows
            firsts = {c: (c, "first") for c in week_fields + (FIRM_FIELDS if kind == FIRM
                                                               else [])}
            agg = frame.groupby(keys, sort=True, dropna=False).agg(
                **firsts,
                totalWeeklyShareQuantity=(SHARES, "sum"),
                totalWeeklyTradeCount=(TRADES, "sum"),
                totalNotionalSum=(NOTIONAL, "sum"),
                _notionals=(NOTIONAL, "count"),
                lastUpdateDate=("lastUpdateDate", "max"),
                initialPublishedDate=("initialPublishedDate", "min"),
            ).reset_index()
            agg[NOTIONAL] = agg[NOTIONAL].where(agg.pop("_notionals") > 0)
            agg = agg.drop(columns=["_firm"], errors="ignore")
            agg[SHARES] = agg[SHARES].round(4)
            agg[NOTIONAL] = agg[NOTIONAL].round(2)
            agg["summaryTypeCode"] = side[kind]
            out.append(agg)
    if not out:
        return detail.iloc[:0].copy()
    result = pd.concat(out, ignore_index=True)
    return result.reindex(columns=detail.columns).astype(detail.dtypes.to_dict())


@dataclass
class Outcome:
    """One check's result, before the gates give it a status: `problems` lines (empty: it
    reconciles), or `skip` with why."""

    check: str
    measured: int
    message: str
    problems: list[str]
    skip: str | None = None


def _num(x: float) -> str:
    from spine.gates import plain

    return plain(float(x)) if pd.notna(x) else "none"


def _fractional(ours: pd.DataFrame, theirs: pd.DataFrame) -> pd.Series:
    """Keys whose quantities are fractional on either side (1) or whole (0)."""
    return ((ours["fractional"] > 0) | (theirs[SHARES] != np.floor(theirs[SHARES]))).astype(int)


def _compare(ours: pd.DataFrame, theirs: pd.DataFrame, what: str, side: str
             ) -> tuple[int, list[str]]:
    """Keys on one side only, and per key value differences beyond the tolerance."""
    problems, count = [], 0
    only_ours = ours.index.difference(theirs.index)
    only_theirs = theirs.index.difference(ours.index)
    if len(only_ours):
        count += len(only_ours)
        problems.append(f"{side}: {len(only_ours):,} {what} key(s) with detail rows and no FINRA "
                        f"aggregate row, e.g. {', '.join(map(_label, only_ours[:SHOWN]))}")
    if len(only_theirs):
        count += len(only_theirs)
        problems.append(f"{side}: {len(only_theirs):,} {what} key(s) in FINRA's aggregate with "
                        f"no detail rows (a detail row missing?), e.g. "
                        + ", ".join(f"{_label(k)} ({_num(theirs.at[k, SHARES])} shares)"
                                    for k in only_theirs[:SHOWN]))
    both = ours.index.intersection(theirs.index)
    a, b = ours.loc[both], theirs.loc[both]
    tolerance = {
        SHARES: 0.5 * _fractional(a, b) + 1e-9 * np.maximum(a[SHARES].abs(), b[SHARES].abs()),
        TRADES: pd.Series(0.0, index=both),
        NOTIONAL: 0.01 * a["rows"] + 1e-7 * np.maximum(a[NOTIONAL].abs(), b[NOTIONAL].abs()),
    }
    labels = {SHARES: "shares", TRADES: "trades", NOTIONAL: "notional"}
    for col in VALUES:
        diff = a[col] - b[col]
        off = diff.abs() > tolerance[col]  # a null on either side is not compared
        if off.any():
            keys = off[off].index
            count += len(keys)
            problems.append(
                f"{side}: {len(keys):,} {what} key(s) whose {labels[col]} differ, e.g. "
                + "; ".join(f"{_label(k)}: our sum {_num(a.at[k, col])}, FINRA {_num(b.at[k, col])}, "
                            f"difference {_num(diff.at[k])}" for k in keys[:SHOWN]))
    return count, problems


def reconcile(raw: pd.DataFrame) -> dict[str, Outcome]:
    """Hold a capture's detail rows (raw, API layout) to FINRA's aggregates in the same
    capture. Returns one Outcome per check (`reconciles_by_symbol`, `reconciles_by_firm`)."""
    types = raw["summaryTypeCode"].astype("string")
    results = {}
    for kind, key_of in ((SMBL, symbol_key), (FIRM, firm_key)):
        check = CHECKS[kind]
        present = {s for s, t in SIDES.items() if (types == t[kind]).any()}
        if not present:
            names = " or ".join(t[kind] for t in SIDES.values())
            results[check] = Outcome(check, 0, "", [], skip=(
                f"the capture holds no FINRA {names} rows (a download file or an older capture "
                "carries none), so there is nothing to reconcile with"))
            continue
        count, problems, totals = 0, [], []
        for side, t in SIDES.items():
            detail = raw[(types == t[DETAIL]).to_numpy()]
            agg = raw[(types == t[kind]).to_numpy()]
            if not len(detail) and not len(agg):
                continue
            if not len(agg):  # the other side has its aggregate: a whole type is missing
                count += 1
                problems.append(f"{side}: {len(detail):,} detail rows and no {t[kind]} rows")
                continue
            ours, theirs = _sums(detail, key_of(detail)), _sums(agg, key_of(agg))
            dup = theirs["rows"] > 1
            if dup.any():
                count += int(dup.sum())
                problems.append(f"{side}: {int(dup.sum())} key(s) with more than one {t[kind]} "
                                f"row, e.g. {', '.join(map(_label, theirs.index[dup][:SHOWN]))}")
            n, found = _compare(ours, theirs, "symbol" if kind == SMBL else "firm", side)
            count += n
            problems += found
            d_total, a_total = ours[SHARES].sum(), theirs[SHARES].sum()
            both = ours.index.intersection(theirs.index)
            limit = (0.5 * _fractional(ours.loc[both], theirs.loc[both]).sum()
                     + 1e-9 * max(abs(d_total), abs(a_total)))
            if abs(d_total - a_total) > limit:
                count += 1
                problems.append(f"{side} total shares: detail {_num(d_total)}, {t[kind]} "
                                f"{_num(a_total)}, difference {_num(d_total - a_total)}")
            totals.append(f"{side} {_num(d_total)} shares / {_num(ours[TRADES].sum())} trades "
                          f"in {len(theirs):,} {t[kind]} rows")
        message = ("; ".join(problems) if problems else
                   "detail rows sum to FINRA's aggregates, key by key: " + "; ".join(totals))
        results[check] = Outcome(check, count, message, problems)
    return results


def ats_firms(raw: pd.DataFrame) -> dict[str, str] | None:
    """FINRA's own list of the week's ATSs: MPID -> name from its `ATS_W_FIRM` rows (None when
    the capture has none, e.g. a download file)."""
    rows = raw[raw["summaryTypeCode"] == SIDES["ATS"][FIRM]]
    if not len(rows):
        return None
    names = rows["marketParticipantName"].astype("string").fillna("")
    return dict(zip(firm_key(rows), names))
