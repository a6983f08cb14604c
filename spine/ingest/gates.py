"""Quality gates for one (tier, week) before it may advance to clean.

Every check returns PASS, FAIL, WARN or SKIP with the measured value and the limit, so a gate
report says exactly what failed and by how much. A week with any FAIL is not advanced.

Each check's severity is configuration (`gates.severity.<check>` in config/config.yaml, and per
tier under `gates.tiers.<tier>`): FAIL holds the week back, WARN lets it through and reports
it, SKIP does not run the check and says so. The checks, in the order a report lists them:
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import pandera.errors

from spine.ingest import reconcile
from spine.schemas import ATS, NATURAL_KEY, NON_ATS, CleanWeekly

PASS, FAIL, WARN, SKIP = "PASS", "FAIL", "WARN", "SKIP"
SEVERITIES = (FAIL, WARN, SKIP)
MEASURES = ("rows", "symbols", "shares", "trading_days", "shares_per_day", "max_last_updated",
            "new_ats")
# A check's severity unless `gates.severity` says otherwise: FAIL, but for the checks not yet
# shown to hold exactly on real data (FINRA has not documented its firm aggregates) and the
# news that FINRA lists an ATS our reference list lacks.
DEFAULT_SEVERITY = {"reconciles_by_firm": WARN, "ats_list_current": WARN}
# FINRA's tier values that are not T1, T2 or OTCE: seen in its data, documented nowhere.
UNDOCUMENTED_TIERS = {"NMS": "FINRA's monthly non-ATS data uses it for T1 and T2 together",
                      "NA": "no tier assigned"}

CHECKS = {
    "has_rows": "the capture has detail rows",
    "schema": "types, ranges, non-null keys (pandera's CleanWeekly)",
    "tier_matches_request": "every row is of the tier asked for",
    "week_start_matches_request": "every row is of the week asked for",
    "unique_natural_key": "no two rows share the natural key",
    "values_finite": "shares, trades and notional are finite and possible",
    "week_published": "FINRA has published the week by the run's as_of",
    "summary_type_venues": "ATS rows carry FINRA's ATS MPIDs and non-ATS rows do not (the "
                           "week's ATS_W_FIRM rows where the capture has them, else the list)",
    "ats_list_current": "every ATS FINRA lists this week (ATS_W_FIRM) is in "
                        "spine/ingest/reference/ats_mpids.csv (WARN: a new ATS)",
    "reconciles_by_symbol": "the detail rows sum to FINRA's ATS_W_SMBL / OTC_W_SMBL, key by "
                            "key and in total (SKIP: the capture has no aggregates)",
    "reconciles_by_firm": "the detail rows sum to FINRA's ATS_W_FIRM / OTC_W_FIRM, firm by firm "
                          "and in total (WARN until shown to hold on real data)",
    "last_updated_forward": "lastUpdateDate does not go back from the version clean holds",
    "rows_vs_previous": "rows and shares against the version of the week clean holds",
    "symbols_vs_previous": "symbols and venues dropped or added against that version",
    "rows_in_band": "rows against the trailing accepted weeks",
    "symbols_in_band": "symbols against the trailing accepted weeks",
    "shares_per_day_in_band": "shares per trading day against the trailing accepted weeks",
}
__doc__ += "\n".join(f"- `{k}`: {v}" for k, v in CHECKS.items()) + "\n"


@dataclass
class Check:
    check: str
    status: str
    measured: object
    limit: object
    message: str


@dataclass
class GateConfig:
    band_weeks: int = 4  # trailing accepted weeks the counts are compared with
    band_min_weeks: int = 2  # fewer trailing weeks than this: the band checks are skipped
    rows_band: tuple[float, float] = (0.5, 1.5)  # allowed ratio to the trailing median
    symbols_band: tuple[float, float] = (0.5, 1.5)
    shares_per_day_band: tuple[float, float] = (0.4, 2.5)
    previous_band: tuple[float, float] = (0.67, 1.5)  # rows and shares vs the held version
    previous_change_max: float = 0.25  # symbols or venues dropped (or added) vs the held version
    max_row_shares: float = 1e12  # no security trades this many shares on one venue in a week
    severity: dict[str, str] = field(default_factory=dict)  # check -> FAIL | WARN | SKIP
    tiers: dict[str, dict] = field(default_factory=dict)  # tier -> any of the keys above

    @classmethod
    def from_config(cls, cfg: dict | None, tier: str | None = None) -> "GateConfig":
        """The gate settings of `tier`: `gates:` with `gates.tiers.<tier>` over it."""
        cfg = dict(cfg or {})
        own = dict((cfg.get("tiers") or {}).get(tier) or {}) if tier else {}
        severity = {**(cfg.get("severity") or {}), **(own.pop("severity", None) or {})}
        cfg.update(own)
        cfg["severity"] = severity
        for key in ("rows_band", "symbols_band", "shares_per_day_band", "previous_band"):
            if key in cfg:
                cfg[key] = tuple(float(x) for x in cfg[key])
        return cls(**cfg)

    def severity_of(self, check: str) -> str:
        return self.severity.get(check, DEFAULT_SEVERITY.get(check, FAIL))


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
                   frozenset(clean["symbol"]), frozenset(_venues(clean)),
                   clean["last_updated"].max() if len(clean) else None)


def _venues(clean: pd.DataFrame) -> pd.Series:
    from spine.derive.calcs import venue_label

    return venue_label(clean)


@dataclass
class GateReport:
    dataset: str
    tier: str
    week_start: str
    capture_id: str
    status: str = PASS
    checks: list[Check] = field(default_factory=list)
    evaluated_at: str = ""
    # what the capture measured (MEASURES): later weeks' bands compare with these, as the
    # report recorded them
    measures: dict = field(default_factory=dict)

    def add(self, check: Check, cfg: "GateConfig | None" = None) -> None:
        """Add a check's outcome at its configured severity: a FAIL of a WARN check is a
        WARN, and lets the week through."""
        if cfg is not None and check.status == FAIL and cfg.severity_of(check.check) == WARN:
            check.status = WARN
            why = (f"gates.severity.{check.check}" if check.check in cfg.severity
                   else "its default severity")
            check.message = f"{check.message} (WARN: {why})"
        self.checks.append(check)
        if check.status == FAIL:
            self.status = FAIL

    @property
    def warnings(self) -> list[Check]:
        return [c for c in self.checks if c.status == WARN]

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.status == FAIL]

    def to_dict(self) -> dict:
        d = asdict(self)
        measures = d.pop("measures")
        return d | measures

    @classmethod
    def from_dict(cls, d: dict) -> "GateReport":
        """A report as recorded (the ledger's verdict event, or a gate report file)."""
        fields = {k: d[k] for k in ("dataset", "tier", "week_start", "capture_id", "status",
                                    "evaluated_at")}
        return cls(**fields, checks=[Check(**c) for c in d.get("checks", [])],
                   measures={k: d[k] for k in MEASURES if k in d})

    def table(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(c) for c in self.checks])


def _schema_check(clean: pd.DataFrame) -> Check:
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


def _identity_check(clean: pd.DataFrame, column: str, expected: object) -> Check:
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


def _band_check(name: str, value: int, trailing: list[int], band: tuple[float, float],
                cfg: GateConfig, unit: str = "") -> Check:
    if len(trailing) < cfg.band_min_weeks:
        return Check(name, SKIP, value, None,
                     f"only {len(trailing)} trailing accepted weeks (need {cfg.band_min_weeks})")
    median = float(pd.Series(trailing).median())
    lo, hi = band[0] * median, band[1] * median
    limit = [round(lo, 1), round(hi, 1)]
    status = PASS if lo <= value <= hi else FAIL
    return Check(name, status, value, limit,
                 f"{value:,}{unit} vs median {median:,.0f} of {len(trailing)} trailing weeks "
                 f"(allowed {plain(band[0])}x to {plain(band[1])}x)")


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


def _values_check(clean: pd.DataFrame, cfg: GateConfig) -> Check:
    bad = pd.Series(False, index=clean.index)
    what = []
    for col in ("shares", "trades", "notional"):
        values = pd.to_numeric(clean[col], errors="coerce").astype(float)
        wrong = ~np.isfinite(values) & clean[col].notna()
        if col == "shares":
            wrong |= values > cfg.max_row_shares
        if wrong.any():
            first = clean.index[wrong.to_numpy()][0]
            what.append(f"{col} {plain(float(values.loc[first]))} (row {first}, "
                        f"{clean.loc[first, 'symbol']} at {clean.loc[first, 'participant_name']})")
        bad |= wrong
    n = int(bad.sum())
    if n:
        return Check("values_finite", FAIL, n, 0, f"{n} rows with impossible values: "
                     + "; ".join(what) + f" (one venue's week above {plain(cfg.max_row_shares)} "
                     "shares, or not finite)")
    return Check("values_finite", PASS, 0, 0,
                 f"every value finite, no venue above {plain(cfg.max_row_shares)} shares a week")


def _published_check(tier: str, week_start: dt.date, as_of) -> Check:
    from spine import calendar as cal

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


def _venues_check(clean: pd.DataFrame, ats_mpids: frozenset | None,
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


def _ats_list_check(week_ats: dict | None, ats_mpids: frozenset | None) -> Check:
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


def _reconcile_checks(raw: pd.DataFrame | None, tier: str, week_start: dt.date
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


def _forward_check(clean: pd.DataFrame, previous: Version | None) -> Check:
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


def _previous_checks(clean: pd.DataFrame, previous: Version | None,
                     cfg: GateConfig) -> list[Check]:
    if previous is None:
        why = "no version of this week in clean to compare with"
        return [Check("rows_vs_previous", SKIP, None, None, why),
                Check("symbols_vs_previous", SKIP, None, None, why)]
    lo, hi = cfg.previous_band
    rows = len(clean) / previous.rows if previous.rows else float("inf")
    shares = float(clean["shares"].sum()) / previous.shares if previous.shares else float("inf")
    ok = lo <= rows <= hi and lo <= shares <= hi
    first = Check("rows_vs_previous", PASS if ok else FAIL,
                  {"rows": round(rows, 4), "shares": round(shares, 4)}, [lo, hi],
                  f"rows {len(clean):,} vs {previous.rows:,} ({rows:.1%}), shares "
                  f"{clean['shares'].sum():,.0f} vs {previous.shares:,.0f} ({shares:.1%}) of "
                  f"clean's version {previous.capture_id} (allowed {plain(lo)}x to {plain(hi)}x)")
    symbols, venues = set(clean["symbol"]), set(_venues(clean))
    measured = {
        "symbols_dropped": len(previous.symbols - symbols) / max(1, len(previous.symbols)),
        "symbols_added": len(symbols - previous.symbols) / max(1, len(previous.symbols)),
        "venues_dropped": len(previous.venues - venues) / max(1, len(previous.venues)),
        "venues_added": len(venues - previous.venues) / max(1, len(previous.venues)),
    }
    worst = max(measured, key=measured.get)
    ok = measured[worst] <= cfg.previous_change_max
    second = Check("symbols_vs_previous", PASS if ok else FAIL,
                   {k: round(v, 4) for k, v in measured.items()}, cfg.previous_change_max,
                   ", ".join(f"{k.replace('_', ' ')} {v:.1%}" for k, v in measured.items())
                   + f" of clean's version {previous.capture_id} (allowed up to "
                   f"{cfg.previous_change_max:.0%} each)")
    return [first, second]


def _skipped(name: str) -> Check:
    return Check(name, SKIP, None, None, f"not run: gates.severity.{name} is SKIP in config")


def evaluate(clean: pd.DataFrame, *, dataset: str, tier: str, week_start: dt.date, capture_id: str,
             trailing: pd.DataFrame, aggregate_rows: int = 0,
             cfg: GateConfig | None = None, previous: Version | None = None,
             as_of=None, ats_mpids: frozenset | None = None,
             raw: pd.DataFrame | None = None) -> GateReport:
    """Run every gate on one converted week.

    trailing: one row per trailing accepted week with columns `rows`, `symbols` and, where
    recorded, `shares_per_day`. previous: the version of this week clean holds (None for a
    week's first capture). raw: the capture as stored (detail and FINRA's aggregates), which
    the reconciliation and FINRA's own list of the week's ATSs come from.
    """
    from spine import calendar as cal

    cfg = cfg or GateConfig()
    report = GateReport(dataset=dataset, tier=tier, week_start=week_start.isoformat(),
                        capture_id=capture_id,
                        evaluated_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    rows = len(clean)
    symbols = int(clean["symbol"].nunique())
    days = cal.trading_days(week_start)
    shares = float(pd.to_numeric(clean["shares"], errors="coerce").replace(
        [np.inf, -np.inf], np.nan).sum())
    per_day = shares / max(1, days)
    week_ats = reconcile.ats_firms(raw) if raw is not None else None
    report.measures = {
        "rows": rows, "symbols": symbols, "shares": shares, "trading_days": days,
        "shares_per_day": per_day,
        "max_last_updated": str(clean["last_updated"].max().date()) if rows else None,
        "new_ats": ({m: week_ats[m] for m in sorted(set(week_ats) - (ats_mpids or frozenset()))}
                    if week_ats is not None else {})}
    reconciled: dict[str, Check] = {}  # both checks come from one pass, made once

    def reconcile_check(name: str) -> Check:
        if not reconciled:
            reconciled.update(_reconcile_checks(raw, tier, week_start))
        return reconciled[name]
    versus_previous: list[Check] = []  # both checks come from one comparison, made once

    def previous_check(i: int) -> Check:
        if not versus_previous:
            versus_previous.extend(_previous_checks(clean, previous, cfg))
        return versus_previous[i]
    shares_trailing = (trailing["shares_per_day"].dropna().tolist()
                       if "shares_per_day" in trailing else [])
    checks = {
        "has_rows": lambda: Check("has_rows", PASS if rows else FAIL, rows, 1,
                                  f"{rows} detail rows ({aggregate_rows} aggregate rows left "
                                  "in raw)"),
        "schema": lambda: _schema_check(clean),
        "tier_matches_request": lambda: _identity_check(clean, "tier", tier),
        "week_start_matches_request": lambda: _identity_check(
            clean.assign(week_start=clean["week_start"].dt.date), "week_start", week_start),
        "unique_natural_key": lambda: _unique_check(clean),
        "values_finite": lambda: _values_check(clean, cfg),
        "week_published": lambda: _published_check(tier, week_start, as_of),
        "summary_type_venues": lambda: _venues_check(clean, ats_mpids, week_ats),
        "ats_list_current": lambda: _ats_list_check(week_ats, ats_mpids),
        "reconciles_by_symbol": lambda: reconcile_check("reconciles_by_symbol"),
        "reconciles_by_firm": lambda: reconcile_check("reconciles_by_firm"),
        "last_updated_forward": lambda: _forward_check(clean, previous),
        "rows_vs_previous": lambda: previous_check(0),
        "symbols_vs_previous": lambda: previous_check(1),
        "rows_in_band": lambda: _band_check("rows_in_band", rows, trailing["rows"].tolist(),
                                            cfg.rows_band, cfg),
        "symbols_in_band": lambda: _band_check("symbols_in_band", symbols,
                                               trailing["symbols"].tolist(), cfg.symbols_band, cfg),
        "shares_per_day_in_band": lambda: _band_check(
            "shares_per_day_in_band", round(per_day), shares_trailing,
            cfg.shares_per_day_band, cfg, unit=f" shares per trading day ({days} this week)"),
    }
    for name, run in checks.items():
        report.add(_skipped(name) if cfg.severity_of(name) == SKIP else run(), cfg)
    return report


def _unique_check(clean: pd.DataFrame) -> Check:
    dups = int(clean.duplicated(subset=NATURAL_KEY, keep=False).sum())
    return Check("unique_natural_key", FAIL if dups else PASS, dups, 0,
                 f"{dups} rows share a natural key ({', '.join(NATURAL_KEY)})")
