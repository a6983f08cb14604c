"""What a run covers, what the lake holds, and the week arithmetic both share.

The Snakefile calls these once per invocation to compute the plan; the steps call the same
functions, so a window, a trailing week or "which later weeks a revision touches" is written
down exactly once, here. Nothing in this module reads a Parquet file: the lake's state is the
listing of the capture ledger, whose file names say when, what and which capture
(`spine.ingest.ledger`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from spine.derive import registry

DATASET = "finra_otc_weekly"
TIERS = ("T1", "T2", "OTCE")
NMS_TIERS = registry.NMS_TIERS  # the tiers Reg SHO covers (short_volume_weekly)
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

def rolling_window(week: dt.date, weeks: int) -> list[dt.date]:
    """The `weeks` weeks of the window that ends at `week`, oldest first (it included)."""
    return [week - WEEK * k for k in range(weeks - 1, -1, -1)]


def windows_containing(week: dt.date) -> list[dt.date]:
    """The weeks whose derived files can depend on `week`: it and the next REACH_WEEKS - 1."""
    return [week + WEEK * k for k in range(REACH_WEEKS)]


def trailing_weeks(week: dt.date, n: int) -> list[dt.date]:
    """The `n` weeks before `week`, nearest first (the gates' count band)."""
    return [week - WEEK * k for k in range(1, n + 1)]


def regsho_as_of(week: dt.date, as_of: str | dt.date) -> str:
    """The as_of a week's Reg SHO step sees: the run's as_of, but never past the week's Friday.
    Reg SHO days after as_of are not published yet; for any week already out (every week a run
    covers) the value is its Friday, so moving as_of does not refetch old Reg SHO weeks."""
    as_of = dt.date.fromisoformat(str(as_of))
    return min(as_of, week + dt.timedelta(days=4)).isoformat()


# --- what a run covers -------------------------------------------------------------------------

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


def any_week(text: str, week: dt.date | str) -> str:
    """A reason about one week said of any week: its date written <week>."""
    return text.replace(str(week), "<week>")


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


# --- what the lake holds: the ledger, folded ---------------------------------------------------

@dataclass(frozen=True)
class Event:
    """One ledger event, from its file name `<time>-<event>-<capture_id>.parquet`."""

    file: str  # the file name
    at: str  # %Y%m%dT%H%M%S%f, UTC: sorts as time does
    event: str
    capture_id: str

    @classmethod
    def parse(cls, name: str) -> "Event":
        at, event, capture = name.removesuffix(".parquet").split("-", 2)
        return cls(name, at, event, capture)


HOLDING = ("accepted", "pinned", "overridden")  # clean holds the event's capture from then on
LETTING_GO = ("refused", "revoked")  # of the capture clean holds: back to the one before it


@dataclass
class PartitionState:
    """A partition's history folded: the capture clean holds, each capture's gate verdict (the
    ledger event that records it), the captures a weekly report shows, and the revisions."""

    held: str | None = None  # the capture clean holds (last accepted, pinned or overridden)
    held_at: str | None = None
    # the latest event that changed what clean holds (to a capture or to nothing): the
    # derived files of the week and of the windows holding it are made after it
    decided_by: Event | None = None
    verdicts: dict[str, Event] = field(default_factory=dict)  # capture -> latest verdict
    refused_since: list[str] = field(default_factory=list)  # refused after `held` was accepted
    revisions: list[tuple[str, str, Event]] = field(default_factory=list)  # (old, new, verdict)
    overrides: dict[str, Event] = field(default_factory=dict)  # capture -> its live override
    holding: list[str] = field(default_factory=list)  # captures clean has held, latest last

    @property
    def shown(self) -> list[str]:
        """Captures a weekly report shows: clean's, then revisions refused since. Without an
        accepted version: the latest gated capture."""
        if self.held:
            return [self.held] + [c for c in self.refused_since if c != self.held]
        if self.verdicts:
            return [max(self.verdicts.values(), key=lambda e: e.at).capture_id]
        return []

    def apply(self, e: Event) -> None:
        """One event, in time order. A capture's latest verdict counts (`spine regate` records
        a new one); refusing or revoking the capture clean holds makes clean go back to the
        capture it held before (or to nothing)."""
        if e.event in ("accepted", "refused"):
            if e.capture_id not in self.verdicts and self.held not in (None, e.capture_id):
                self.revisions.append((self.held, e.capture_id, e))
            self.verdicts[e.capture_id] = e
        if e.event == "overridden":
            self.overrides[e.capture_id] = e
        if e.event in HOLDING:
            self.holding = [c for c in self.holding if c != e.capture_id] + [e.capture_id]
            self.held, self.held_at, self.refused_since = e.capture_id, e.at, []
            self.decided_by = e
        elif e.event in LETTING_GO:
            if e.event == "revoked":
                self.overrides.pop(e.capture_id, None)
            if e.capture_id == self.held:
                self.holding = [c for c in self.holding if c != e.capture_id]
                self.held = self.holding[-1] if self.holding else None
                self.held_at, self.refused_since = e.at, []
                self.decided_by = e
            elif e.event == "refused" and e.capture_id not in self.refused_since:
                self.refused_since.append(e.capture_id)


    def status(self) -> list[str]:
        """What an operator and a reader are told about the week (the report index, `spine
        status`): held back / overridden / pinned / accepted, then `restated` when a revision
        was let in and `revision held back` when a newer capture was refused since."""
        out = ["held back"] if not self.held else (
            ["overridden"] if self.held in self.overrides else
            ["pinned"] if self.decided_by is not None and self.decided_by.event == "pinned" else
            ["accepted"])
        if any(self.verdicts[new].event == "accepted" or new in self.overrides
               for _, new, _ in self.revisions):
            out.append("restated")
        if self.held and self.refused_since:
            out.append("revision held back")
        return out


def fold(events: list[Event]) -> PartitionState:
    """The state of one partition after `events` (any order; folded oldest first)."""
    s = PartitionState()
    for e in sorted(events, key=lambda e: e.file):
        s.apply(e)
    return s


def ledger_dir(root: str | Path, tier: str, week: dt.date | str) -> Path:
    return Path(root) / "ledger" / DATASET / f"tier={tier}" / f"week_start={week}"


def list_partition(root: str | Path, tier: str, week: dt.date | str) -> list[str]:
    folder = ledger_dir(root, tier, week)
    try:
        return sorted(e.name for e in os.scandir(folder)
                      if e.name.endswith(".parquet") and not e.name.startswith("."))
    except FileNotFoundError:
        return []


def list_ledger(root: str | Path) -> dict[str, list[str]]:
    """Every ledger event file of the weekly dataset, by partition key `<tier>/<week_start>`:
    a directory listing, no file is opened."""
    base = Path(root) / "ledger" / DATASET
    out: dict[str, list[str]] = {}
    try:
        tiers = [e for e in os.scandir(base) if e.is_dir() and e.name.startswith("tier=")]
    except FileNotFoundError:
        return out
    for t in tiers:
        for w in os.scandir(t.path):
            if w.is_dir() and w.name.startswith("week_start="):
                files = sorted(e.name for e in os.scandir(w.path)
                               if e.name.endswith(".parquet") and not e.name.startswith("."))
                if files:
                    out[f"{t.name[5:]}/{w.name[11:]}"] = files
    return out


class LakeState:
    """Every partition's folded state, from a ledger listing (see `list_ledger`)."""

    def __init__(self, listing: dict[str, list[str]]):
        self.listing = listing
        self.parts: dict[Partition, PartitionState] = {}
        for key, files in listing.items():
            tier, week = key.split("/")
            self.parts[(tier, dt.date.fromisoformat(week))] = fold([Event.parse(f) for f in files])

    @classmethod
    def read(cls, root: str | Path) -> "LakeState":
        return cls(list_ledger(root))

    def merged(self, listing: dict[str, list[str]]) -> "LakeState":
        """This state with more events (an ingest's), as if listed together."""
        keys = set(self.listing) | set(listing)
        return LakeState({k: sorted(set(self.listing.get(k, [])) | set(listing.get(k, [])))
                          for k in keys})

    def get(self, tier: str, week: dt.date | str) -> PartitionState:
        return self.parts.get((tier, _date(week))) or PartitionState()

    def held(self, tier: str, week: dt.date | str) -> str | None:
        return self.get(tier, week).held

    def must_hold(self, tier: str, week: dt.date | str) -> str:
        """The capture clean holds; an error if there is none (nothing to derive)."""
        capture = self.held(tier, week)
        if capture is None:
            raise ValueError(f"{tier} week {week} has no accepted version in the ledger; "
                             "nothing to derive")
        return capture

    def verdict_file(self, tier: str, week: dt.date | str, capture: str) -> str:
        """The ledger event that records a capture's gate verdict."""
        return self.get(tier, week).verdicts[capture].file

    def week_view(self, week: dt.date | str, regsho: bool) -> dict[str, dict]:
        """What a weekly report shows, per tier with a verdict that week: the captures (clean's,
        then revisions refused since), whether clean holds a version, the calculations it has
        (spine.derive.registry; those reading Reg SHO only when `regsho`), the ledger event of the
        override that lets clean's capture through (if one does), the weeks of its trend
        charts (TREND_WEEKS that clean holds) and its revisions (old, new capture)."""
        week = _date(week)
        out = {}
        for t in TIERS:
            s = self.get(t, week)
            if s.verdicts:
                override = s.overrides.get(s.held) if s.held else None
                out[t] = {"captures": s.shown, "accepted": bool(s.held),
                          "calcs": [c.name for c in registry.for_tier(t, regsho)]
                          if s.held else [],
                          "override": override.file if override else None,
                          # the weeks its trend charts show, and the week's revisions
                          "history": [w.isoformat() for w in self.window(t, week, TREND_WEEKS)]
                          if s.held else [],
                          "revisions": [[old, new] for old, new, _ in s.revisions]}
        return out

    def revision_window(self, tier: str, week: dt.date | str) -> dict[str, list[str]]:
        """For a revision report: the earlier weeks of the week's rolling window and the later
        weeks whose window contains it, those with a version in clean."""
        week = _date(week)
        return {"earlier": [w.isoformat() for w in self.window(tier, week, TREND_WEEKS)
                            if w != week],
                "later": [w.isoformat() for w in windows_containing(week)[1:]
                          if self.held(tier, w)]}

    def accepted(self) -> list[Partition]:
        """Partitions with a version in clean."""
        return sorted(p for p, s in self.parts.items() if s.held)

    def gated(self) -> list[Partition]:
        """Partitions with at least one gate verdict (a weekly report shows them)."""
        return sorted(p for p, s in self.parts.items() if s.verdicts)

    def week_statuses(self) -> list[list]:
        """[week_start, {tier: PartitionState.status()}] of every week with a gate verdict."""
        return [[w.isoformat(), {t: self.get(t, w).status() for t in tiers}]
                for w, tiers in by_week(self.gated()).items()]

    def decisions(self, tier: str, week: dt.date | str, weeks: int) -> list[tuple[dt.date, str]]:
        """(week, event file) of the ledger events that decided what clean holds in each earlier
        week of the window ending at `week` (held or let go): a change to any of them is newer
        than what the window's calculation made."""
        return [(w, s.decided_by.file) for w in rolling_window(_date(week), weeks)[:-1]
                if (s := self.get(tier, w)).decided_by is not None]

    def window(self, tier: str, week: dt.date | str, weeks: int) -> list[dt.date]:
        """The weeks of the `weeks`-week window ending at `week` that have a version in clean."""
        return [w for w in rolling_window(_date(week), weeks) if self.held(tier, w)]

    def trailing_verdicts(self, partitions: list[Partition], band_weeks: int
                          ) -> list[tuple[str, dt.date, str]]:
        """(tier, week, verdict event file) of the accepted versions of the trailing weeks
        outside `partitions` that their count bands compare with."""
        inside, out = set(partitions), set()
        for tier, week in partitions:
            for prior in trailing_weeks(week, band_weeks):
                if (tier, prior) not in inside and self.held(tier, prior):
                    out.add((tier, prior, self.verdict_file(tier, prior, self.held(tier, prior))))
        return sorted(out)

    def revision_list(self) -> list[list[str]]:
        """Every revision as [tier, week_start, old, new, outcome, ledger time]."""
        return [[t, w.isoformat(), old, new, e.event, e.at]
                for (t, w), s in sorted(self.parts.items()) for old, new, e in s.revisions]

    def revisions(self) -> list[tuple[str, dt.date, str, str]]:
        """(tier, week_start, old, new) of every revision recorded."""
        return sorted({(t, w, old, new) for (t, w), s in self.parts.items()
                       for old, new, _ in s.revisions})


def _date(week: dt.date | str) -> dt.date:
    return week if isinstance(week, dt.date) else dt.date.fromisoformat(week)
