"""What a run covers, and the week arithmetic of windows and trailing weeks.

The Snakefile calls these once per invocation to compute the plan; the steps and the ledger's
state (`spine.ingest.ledger.LakeState`) call the same functions, so a window, a trailing week or
"which later weeks a revision touches" is written down exactly once, here. The publication
calendar (which weeks are out, and when) is `spine.calendar`. Nothing here reads a file.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field

from spine.derive import registry
from spine.vocabulary import TIERS
# A week's derived files reach this many weeks forward: a change to week w changes the
# calculations of w and of the weeks after it whose windows hold it (spine.derive.registry).
REACH_WEEKS = registry.longest_reach()
# A revision report recomputes symbol_trend of the revised week with the weeks before it, and
# the weekly report charts the last 13 weeks: both read the trend window's weeks.
TREND_WEEKS = registry.TREND_WEEKS
HISTORY_CALCS = ("tier_summary", "venue_share")  # what the weekly report's trend charts read
WEEK = dt.timedelta(days=7)

Partition = tuple[str, dt.date]  # (tier, week_start)


# --- week arithmetic ---------------------------------------------------------------------------

def rolling_window(week_start: dt.date, weeks: int) -> list[dt.date]:
    """The `weeks` weeks of the window that ends at `week_start`, oldest first (it included)."""
    return [week_start - WEEK * k for k in range(weeks - 1, -1, -1)]


def windows_containing(week_start: dt.date) -> list[dt.date]:
    """The weeks whose derived files can depend on `week_start`: it and the next REACH_WEEKS - 1."""
    return [week_start + WEEK * k for k in range(REACH_WEEKS)]


def trailing_weeks(week_start: dt.date, n: int) -> list[dt.date]:
    """The `n` weeks before `week_start`, nearest first (the gates' count band)."""
    return [week_start - WEEK * k for k in range(1, n + 1)]


def regsho_as_of(week_start: dt.date, as_of: str | dt.date) -> str:
    """The as_of a week's Reg SHO step sees: the run's as_of, but never past the week's Friday.
    Reg SHO days after as_of are not published yet; for any week already out (every week a run
    covers) the value is its Friday, so moving as_of does not refetch old Reg SHO weeks."""
    as_of = dt.date.fromisoformat(str(as_of))
    return min(as_of, week_start + dt.timedelta(days=4)).isoformat()


# --- what a run covers -------------------------------------------------------------------------
# The publication calendar and the sources import pandas; the ledger's state, which imports this
# module for its week arithmetic, must not (tests/unit/test_house.py): they are imported here.

def weekly(config: dict) -> list[Partition]:
    """The weekly update: every week first published within `revision_lookback_weeks`."""
    from spine import calendar as cal

    return [(tier, week) for tier in config["tiers"]
            for week in cal.recent_weeks(tier, config["as_of"], config["revision_lookback_weeks"])]


def backfill(config: dict) -> list[Partition]:
    """Every published week with week_start in [start, end]."""
    from spine import calendar as cal

    if not config.get("start"):
        raise ValueError("backfill needs config key 'start' (and usually 'end'): "
                         "snakemake --cores 2 backfill --config start=2025-01-06 end=2025-06-30")
    return [(tier, week) for tier in config["tiers"]
            for week in cal.published_weeks(tier, config["as_of"], config["start"],
                                            config.get("end") or None)]


def refetch(config: dict) -> list[Partition]:
    """`snakemake refetch --config weeks=[...]`: the named weeks, for the configured tiers that
    have published them."""
    from spine import calendar as cal

    weeks = [cal.check_week_start(w) for w in config.get("weeks") or []]
    return [(tier, week) for tier in config["tiers"] for week in weeks
            if cal.is_published(tier, week, config["as_of"])]


@dataclass
class Coverage:
    """A run's partitions split by who holds them (spine.ingest.sources.catalog.for_partition): `served`, each
    with the first configured source that serves it (the run fetches these), and `unheld`, each
    with every configured source's reason not to (the run names these in its summary; none is
    skipped silently). `remedy` says what would let a source serve them."""

    served: dict[Partition, str] = field(default_factory=dict)
    unheld: dict[Partition, list[str]] = field(default_factory=dict)
    remedy: str = ""

    @property
    def parts(self) -> list[Partition]:
        """The partitions the run fetches, in the run's order."""
        return list(self.served)

    def unheld_runs(self) -> list[tuple[str, dt.date, dt.date, int, str]]:
        """(tier, first week, last week, weeks, why) per run of consecutive weeks of a tier that
        no configured source holds for the same reasons; in a run of several weeks each week's
        own date is written <week> (`any_week`)."""
        runs: list[list] = []
        for (tier, week), reasons in sorted(self.unheld.items(),
                                            key=lambda kv: (TIERS.index(kv[0][0]), kv[0][1])):
            why = any_week("; ".join(reasons), week)
            last = runs[-1] if runs else None
            if last and last[0] == tier and last[2] + WEEK == week and last[4] == why:
                last[2], last[3] = week, last[3] + 1
            else:
                runs.append([tier, week, week, 1, why])
        return [(t, a, b, n, why if n > 1 else why.replace("<week>", a.isoformat()))
                for t, a, b, n, why in runs]

    def unheld_lines(self) -> list[str]:
        """One line per run of `unheld_runs`, as a run's summary names them."""
        return [f"not held by any configured source: {t} {a}{f' .. {b}' if n > 1 else ''} "
                f"({n} week{'s' if n > 1 else ''}): {why}"
                for t, a, b, n, why in self.unheld_runs()]


def coverage(config: dict, partitions: list[Partition]) -> Coverage:
    """Which configured source serves each of a run's partitions (`source:`, in preference
    order), and why none serves the others."""
    from spine.ingest.sources import catalog, finra_files

    out = Coverage()
    for tier, week in partitions:
        source, reasons = catalog.for_partition(config, tier, week)
        if source is None:
            out.unheld[(tier, week)] = reasons
        else:
            out.served[(tier, week)] = source.name
    if out.unheld:
        out.remedy = finra_files.remedy(config)
    return out


def any_week(text: str, week_start: dt.date | str) -> str:
    """A reason about one week said of any week: its date written <week>."""
    return text.replace(str(week_start), "<week>")


def fetch_key(config: dict, now: dt.datetime) -> str:
    """The name of this invocation's fetches: `asof-<date>` (one fetch per week and as_of, so a
    rerun the same day fetches nothing), or `at-<time>` for an on-demand re-fetch."""
    if config.get("weeks"):
        return f"at-{now:%Y%m%dT%H%M%S}"
    return f"asof-{config['as_of']}"


def run_key(fetch_key_: str, partitions: list[Partition]) -> str:
    """Names one ingest: its fetch key and the set of partitions it covers."""
    text = ",".join(f"{t}:{w}" for t, w in sorted(partitions))
    return f"{fetch_key_}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def by_week(partitions) -> dict[dt.date, list[str]]:
    """week_start -> tiers, weeks and tiers in order."""
    out: dict[dt.date, list[str]] = {}
    for tier, week in sorted(partitions, key=lambda p: (p[1], TIERS.index(p[0]))):
        out.setdefault(week, []).append(tier)
    return out
