"""The gate's checks of one converted (tier, week), one function each.

Each measures one property of the week and returns a `Check`: PASS, FAIL, WARN or SKIP, with
the measured value and the limit, so a gate report says exactly what failed and by how much.
Which checks run, at what severity and with which limits is `spine.ingest.gates`' (the gate
settings, `evaluate`); a check here is handed only the values it judges.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pandera.errors

from spine import calendar as cal
from spine.ingest import reconcile
from spine.ingest.reconcile import plain
from spine.ingest.venues import venue_label
from spine.schemas import NATURAL_KEY, CleanWeekly
from spine.vocabulary import ATS, NON_ATS

PASS, FAIL, WARN, SKIP = "PASS", "FAIL", "WARN", "SKIP"
# FINRA's tier values that are not T1, T2 or OTCE: seen in its data, documented nowhere.
UNDOCUMENTED_TIERS = {"NMS": "FINRA's monthly non-ATS data uses it for T1 and T2 together",
                      "NA": "no tier assigned"}


@dataclass
class Check:
    check: str
    status: str
    measured: object
    limit: object
    message: str


@dataclass(frozen=True)
class Version:
    """What the gates compare a new capture with: the version of the week clean holds."""

    capture_id: str
    rows: int
    shares: float
    symbols: frozenset
    venues: frozenset
    last_updated: object  # the latest lastUpdateDate (a Timestamp), or None

    @classmethod
    def of(cls, clean: pd.DataFrame, capture_id: str) -> "Version":
        return cls(capture_id, len(clean), float(clean["shares"].sum()),
                   frozenset(clean["symbol"]), frozenset(venue_label(clean)),
                   clean["last_updated"].max() if len(clean) else None)


def schema_check(clean: pd.DataFrame) -> Check:
    try:
        CleanWeekly.validate(clean, lazy=True)
    except pandera.errors.SchemaErrors as err:
        cases = err.failure_cases
        parts, rows = [], set()
        for check, group in cases.groupby("check", sort=False):
            index = group["index"].dropna().astype(int)
            rows |= set(index)
            first = group.iloc[0]
            where = (f"rows {', '.join(map(str, sorted(set(index))[:3]))}"
                     + (" ..." if index.nunique() > 3 else "")) if len(index) else "the table"
            what = (f"{first['column']} {check}" if first["schema_context"] == "Column"
                    else check)
            case = first["failure_case"]
            case = case.item() if hasattr(case, "item") else case
            value = (f" (e.g. {case!r})"
                     if first["schema_context"] == "Column" and len(index) else "")
            parts.append(f"{what}{value}: {where}")
        return Check("schema", FAIL, len(rows) or len(cases), 0,
                     f"{len(rows)} rows violate the schema: " + "; ".join(parts))
    return Check("schema", PASS, 0, 0, "types, ranges, non-null keys and unique natural key")


def identity_check(clean: pd.DataFrame, column: str, expected: object) -> Check:
    wrong = (clean[column] != expected).fillna(True)
    n = int(wrong.sum())
    if n:
        first = clean.index[wrong.to_numpy()][0]
        odd = sorted(set(clean.loc[wrong, column].dropna()) & set(UNDOCUMENTED_TIERS)) \
            if column == "tier" else []
        why = "".join(f"; {v!r} is a tier value FINRA sends but does not document "
                      f"({UNDOCUMENTED_TIERS[v]}): Market Spine does not guess which of T1, T2 "
                      "or OTCE it means, so the week is refused; re-fetch it, and ask FINRA if it "
                      "persists" for v in odd)
        return Check(f"{column}_matches_request", FAIL, n, 0,
                     f"{n} rows have {column} other than {expected} (first at row {first}: "
                     f"{clean.loc[first, column]}){why}")
    return Check(f"{column}_matches_request", PASS, 0, 0, f"every row has {column}={expected}")


def band_check(name: str, value: int, trailing: list[int], band: tuple[float, float],
               min_weeks: int, unit: str = "") -> Check:
    """`value` within `band` times the median of the trailing weeks (SKIP: fewer than
    `min_weeks` of them)."""
    if len(trailing) < min_weeks:
        return Check(name, SKIP, value, None,
                     f"only {len(trailing)} trailing accepted weeks (need {min_weeks})")
    median = float(pd.Series(trailing).median())
    lo, hi = band[0] * median, band[1] * median
    limit = [round(lo, 1), round(hi, 1)]
    status = PASS if lo <= value <= hi else FAIL
    return Check(name, status, value, limit,
                 f"{value:,}{unit} vs median {median:,.0f} of {len(trailing)} trailing weeks "
                 f"(allowed {plain(band[0])}x to {plain(band[1])}x)")


def values_check(clean: pd.DataFrame, max_row_shares: float) -> Check:
    bad = pd.Series(False, index=clean.index)
    what = []
    for col in ("shares", "trades", "notional"):
        values = pd.to_numeric(clean[col], errors="coerce").astype(float)
        wrong = ~np.isfinite(values) & clean[col].notna()
        if col == "shares":
            wrong |= values > max_row_shares
        if wrong.any():
            first = clean.index[wrong.to_numpy()][0]
            what.append(f"{col} {plain(float(values.loc[first]))} (row {first}, "
                        f"{clean.loc[first, 'symbol']} at {clean.loc[first, 'participant_name']})")
        bad |= wrong
    n = int(bad.sum())
    if n:
        return Check("values_finite", FAIL, n, 0, f"{n} rows with impossible values: "
                     + "; ".join(what) + f" (one venue's week above {plain(max_row_shares)} "
                     "shares, or not finite)")
    return Check("values_finite", PASS, 0, 0,
                 f"every value finite, no venue above {plain(max_row_shares)} shares a week")


def published_check(tier: str, week_start: dt.date, as_of) -> Check:
    if as_of is None:
        return Check("week_published", SKIP, None, None, "no as_of given")
    published = cal.publication_date(tier, week_start)
    as_of = cal.to_date(as_of, "as_of")
    ok = published <= as_of
    return Check("week_published", PASS if ok else FAIL, published.isoformat(),
                 as_of.isoformat(),
                 f"{tier} week {week_start} is first published on {published}"
                 + ("" if ok else f", after this run's as_of {as_of}: FINRA has not published "
                    "it, so this data cannot be it"))


def venues_check(clean: pd.DataFrame, ats_mpids: frozenset | None,
                 week_ats: dict | None) -> Check:
    """Who is an ATS: where the capture holds FINRA's ATS_W_FIRM rows, FINRA said it for this
    week; otherwise (a download file, whose summary type was inferred) the reference list."""
    if week_ats is not None:
        ats_mpids, whose = frozenset(week_ats), "FINRA's ATS_W_FIRM rows of this week"
    elif ats_mpids is None:
        return Check("summary_type_venues", SKIP, None, None, "no ATS list given")
    else:
        whose = "FINRA's ATS list (spine/ingest/reference/ats_mpids.csv)"
    mpid = clean["mpid"].fillna("").astype(str)
    listed = mpid.isin(ats_mpids)
    ats_rows = (clean["summary_type"] == ATS).to_numpy()
    non_ats_rows = (clean["summary_type"] == NON_ATS).to_numpy()
    wrong_non = non_ats_rows & listed.to_numpy()
    wrong_ats = ats_rows & ~listed.to_numpy()
    parts = []
    if wrong_non.any():
        parts.append(f"{int(wrong_non.sum())} non-ATS rows carry ATS MPIDs "
                     f"({', '.join(sorted(set(mpid[wrong_non]))[:5])}): ATS rows stored as "
                     "non-ATS?")
    if wrong_ats.any():
        parts.append(f"{int(wrong_ats.sum())} ATS rows carry MPIDs FINRA does not list as ATSs "
                     f"({', '.join(sorted(set(mpid[wrong_ats].replace('', '(none)')))[:5])}): "
                     "non-ATS rows stored as ATS, or a new ATS (spine ats-list --refresh)")
    n = int(wrong_non.sum() + wrong_ats.sum())
    if n:
        return Check("summary_type_venues", FAIL, n, 0, "; ".join(parts) + f" (by {whose})")
    return Check("summary_type_venues", PASS, 0, 0,
                 f"ATS rows carry ATS MPIDs, non-ATS rows none (by {whose})")


def ats_list_check(week_ats: dict | None, ats_mpids: frozenset | None) -> Check:
    if week_ats is None:
        return Check("ats_list_current", SKIP, None, None,
                     "the capture holds no FINRA ATS_W_FIRM rows to learn the week's ATSs from")
    new = sorted(set(week_ats) - (ats_mpids or frozenset()))
    if new:
        return Check("ats_list_current", FAIL, len(new), 0,
                     f"FINRA lists {len(new)} ATS(s) this week that spine/ingest/reference/ats_mpids.csv "
                     "lacks: " + ", ".join(f"{m} ({week_ats[m] or 'no name'})" for m in new)
                     + "; recorded with this week (spine ats-list --learned); add them with "
                     "spine ats-list --refresh")
    return Check("ats_list_current", PASS, 0, 0,
                 f"all {len(week_ats)} ATSs FINRA lists this week are in the reference list")


def reconcile_checks(raw: pd.DataFrame | None, tier: str, week_start: dt.date
                     ) -> dict[str, Check]:
    if raw is None:
        why = "no raw capture given to reconcile with"
        return {c: Check(c, SKIP, None, None, why) for c in reconcile.CHECKS.values()}
    fix = (f" Fix: re-fetch the week (snakemake --cores 2 refetch --config "
           f"'weeks=[{week_start}]' 'tiers=[{tier}]'); if FINRA's own figures still disagree, "
           f"record an override: spine override --tier {tier} --week-start {week_start} "
           "--check {check} --reason '...'")
    out = {}
    for check, o in reconcile.reconcile(raw).items():
        if o.skip:
            out[check] = Check(check, SKIP, None, None, o.skip)
        elif o.problems:
            out[check] = Check(check, FAIL, o.measured, 0,
                               f"{tier} week {week_start} does not reconcile with FINRA's "
                               f"aggregates: {o.message}." + fix.replace("{check}", check))
        else:
            out[check] = Check(check, PASS, 0, 0, o.message)
    return out


def forward_check(clean: pd.DataFrame, previous: Version | None) -> Check:
    if previous is None or previous.last_updated is None or not len(clean):
        return Check("last_updated_forward", SKIP, None, None,
                     "no version of this week in clean to compare with")
    new = clean["last_updated"].max()
    ok = new >= previous.last_updated
    return Check("last_updated_forward", PASS if ok else FAIL, str(new.date()),
                 str(previous.last_updated.date()),
                 f"latest lastUpdateDate {new.date()}, clean's version "
                 f"({previous.capture_id}) {previous.last_updated.date()}"
                 + ("" if ok else ": this capture is older than the version clean holds (a "
                    "run at an earlier as_of, or a stale file)"))


def previous_checks(clean: pd.DataFrame, previous: Version | None,
                    band: tuple[float, float], change_max: float) -> list[Check]:
    if previous is None:
        why = "no version of this week in clean to compare with"
        return [Check("rows_vs_previous", SKIP, None, None, why),
                Check("symbols_vs_previous", SKIP, None, None, why)]
    lo, hi = band
    rows = len(clean) / previous.rows if previous.rows else float("inf")
    shares = float(clean["shares"].sum()) / previous.shares if previous.shares else float("inf")
    ok = lo <= rows <= hi and lo <= shares <= hi
    first = Check("rows_vs_previous", PASS if ok else FAIL,
                  {"rows": round(rows, 4), "shares": round(shares, 4)}, [lo, hi],
                  f"rows {len(clean):,} vs {previous.rows:,} ({rows:.1%}), shares "
                  f"{clean['shares'].sum():,.0f} vs {previous.shares:,.0f} ({shares:.1%}) of "
                  f"clean's version {previous.capture_id} (allowed {plain(lo)}x to {plain(hi)}x)")
    symbols, venues = set(clean["symbol"]), set(venue_label(clean))
    measured = {
        "symbols_dropped": len(previous.symbols - symbols) / max(1, len(previous.symbols)),
        "symbols_added": len(symbols - previous.symbols) / max(1, len(previous.symbols)),
        "venues_dropped": len(previous.venues - venues) / max(1, len(previous.venues)),
        "venues_added": len(venues - previous.venues) / max(1, len(previous.venues)),
    }
    worst = max(measured, key=measured.get)
    ok = measured[worst] <= change_max
    second = Check("symbols_vs_previous", PASS if ok else FAIL,
                   {k: round(v, 4) for k, v in measured.items()}, change_max,
                   ", ".join(f"{k.replace('_', ' ')} {v:.1%}" for k, v in measured.items())
                   + f" of clean's version {previous.capture_id} (allowed up to "
                   f"{change_max:.0%} each)")
    return [first, second]


def skipped(name: str) -> Check:
    return Check(name, SKIP, None, None, f"not run: gates.severity.{name} is SKIP in config")


def unique_check(clean: pd.DataFrame) -> Check:
    dups = int(clean.duplicated(subset=NATURAL_KEY, keep=False).sum())
    return Check("unique_natural_key", FAIL if dups else PASS, dups, 0,
                 f"{dups} rows share a natural key ({', '.join(NATURAL_KEY)})")
