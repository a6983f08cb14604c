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

from spine.vocabulary import SIDES

# the parts of a side in spine.vocabulary.SIDES: its detail type and its two aggregates
DETAIL, SMBL, FIRM = "detail", "symbol", "firm"
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
    mpid = rows["MPID"]
    blank = (mpid.isna() | (mpid == "")).to_numpy(dtype=bool)
    if not blank.any():
        return mpid
    mpid = mpid.astype("string").where(~blank)
    crd = "CRD " + rows["firmCRDNumber"].astype("Int64").astype("string")
    return mpid.fillna(crd).fillna(rows["marketParticipantName"].astype("string")).fillna("")


def _codes(raw: pd.DataFrame, kind: str) -> tuple[np.ndarray, object]:
    """Every row's key as one integer 0..n-1 (a security line for SMBL, a firm for FIRM), and
    a function from a code to the key as an operator reads it."""
    if kind == FIRM:
        return _firm_codes(raw)
    codes, uniques = [], []
    for col in SYMBOL_KEY:
        c, u = pd.factorize(raw[col], sort=False, use_na_sentinel=False)
        codes.append(c.astype(np.int64))
        uniques.append(np.asarray(u, dtype=object))
    sizes = [max(1, len(u)) for u in uniques]
    key = codes[0]
    for c, size in zip(codes[1:], sizes[1:]):
        key = key * size + c
    dense, combined = pd.factorize(key)  # 0..n-1 over the keys that occur

    def label(code: int) -> str:
        code, parts = int(combined[code]), []
        for u, size in zip(reversed(uniques), reversed(sizes)):
            code, i = divmod(code, size)
            parts.append("" if pd.isna(u[i]) else str(u[i]))
        return " | ".join(reversed(parts))
    return dense, label


def _firm_codes(raw: pd.DataFrame) -> tuple[np.ndarray, object]:
    """`firm_key` as integers without building its strings: the MPID's code, else the CRD's
    (offset past every MPID), else the name's (offset past every CRD)."""
    mpid, mpids = pd.factorize(raw["MPID"], sort=False)  # -1: null
    crd, crds = pd.factorize(raw["firmCRDNumber"], sort=False)
    blank = np.flatnonzero(np.asarray(mpids, dtype=object) == "")
    if len(blank):
        mpid = np.where(np.isin(mpid, blank), -1, mpid)
    # the name only where there is neither MPID nor CRD (the De Minimis pool; aggregate rows of
    # a symbol, which have no firm): hashing every row's name would cost more than the rest
    name, names = np.zeros(len(raw), dtype=np.int64), np.array([], dtype=object)
    unnamed = np.flatnonzero((mpid < 0) & (crd < 0))
    if len(unnamed):
        name[unnamed], names = pd.factorize(raw["marketParticipantName"].iloc[unnamed],
                                            sort=False, use_na_sentinel=False)
    key = np.where(mpid >= 0, mpid,
                   np.where(crd >= 0, len(mpids) + crd, len(mpids) + len(crds) + name))
    dense, combined = pd.factorize(key)

    def label(code: int) -> str:
        code = int(combined[code])
        if code < len(mpids):
            return str(mpids[code])
        if code < len(mpids) + len(crds):
            return f"CRD {int(crds[code - len(mpids)])}"
        found = names[code - len(mpids) - len(crds)]
        return "" if pd.isna(found) else str(found)
    return dense, label


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


def plain(value) -> str:
    """A measurement as an operator reads it: thousands separators, never E-notation (a
    fraction keeps at most 4 decimals), lists joined."""
    if value is None:
        return "-"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if not np.isfinite(value):
            return str(value)
        if abs(value) >= 1e15:  # past any real count: its order of magnitude says enough
            exp = int(np.floor(np.log10(abs(value))))
            return f"{value / 10 ** exp:.2f} × 10^{exp}"
        if value == int(value) or abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:,.4f}".rstrip("0").rstrip(".")
    if isinstance(value, (list, tuple)):
        return ", ".join(plain(v) for v in value)
    return str(value)


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
    return plain(float(x)) if np.isfinite(x) else "none"


@dataclass
class _Side:
    """Per key of one side (detail or an aggregate): rows, fractional rows, sums."""

    rows: np.ndarray
    fractional: np.ndarray
    sums: dict[str, np.ndarray]  # value column -> per-key sum (NaN where no row has one)


def _per_key(slot_key: np.ndarray, n: int, rows: np.ndarray, values: dict[str, np.ndarray],
             slots: int) -> list[_Side]:
    """Per (key, slot) in one pass: `slot_key` = key * slots + slot for each row taken; one
    _Side per slot (a side's detail or its aggregate)."""
    def count(weights=None) -> np.ndarray:
        return np.bincount(slot_key, weights=weights, minlength=n * slots).reshape(n, slots)

    n_rows = count()
    shares = values[SHARES][rows]
    fractional = (shares != np.floor(shares)) & ~np.isnan(shares)
    frac = count(fractional.astype(float)) if fractional.any() else np.zeros_like(n_rows)
    sums = {}
    for col, v in values.items():
        v = v[rows]
        known = ~np.isnan(v)
        if known.all():  # the usual case: no count of known values needed
            sums[col] = np.where(n_rows > 0, count(v), np.nan)
        else:
            sums[col] = np.where(count(known.astype(float)) > 0,
                                 count(np.where(known, v, 0.0)), np.nan)
    return [_Side(n_rows[:, i], frac[:, i], {c: x[:, i] for c, x in sums.items()})
            for i in range(slots)]


def _examples(keys: np.ndarray, label) -> str:
    return ", ".join(label(k) for k in keys[:SHOWN])


def reconcile(raw: pd.DataFrame) -> dict[str, Outcome]:
    """Hold a capture's detail rows (raw, API layout) to FINRA's aggregates in the same
    capture. Returns one Outcome per check (`reconciles_by_symbol`, `reconciles_by_firm`)."""
    codes, names = pd.factorize(raw["summaryTypeCode"])  # -1: no summary type
    code_of = {str(name): i for i, name in enumerate(names)}
    values = {c: raw[c].to_numpy(dtype=float, na_value=np.nan) for c in VALUES}
    sides = list(SIDES.items())
    results = {}
    for kind in (SMBL, FIRM):
        check, what = CHECKS[kind], "symbol" if kind == SMBL else "firm"
        # slot 2i: side i's detail rows, 2i+1: its aggregate of this kind
        slot_of = np.full(len(names) + 1, -1)  # by summary type code + 1
        for i, (_, t) in enumerate(sides):
            for j, part in enumerate((DETAIL, kind)):
                if t[part] in code_of:
                    slot_of[code_of[t[part]] + 1] = 2 * i + j
        slot = slot_of[codes + 1]
        present = {t[kind] for _, t in sides} & set(code_of)
        if not present:
            names_ = " or ".join(t[kind] for _, t in sides)
            results[check] = Outcome(check, 0, "", [], skip=(
                f"the capture holds no FINRA {names_} rows (a download file or an older capture "
                "carries none), so there is nothing to reconcile with"))
            continue
        key, label = _codes(raw, kind)
        rows = np.flatnonzero(slot >= 0)
        n = int(key.max()) + 1  # per key of the whole capture; keys of neither: 0 rows
        per = _per_key(key[rows] * 2 * len(sides) + slot[rows], n, rows, values, 2 * len(sides))
        keys = np.arange(n)
        count, problems, totals = 0, [], []
        for i, (side, t) in enumerate(sides):
            ours, theirs = per[2 * i], per[2 * i + 1]
            if not ours.rows.any() and not theirs.rows.any():
                continue
            if not theirs.rows.any():  # the other side has its aggregate: a whole type missing
                count += 1
                problems.append(f"{side}: {int(ours.rows.sum()):,} detail rows and no "
                                f"{t[kind]} rows")
                continue
            found = _compare(keys, ours, theirs, label, what, side, t[kind])
            count += sum(k for k, _ in found)
            problems += [p for _, p in found]
            totals.append(f"{side} {_num(np.nansum(ours.sums[SHARES]))} shares / "
                          f"{_num(np.nansum(ours.sums[TRADES]))} trades in "
                          f"{int((theirs.rows > 0).sum()):,} {t[kind]} rows")
        message = ("; ".join(problems) if problems else
                   "detail rows sum to FINRA's aggregates, key by key: " + "; ".join(totals))
        results[check] = Outcome(check, count, message, problems)
    return results


def _compare(keys: np.ndarray, ours: _Side, theirs: _Side, label, what: str, side: str,
             aggregate_type: str) -> list[tuple[int, str]]:
    """(how many, what) per kind of difference: keys on one side only, a key FINRA aggregates
    twice, a value beyond its tolerance per key, the side's total."""
    found = []
    only_ours = keys[(ours.rows > 0) & (theirs.rows == 0)]
    if len(only_ours):
        found.append((len(only_ours), f"{side}: {len(only_ours):,} {what} key(s) with detail rows "
                      f"and no FINRA {aggregate_type} row, e.g. {_examples(only_ours, label)}"))
    lonely = (theirs.rows > 0) & (ours.rows == 0)
    if lonely.any():
        shown = [f"{label(k)} ({_num(s)} shares)"
                 for k, s in zip(keys[lonely][:SHOWN], theirs.sums[SHARES][lonely][:SHOWN])]
        found.append((int(lonely.sum()), f"{side}: {int(lonely.sum()):,} {what} key(s) in "
                      f"FINRA's {aggregate_type} with no detail rows (a detail row missing?), "
                      f"e.g. {', '.join(shown)}"))
    dup = theirs.rows > 1
    if dup.any():
        found.append((int(dup.sum()), f"{side}: {int(dup.sum()):,} key(s) with more than one "
                      f"{aggregate_type} row, e.g. {_examples(keys[dup], label)}"))
    both = (ours.rows > 0) & (theirs.rows > 0)
    fractional = both & ((ours.fractional > 0)
                         | (theirs.sums[SHARES] != np.floor(theirs.sums[SHARES])))
    scale = {c: np.fmax(np.abs(ours.sums[c]), np.abs(theirs.sums[c])) for c in VALUES}
    tolerance = {
        SHARES: 0.5 * fractional + 1e-9 * scale[SHARES],
        TRADES: np.zeros(len(keys)),
        NOTIONAL: 0.01 * ours.rows + 1e-7 * scale[NOTIONAL],
    }
    for col, name in ((SHARES, "shares"), (TRADES, "trades"), (NOTIONAL, "notional")):
        diff = ours.sums[col] - theirs.sums[col]
        off = both & (np.abs(diff) > tolerance[col])  # NaN on either side: not compared
        if off.any():
            shown = [f"{label(k)}: our sum {_num(a)}, FINRA {_num(b)}, difference {_num(d)}"
                     for k, a, b, d in zip(keys[off][:SHOWN], ours.sums[col][off][:SHOWN],
                                           theirs.sums[col][off][:SHOWN], diff[off][:SHOWN])]
            found.append((int(off.sum()), f"{side}: {int(off.sum()):,} {what} key(s) whose "
                          f"{name} differ, e.g. " + "; ".join(shown)))
    d_total, a_total = np.nansum(ours.sums[SHARES]), np.nansum(theirs.sums[SHARES])
    limit = 0.5 * fractional.sum() + 1e-9 * max(abs(d_total), abs(a_total))
    if abs(d_total - a_total) > limit:
        found.append((1, f"{side} total shares: detail {_num(d_total)}, {aggregate_type} "
                      f"{_num(a_total)}, difference {_num(d_total - a_total)}"))
    return found


def ats_firms(raw: pd.DataFrame) -> dict[str, str] | None:
    """FINRA's own list of the week's ATSs: MPID -> name from its `ATS_W_FIRM` rows (None when
    the capture has none, e.g. a download file)."""
    rows = raw[raw["summaryTypeCode"] == SIDES["ATS"][FIRM]]
    if not len(rows):
        return None
    names = rows["marketParticipantName"].astype("string").fillna("")
    return dict(zip(firm_key(rows), names))
