"""How a report reads: number formats, column headers in words, FINRA's summary-type codes in
words, and the note on a ratio that can pass 100%."""

from __future__ import annotations

import pandas as pd

from spine.derive.registry import TREND_WEEKS
from spine.vocabulary import ATS, NON_ATS, SIDES

COUNT, SHARES, PCT, RATIO = "{:,.0f}", "{:,.0f}", "{:.1%}", "{:,.1f}"
SIGNED_PCT, Z = "{:+.1%}", "{:+.2f}"
FORMATS = {
    "symbols": COUNT, "venues": COUNT, "securities": COUNT, "trades": COUNT,
    "total_shares": SHARES, "total_trades": COUNT, "shares": SHARES,
    "shares_per_trading_day": SHARES, "ats_share": PCT, "tier_share": PCT, "type_share": PCT,
    "top_venue_share": PCT, "avg_trade_size": RATIO, "median_hhi": COUNT,
    "volume_weighted_hhi": COUNT, "tier_hhi_of_venues": COUNT, "single_venue_securities": COUNT,
    "short_volume": SHARES, "total_volume": SHARES, "short_ratio": PCT, "median_short_ratio": PCT,
    "symbols_with_reg_sho": COUNT, "corr_short_ratio_ats_share": "{:.2f}",
    "otc_total_shares": SHARES, "otc_share_of_regsho": PCT,
    "shares_before": SHARES, "shares_after": SHARES, "shares_change": "{:+,.0f}",
    "trades_before": COUNT, "trades_after": COUNT, "trades_change": "{:+,.0f}",
    "shares_old": SHARES, "shares_new": SHARES, "trades_old": COUNT, "trades_new": COUNT,
    "rows_before": COUNT, "rows_after": COUNT, "tier_share_before": PCT, "tier_share_after": PCT,
    "tier_share_change": "{:+.2%}", "hhi_before": COUNT, "hhi_after": COUNT,
    "hhi_change": "{:+,.0f}", "ats_share_before": PCT, "ats_share_after": PCT,
    "ats_share_change": "{:+.2%}", "shares_per_day_before": SHARES,
    "shares_per_day_after": SHARES, "mean_13w_shares_per_day_before": SHARES,
    "mean_13w_shares_per_day_after": SHARES, "mean_13w_change": "{:+,.0f}",
    "z_shares_per_day_before": Z, "z_shares_per_day_after": Z, "z_change": Z,
    "shares_per_day": SHARES, "prior_shares_per_day": SHARES, "change_shares_per_day": "{:+,.0f}",
    "z_shares_per_day": Z, "wow_change": SIGNED_PCT, "mean_13w_tier_share": PCT,
    "mean_4w_tier_share": PCT, "venue_hhi": COUNT, "rank_change": "{:+,.0f}",
    "weeks_in_window": COUNT, "rank": COUNT, "previous_rank": COUNT, "venue_count": COUNT,
    "earlier_weeks": COUNT,
}
# Column names as a reviewer reads them, and FINRA's summary-type codes in words.
LABELS = {ATS: "ATS", NON_ATS: "non-ATS"} | {
    codes["symbol"]: f"{side} (total)" for side, codes in SIDES.items()}


def styled(df: pd.DataFrame, hide_index: bool = True):
    """A table for the HTML report: thousands separators, percentages, dates as dates,
    summary types in words, column names with spaces. A float column without a format of its
    own gets thousands separators (whole numbers) or two decimals, never a raw repr. A table
    may name its own headers in `df.attrs["labels"]` (column -> text): a mean over a window
    shorter than its name says so there (`window_label`)."""
    labels = dict(df.attrs.get("labels", {}))
    df = df.copy()
    for col in df.columns:
        if df[col].dtype == object or str(df[col].dtype).startswith(("string", "str")):
            df[col] = df[col].map(lambda v: LABELS.get(v, v) if isinstance(v, str) else v)
    formats = {c: f for c, f in FORMATS.items() if c in df.columns}
    for col in df.columns:
        if col in formats:
            continue
        if pd.api.types.is_datetime64_any_dtype(df[col]):
            formats[col] = lambda v: "-" if pd.isna(v) else (
                f"{v:%Y-%m-%d}" if v == v.normalize() else f"{v:%Y-%m-%d %H:%M}")
        elif pd.api.types.is_float_dtype(df[col]):
            whole = df[col].dropna().pipe(lambda v: bool(len(v)) and bool((v == v.round()).all()))
            formats[col] = COUNT if whole or df[col].abs().max() >= 1000 else "{:,.2f}"
        elif pd.api.types.is_integer_dtype(df[col]):
            formats[col] = COUNT
    style = df.style.format(formats, na_rep="-")
    text = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])
            and not pd.api.types.is_datetime64_any_dtype(df[c])]
    if text:
        style = style.set_properties(subset=text, **{"text-align": "left"})
    style = style.relabel_index([labels.get(c) or header(c) for c in df.columns],
                                axis="columns")
    return style.hide(axis="index") if hide_index else style


WORDS = {"ats": "ATS", "hhi": "HHI", "otc": "OTC", "id": "ID", "mpid": "MPID", "crd": "CRD",
         "z": "z-score", "wow": "week/week", "regsho": "Reg SHO", "4w": "4-week",
         "13w": "13-week", "sho": "SHO", "corr": "corr."}


def header(column) -> str:
    """A column name as a reader reads it: `ats_share` -> "ATS share"."""
    words = [WORDS.get(w, w) for w in str(column).split("_")]
    text = " ".join(words)
    return text[:1].upper() + text[1:]


def window_label(measure: str, weeks: int, of: int = TREND_WEEKS) -> str:
    """The header of a mean over a window of `of` weeks that holds `weeks` of them:
    "Mean 13-week tier share" when it holds all, else "Mean tier share (5 of 13 weeks)"."""
    if weeks >= of:
        return f"Mean {of}-week {measure}"
    return f"Mean {measure} ({weeks} of {of} weeks)"


# Shown wherever `otc_share_of_regsho` is (weekly and symbol reports): a ratio that can pass 1.
REGSHO_NOTE = (
    "**OTC share of Reg SHO can exceed 100%.** It divides FINRA's weekly OTC shares of a symbol "
    "(ATS + non-ATS) by the total volume in Reg SHO's daily files over the week's trading days. "
    "These are two FINRA publications built by different rules: Reg SHO's daily files (the "
    "consolidated file of trades reported to FINRA's TRFs and the ADF) count only media-reported "
    "trades executed during normal market hours, while the weekly OTC data is derived from the "
    "OTC trades each ATS and member firm reports to FINRA's trade reporting facilities, under "
    "FINRA Rules 6110 and 6610. So the ratio compares two measures of off-exchange volume, not "
    "a part with its whole: above 100% means the weekly data counted more of the symbol's "
    "shares than Reg SHO's files did, which their different rules allow; it is not an error.")


def regsho_note(ratios: dict[str, pd.Series], unit: str = "symbols") -> str:
    """REGSHO_NOTE, and per key (a tier, or a symbol) how many of its ratios
    (`otc_share_of_regsho`, one per `unit`) are above 100%."""
    counts = [f"{key}: {int((r > 1).sum()):,} of {int(r.notna().sum()):,} {unit} above 100%"
              for key, r in ratios.items() if r.notna().any()]
    return REGSHO_NOTE + (f" Here, {'; '.join(counts)}." if counts else "")
