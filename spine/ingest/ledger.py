"""The capture ledger's state: its events, folded into what the lake holds. No pandas.

The ledger is an append-only record of every fetch and every change of what clean holds: one
small Parquet file per event under `<root>/ledger/<dataset>/<partition keys>/`, named
`<time>-<event>-<capture_id>.parquet`, written once and never rewritten (`spine.ingest.history`
writes them). Events:

- `captured`    a fetch brought content not seen before: a new raw capture
- `seen_again`  a fetch brought content identical to a stored capture: nothing new stored
- `accepted`    a capture passed its gates and clean advanced to it (`previous_capture` says
                from what: a revision when there was one)
- `refused`     a capture failed its gates; clean stayed where it was
- `pinned`      an operator pinned clean to a capture (`spine pin`), with a reason
- `overridden`  an operator let a refused capture through (`spine override`): `reason`, and in
                `report` who, the checks overridden and the gate report they overrode
- `revoked`     an override taken back (`spine override --revoke`): clean goes back to the
                capture it held before

A capture's latest `accepted`/`refused` is its verdict: `spine regate` decides a capture again
under the current gate settings and records a new one. Refusing (or revoking) the capture clean
holds sends clean back to the capture it held before.

This module is the one place the ledger's state is read: `LakeState.read(root)` lists the
ledger (directory names and file names only), and `PartitionState.apply` folds a partition's
events in time order (the one rule). The plan, the gate, status, verify and the reports are
handed a `LakeState`; none lists the ledger on its own. An event file is opened only for the
gate report it carries (`LakeState.report`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from spine.derive import registry
from spine.plan import TREND_WEEKS, Partition, by_week, rolling_window, trailing_weeks, \
    windows_containing
from spine.vocabulary import DATASET_WEEKLY, TIERS

EVENTS = ("captured", "seen_again", "accepted", "refused", "pinned", "overridden", "revoked")


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


def ledger_dir(root: str | Path, tier: str, week_start: dt.date | str) -> Path:
    return Path(root) / "ledger" / DATASET_WEEKLY / f"tier={tier}" / f"week_start={week_start}"


def list_partition(root: str | Path, tier: str, week_start: dt.date | str) -> list[str]:
    folder = ledger_dir(root, tier, week_start)
    try:
        return sorted(e.name for e in os.scandir(folder)
                      if e.name.endswith(".parquet") and not e.name.startswith("."))
    except FileNotFoundError:
        return []


def list_ledger(root: str | Path) -> dict[str, list[str]]:
    """Every ledger event file of the weekly dataset, by partition key `<tier>/<week_start>`:
    a directory listing, no file is opened."""
    base = Path(root) / "ledger" / DATASET_WEEKLY
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
    """Every partition's folded state, from a ledger listing (see `list_ledger`). Read once
    (`read`) and handed down; a decision made meanwhile is added to it (`add`), so nothing
    lists the ledger twice."""

    def __init__(self, listing: dict[str, list[str]], root: str | Path | None = None):
        self.listing = listing
        self.root = root
        self.parts: dict[Partition, PartitionState] = {}
        self._reports: dict[str, dict] = {}
        for key, files in listing.items():
            tier, week = key.split("/")
            self.parts[(tier, dt.date.fromisoformat(week))] = fold([Event.parse(f) for f in files])

    @classmethod
    def read(cls, root: str | Path) -> "LakeState":
        return cls(list_ledger(root), root)

    def merged(self, listing: dict[str, list[str]]) -> "LakeState":
        """This state with more events (an ingest's), as if listed together."""
        keys = set(self.listing) | set(listing)
        return LakeState({k: sorted(set(self.listing.get(k, [])) | set(listing.get(k, [])))
                          for k in keys}, self.root)

    def add(self, tier: str, week_start: dt.date | str, event_file: str) -> PartitionState:
        """An event just recorded (its file name), folded in as a listing would have it."""
        key = f"{tier}/{_date(week_start)}"
        self.listing[key] = sorted(self.listing.get(key, []) + [event_file])
        part = self.get(tier, week_start)
        part.apply(Event.parse(event_file))
        self.parts[(tier, _date(week_start))] = part
        return part

    def report(self, tier: str, week_start: dt.date | str, capture: str) -> dict | None:
        """The gate report recorded with a capture's verdict (None if it was never gated): the
        one file of the partition this opens, once."""
        event = self.get(tier, week_start).verdicts.get(capture)
        if event is None:
            return None
        if event.file not in self._reports:
            path = ledger_dir(self.root, tier, _date(week_start)) / event.file
            self._reports[event.file] = read_event(path)["report"]
        return self._reports[event.file]

    def listed(self, tier: str, week_start: dt.date | str) -> list[str]:
        """The partition's event files, as listed (and added since)."""
        return self.listing.get(f"{tier}/{_date(week_start)}", [])

    def get(self, tier: str, week_start: dt.date | str) -> PartitionState:
        return self.parts.get((tier, _date(week_start))) or PartitionState()

    def held(self, tier: str, week_start: dt.date | str) -> str | None:
        return self.get(tier, week_start).held

    def must_hold(self, tier: str, week_start: dt.date | str) -> str:
        """The capture clean holds; an error if there is none (nothing to derive)."""
        capture = self.held(tier, week_start)
        if capture is None:
            raise ValueError(f"{tier} week {week_start} has no accepted version in the ledger; "
                             "nothing to derive")
        return capture

    def verdict_file(self, tier: str, week_start: dt.date | str, capture: str) -> str:
        """The ledger event that records a capture's gate verdict."""
        return self.get(tier, week_start).verdicts[capture].file

    def week_view(self, week_start: dt.date | str, regsho: bool) -> dict[str, dict]:
        """What a weekly report shows, per tier with a verdict that week: the captures (clean's,
        then revisions refused since), whether clean holds a version, the calculations it has
        (spine.derive.registry; those reading Reg SHO only when `regsho`), the ledger event of the
        override that lets clean's capture through (if one does), the weeks of its trend
        charts (TREND_WEEKS that clean holds) and its revisions (old, new capture)."""
        week_start = _date(week_start)
        out = {}
        for t in TIERS:
            s = self.get(t, week_start)
            if s.verdicts:
                override = s.overrides.get(s.held) if s.held else None
                out[t] = {"captures": s.shown, "accepted": bool(s.held),
                          "calcs": [c.name for c in registry.for_tier(t, regsho)]
                          if s.held else [],
                          "override": override.file if override else None,
                          # the weeks its trend charts show, and the week's revisions
                          "history": [w.isoformat() for w in self.window(t, week_start, TREND_WEEKS)]
                          if s.held else [],
                          "revisions": [[old, new] for old, new, _ in s.revisions]}
        return out

    def revision_window(self, tier: str, week_start: dt.date | str) -> dict[str, list[str]]:
        """For a revision report: the earlier weeks of the week's rolling window and the later
        weeks whose window contains it, those with a version in clean."""
        week_start = _date(week_start)
        return {"earlier": [w.isoformat() for w in self.window(tier, week_start, TREND_WEEKS)
                            if w != week_start],
                "later": [w.isoformat() for w in windows_containing(week_start)[1:]
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

    def decisions(self, tier: str, week_start: dt.date | str, weeks: int) -> list[tuple[dt.date, str]]:
        """(week, event file) of the ledger events that decided what clean holds in each earlier
        week of the window ending at `week` (held or let go): a change to any of them is newer
        than what the window's calculation made."""
        return [(w, s.decided_by.file) for w in rolling_window(_date(week_start), weeks)[:-1]
                if (s := self.get(tier, w)).decided_by is not None]

    def window(self, tier: str, week_start: dt.date | str, weeks: int) -> list[dt.date]:
        """The weeks of the `weeks`-week window ending at `week` that have a version in clean."""
        return [w for w in rolling_window(_date(week_start), weeks) if self.held(tier, w)]

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


def read_event(path: str | Path) -> dict:
    """One event file as a dict (`report` and `request` decoded)."""
    row = pq.read_table(path).to_pylist()[0]
    for col in ("request", "report"):
        if isinstance(row.get(col), str):
            row[col] = json.loads(row[col])
    return row


def _date(week_start: dt.date | str) -> dt.date:
    return week_start if isinstance(week_start, dt.date) else dt.date.fromisoformat(week_start)
