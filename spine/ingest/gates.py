"""Quality gates for one (tier, week) before it may advance to clean.

Every check (one function each in `spine.ingest.checks`) returns PASS, FAIL, WARN or SKIP with
the measured value and the limit, so a gate report says exactly what failed and by how much. A
week with any FAIL is not advanced. Here: the gate settings (`GateConfig`), the report
(`GateReport`) and `evaluate`, which runs the checks in order at their configured severity.

Each check's severity is configuration (`gates.severity.<check>` in config/config.yaml, and per
tier under `gates.tiers.<tier>`): FAIL holds the week back, WARN lets it through and reports
it, SKIP does not run the check and says so. The checks, in the order a report lists them:
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from spine import calendar as cal
from spine.ingest import reconcile
from spine.ingest.checks import (FAIL, PASS, SKIP, WARN, Check, Version, ats_list_check,
                                 band_check, forward_check, identity_check, previous_checks,
                                 published_check, reconcile_checks, schema_check, skipped,
                                 unique_check, values_check, venues_check)
MEASURES = ("rows", "symbols", "shares", "trading_days", "shares_per_day", "max_last_updated",
            "new_ats")
# A check's severity unless `gates.severity` says otherwise: FAIL, but for the checks not yet
# shown to hold exactly on real data (FINRA has not documented its firm aggregates) and the
# news that FINRA lists an ATS our reference list lacks.
DEFAULT_SEVERITY = {"reconciles_by_firm": WARN, "ats_list_current": WARN}

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
            reconciled.update(reconcile_checks(raw, tier, week_start))
        return reconciled[name]
    versus_previous: list[Check] = []  # both checks come from one comparison, made once

    def previous_check(i: int) -> Check:
        if not versus_previous:
            versus_previous.extend(previous_checks(clean, previous, cfg.previous_band,
                                                   cfg.previous_change_max))
        return versus_previous[i]
    shares_trailing = (trailing["shares_per_day"].dropna().tolist()
                       if "shares_per_day" in trailing else [])
    checks = {
        "has_rows": lambda: Check("has_rows", PASS if rows else FAIL, rows, 1,
                                  f"{rows} detail rows ({aggregate_rows} aggregate rows left "
                                  "in raw)"),
        "schema": lambda: schema_check(clean),
        "tier_matches_request": lambda: identity_check(clean, "tier", tier),
        "week_start_matches_request": lambda: identity_check(
            clean.assign(week_start=clean["week_start"].dt.date), "week_start", week_start),
        "unique_natural_key": lambda: unique_check(clean),
        "values_finite": lambda: values_check(clean, cfg.max_row_shares),
        "week_published": lambda: published_check(tier, week_start, as_of),
        "summary_type_venues": lambda: venues_check(clean, ats_mpids, week_ats),
        "ats_list_current": lambda: ats_list_check(week_ats, ats_mpids),
        "reconciles_by_symbol": lambda: reconcile_check("reconciles_by_symbol"),
        "reconciles_by_firm": lambda: reconcile_check("reconciles_by_firm"),
        "last_updated_forward": lambda: forward_check(clean, previous),
        "rows_vs_previous": lambda: previous_check(0),
        "symbols_vs_previous": lambda: previous_check(1),
        "rows_in_band": lambda: band_check("rows_in_band", rows, trailing["rows"].tolist(),
                                           cfg.rows_band, cfg.band_min_weeks),
        "symbols_in_band": lambda: band_check("symbols_in_band", symbols,
                                              trailing["symbols"].tolist(), cfg.symbols_band,
                                              cfg.band_min_weeks),
        "shares_per_day_in_band": lambda: band_check(
            "shares_per_day_in_band", round(per_day), shares_trailing, cfg.shares_per_day_band,
            cfg.band_min_weeks, unit=f" shares per trading day ({days} this week)"),
    }
    for name, run in checks.items():
        report.add(skipped(name) if cfg.severity_of(name) == SKIP else run(), cfg)
    return report
