"""Quality gates for one (tier, week) before it may advance to clean.

Every check returns PASS, FAIL or SKIP with the measured value and the limit, so a gate report
says exactly what failed and by how much. A week with any FAIL is not advanced.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field

import pandas as pd
import pandera.errors

from spine.schemas import NATURAL_KEY, CleanWeekly

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"


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

    @classmethod
    def from_config(cls, cfg: dict | None) -> "GateConfig":
        cfg = dict(cfg or {})
        for key in ("rows_band", "symbols_band"):
            if key in cfg:
                cfg[key] = tuple(float(x) for x in cfg[key])
        return cls(**cfg)


@dataclass
class GateReport:
    dataset: str
    tier: str
    week_start: str
    capture_id: str
    status: str = PASS
    checks: list[Check] = field(default_factory=list)
    evaluated_at: str = ""

    def add(self, check: Check) -> None:
        self.checks.append(check)
        if check.status == FAIL:
            self.status = FAIL

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.status == FAIL]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "GateReport":
        """A report as recorded (the ledger's verdict event, or a gate report file)."""
        fields = {k: d[k] for k in ("dataset", "tier", "week_start", "capture_id", "status",
                                    "evaluated_at")}
        return cls(**fields, checks=[Check(**c) for c in d.get("checks", [])])

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
    wrong = clean[column] != expected
    n = int(wrong.sum())
    if n:
        first = clean.index[wrong.to_numpy()][0]
        return Check(f"{column}_matches_request", FAIL, n, 0,
                     f"{n} rows have {column} other than {expected} (first at row {first}: "
                     f"{clean.loc[first, column]})")
    return Check(f"{column}_matches_request", PASS, 0, 0, f"every row has {column}={expected}")


def _band_check(name: str, value: int, trailing: list[int], band: tuple[float, float],
                cfg: GateConfig) -> Check:
    if len(trailing) < cfg.band_min_weeks:
        return Check(name, SKIP, value, None,
                     f"only {len(trailing)} trailing accepted weeks (need {cfg.band_min_weeks})")
    median = float(pd.Series(trailing).median())
    lo, hi = band[0] * median, band[1] * median
    limit = [round(lo, 1), round(hi, 1)]
    status = PASS if lo <= value <= hi else FAIL
    return Check(name, status, value, limit,
                 f"{value} vs median {median:.0f} of {len(trailing)} trailing weeks "
                 f"(allowed {band[0]:g}x to {band[1]:g}x)")


def evaluate(clean: pd.DataFrame, *, dataset: str, tier: str, week_start: dt.date, capture_id: str,
             trailing: pd.DataFrame, aggregate_rows: int = 0,
             cfg: GateConfig | None = None) -> GateReport:
    """Run every gate on one converted week.

    trailing: one row per trailing accepted week with columns `rows` and `symbols`.
    """
    cfg = cfg or GateConfig()
    report = GateReport(dataset=dataset, tier=tier, week_start=week_start.isoformat(),
                        capture_id=capture_id,
                        evaluated_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    rows = len(clean)
    report.add(Check("has_rows", PASS if rows else FAIL, rows, 1,
                     f"{rows} detail rows ({aggregate_rows} aggregate rows left in raw)"))
    report.add(_schema_check(clean))
    report.add(_identity_check(clean, "tier", tier))
    report.add(_identity_check(clean.assign(week_start=clean["week_start"].dt.date), "week_start",
                               week_start))
    dups = int(clean.duplicated(subset=NATURAL_KEY, keep=False).sum())
    report.add(Check("unique_natural_key", FAIL if dups else PASS, dups, 0,
                     f"{dups} rows share a natural key ({', '.join(NATURAL_KEY)})"))
    symbols = int(clean["symbol"].nunique())
    report.add(_band_check("rows_in_band", rows, trailing["rows"].tolist(), cfg.rows_band, cfg))
    report.add(_band_check("symbols_in_band", symbols, trailing["symbols"].tolist(),
                           cfg.symbols_band, cfg))
    return report
