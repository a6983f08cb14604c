"""`spine status`: for every (tier, week) the publication calendar says should be in the lake as
of a date, what is there, and for every gap why (in domain words) and the command that fixes it.

Read from the ledger's listing (spine.ingest.ledger.LakeState: file names only), the fetch receipts'
listing and, for a week held back, its verdict event (the failed checks with their measured
values and limits). A week the lake lacks that no configured source serves (older than FINRA's
API holds, no download file: spine.ingest.sources.catalog.for_partition) is said to be so, with what would
serve it. With `--ask-source`, the configured sources are asked which weeks they have published
(the FINRA API's partitions endpoint), so a publication FINRA missed is seen the day it is due.
"""

from __future__ import annotations

import datetime as dt
import os
import shlex
from dataclasses import asdict, dataclass, field

from spine import calendar as cal
from spine import config as config_
from spine import lake, plan
from spine.ingest import ledger, reconcile, sources
from spine.ingest.sources import HISTORY_RUNBOOK, catalog, finra_files

GRACE_DAYS = 3  # a week still missing this long after its publication date is stale

# what each state means for an operator: True = something to do
NEEDS_OPERATOR = {
    "present": False, "overridden": False, "pinned": False, "not yet published": False,
    "published, not fetched yet": False,
    "held back": True, "revision refused": True, "stale": True, "not decided": True,
    "overdue at the source": True, "no source holds it": True,
}


@dataclass
class Entry:
    tier: str
    week_start: str
    state: str
    detail: str
    fix: str = ""
    published: str = ""
    checks: list[str] = field(default_factory=list)  # the failed checks of a capture held back

    @property
    def needs_operator(self) -> bool:
        return NEEDS_OPERATOR[self.state]


def _fetched(root: str, tier: str, week_start: dt.date) -> list[str]:
    folder = lake.path(root, "fetch", tier=tier, week_start=week_start, fetch_key="x").parent
    try:
        return sorted(e.name for e in os.scandir(folder) if e.name.endswith(".json"))
    except FileNotFoundError:
        return []


def _held_by(report: dict, e: Entry) -> str:
    """The failed checks of a refused capture's gate report (into `e.checks`), described."""
    failed = [c for c in report["checks"] if c["status"] == "FAIL"]
    e.checks = [c["check"] for c in failed]
    return "; ".join(f"{c['check']} (measured {reconcile.plain(c['measured'])}, limit "
                     f"{reconcile.plain(c['limit'])}): "
                     f"{c['message']}" for c in failed)


def scope(config: dict, tiers: list[str] | None = None) -> tuple[list[str], list[str]]:
    """(the tiers status speaks of, the configured tiers this lake has never held). What the
    lake was asked to hold: the tiers named (`--tier`), else the configured tiers its ledger
    has; a lake with no ledger yet, every configured tier."""
    if tiers:
        return list(tiers), []
    held = {t for t, _ in ledger.LakeState.read(config["lake_root"]).parts}
    if not held:
        return list(config["tiers"]), []
    return ([t for t in config["tiers"] if t in held],
            [t for t in config["tiers"] if t not in held])


def status(config: dict, as_of=None, tiers: list[str] | None = None,
           since: dt.date | str | None = None, grace_days: int = GRACE_DAYS,
           published: dict[str, set[dt.date]] | None = None) -> list[Entry]:
    """One entry per (tier, week), oldest first, for the tiers of `scope`. `published`: per
    tier, the weeks the source says it has (None: not asked)."""
    root = config["lake_root"]
    as_of = cal.to_date(as_of or config["as_of"], "as_of")
    tiers, _ = scope(config, tiers)
    state = ledger.LakeState.read(root)
    out = []
    for tier in tiers:
        held_weeks = [w for t, w in state.parts if t == tier]
        recent = set(cal.recent_weeks(tier, as_of, config["revision_lookback_weeks"]))
        first = (cal.check_week_start(since) if since else
                 min(held_weeks) if held_weeks else min(recent))
        weeks = cal.published_weeks(tier, as_of, first)
        upcoming = (weeks[-1] if weeks else first - dt.timedelta(days=7)) + dt.timedelta(days=7)
        for week in weeks + [upcoming]:
            out.append(_entry(root, state, tier, week, as_of, grace_days,
                              None if published is None else published.get(tier),
                              week in recent, None if week == upcoming
                              or state.get(tier, week).held or state.get(tier, week).verdicts
                              else _unheld(config, tier, week, as_of)))
    return out


def _unheld(config: dict, tier: str, week_start: dt.date, as_of: dt.date) -> tuple[str, str] | None:
    """(why, what would serve it) when no configured source serves the week; None when one does."""
    source, reasons = catalog.for_partition(config, tier, week_start, as_of)
    return None if source else ("; ".join(reasons), finra_files.remedy(config))


def commands(root: str) -> tuple[str, str]:
    """How a printed command names this lake: (` lake_root=...` for snakemake's --config,
    ` --lake-root ...` for spine), empty for the configured default lake."""
    try:
        default = config_.load()["lake_root"]
    except Exception:  # noqa: BLE001 - no readable default config: always name the lake
        default = None
    if default is not None and os.path.abspath(root) == os.path.abspath(default):
        return "", ""
    return f" lake_root={root}", f" --lake-root {root}"


def _entry(root: str, state: ledger.LakeState, tier: str, week_start: dt.date, as_of: dt.date,
           grace_days: int, source_has: set | None, recent: bool = False,
           unheld: tuple[str, str] | None = None) -> Entry:
    due = cal.publication_date(tier, week_start)
    s = state.get(tier, week_start)
    snake, spine = commands(root)
    refetch = f"snakemake --cores 2 refetch --config 'weeks=[{week_start}]' 'tiers=[{tier}]'{snake}"
    e = Entry(tier, week_start.isoformat(), "", "", published=due.isoformat())
    if due > as_of:
        e.state, e.detail = "not yet published", f"FINRA publishes it on {due}"
        return e
    if s.held:
        if s.held in s.overrides:
            e.state = "overridden"
            e.detail = (f"clean holds {s.held}, let through by an override on "
                        f"{_when(s.overrides[s.held].at)} (spine override --revoke --tier "
                        f"{tier} --week-start {week_start} --reason '...'{spine} takes it back)")
        elif s.status()[0] == "pinned":
            e.state = "pinned"
            e.detail = (f"clean holds {s.held}, pinned on {_when(s.decided_by.at)} (spine pin "
                        f"--tier {tier} --week-start {week_start} --capture ... --reason "
                        f"'...'{spine} moves it)")
        elif s.refused_since:
            refused = s.refused_since[-1]
            e.state = "revision refused"
            e.detail = (f"clean keeps {s.held}; a newer capture {refused} was held back: "
                        + _held_by(state.report(tier, week_start, refused), e))
            e.fix = ("workflows/incident/RESOLVE_QUALITY_GATE.md: if the restatement is real, "
                     f"spine override --tier {tier} --week-start {week_start} --check ... --reason "
                     f"'...'{spine}")
        else:
            e.state, e.detail = "present", f"clean holds {s.held}"
        return e
    if s.verdicts:
        latest = max(s.verdicts.values(), key=lambda v: v.at)
        e.state = "held back"
        e.detail = (f"fetched, capture {latest.capture_id} held back by "
                    + _held_by(state.report(tier, week_start, latest.capture_id), e))
        e.fix = (f"workflows/incident/RESOLVE_QUALITY_GATE.md: {refetch} once FINRA has fixed "
                 f"it, or spine override --tier {tier} --week-start {week_start} --check ... "
                 f"--reason '...'{spine}")
        return e
    if _fetched(root, tier, week_start):
        e.state = "not decided"
        e.detail = "fetched, but no gate verdict recorded (a run interrupted before its gates)"
        e.fix = refetch
        return e
    late = (as_of - due).days
    # within the weekly update's window it is what fetches the week; older weeks, a backfill
    backfill = (f"snakemake --cores 2 backfill --config start={week_start} end={week_start} "
                f"'tiers=[{tier}]'{snake}")
    fix = "snakemake --cores 2" + (f" --config{snake}" if snake else "") if recent else backfill
    if unheld:
        e.state, e.detail = "no source holds it", unheld[0]
        e.fix = f"{unheld[1]}, then {backfill} ({HISTORY_RUNBOOK})"
    elif source_has is not None and week_start not in source_has:
        e.state = "overdue at the source"
        e.detail = (f"due {due} ({late} day(s) ago) and FINRA has not published it "
                    "(the source's list of partitions)")
        e.fix = "nothing to fetch yet: check FINRA's status page, then " + fix
    elif late > grace_days:
        e.state = "stale"
        e.detail = (f"published {due} ({late} days ago, grace {grace_days}), never fetched "
                    "into this lake")
        e.fix = fix
    else:
        e.state = "published, not fetched yet"
        e.detail = f"published {due}; the next weekly update fetches it"
        e.fix = "snakemake --cores 2" + (f" --config{snake}" if snake else "")
    return e


def _when(at: str) -> str:
    return dt.datetime.strptime(at, "%Y%m%dT%H%M%S%f").strftime("%Y-%m-%d %H:%M UTC")


def source_weeks(config: dict, tiers: list[str]) -> dict[str, set[dt.date]] | None:
    """The weeks the configured sources say they have published, per tier (None: none of them
    can say)."""
    asked = [s for s in (catalog.get(name, config) for name in sources.configured(config))
             if hasattr(s, "available")]
    if not asked:
        return None
    have: dict[str, set[dt.date]] = {t: set() for t in tiers}
    for source in asked:
        for name in ("weeklySummary", "weeklySummaryHistoric"):
            for tier, week in source.available(name):
                if tier in have:
                    have[tier].add(dt.date.fromisoformat(week))
    return have


# runs of these: one line
GROUPED = ("present", "stale", "published, not fetched yet", "no source holds it")


def groups(entries: list[Entry]) -> list[list[Entry]]:
    """Consecutive weeks of one tier in one of the GROUPED states (stale ones with the same
    kind of fix), as runs; every other week alone."""
    out: list[list[Entry]] = []
    for e in entries:
        last = out[-1][-1] if out else None
        if (last is not None and e.state in GROUPED and last.state == e.state
                and last.tier == e.tier and _kind(last.fix) == _kind(e.fix)
                and dt.date.fromisoformat(e.week_start)
                - dt.date.fromisoformat(last.week_start) == dt.timedelta(days=7)):
            out[-1].append(e)
        else:
            out.append([e])
    return out


def _kind(fix: str) -> str:
    return "backfill" if " backfill " in fix else fix


def group_fix(run: list[Entry]) -> str:
    """One command for a run of weeks: a backfill of the run's range, else the week's fix."""
    fix = run[0].fix
    if len(run) > 1 and _kind(fix) == "backfill":
        fix = fix.replace(f"start={run[0].week_start} end={run[0].week_start}",
                          f"start={run[0].week_start} end={run[-1].week_start}")
    return fix


def render(entries: list[Entry], as_of, absent: list[str] | None = None,
           root: str | None = None) -> str:
    """The human report: per tier, its counts and its weeks, runs of alike weeks on one line
    with one command; the overrides and pins in force; the tiers configured but never held."""
    lines = [f"Market Spine status as of {as_of}" + (f" ({root})" if root else "")]
    for tier in dict.fromkeys(e.tier for e in entries):
        mine = [e for e in entries if e.tier == tier]
        counts = {}
        for e in mine:
            counts[e.state] = counts.get(e.state, 0) + 1
        lines.append(f"\n{tier}: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
        for run in groups(mine):
            e = run[0]
            if len(run) == 1:
                lines.append(f"  {e.week_start}  {e.state:<26} {e.detail}")
            else:
                what = {"present": "clean holds each week's accepted capture",
                        "stale": "published, never fetched into this lake",
                        "published, not fetched yet": "the next weekly update fetches them",
                        "no source holds it": plan.any_week(e.detail, e.week_start)}
                lines.append(f"  {e.week_start}  {e.state:<26} to {run[-1].week_start} "
                             f"({len(run)} weeks): {what[e.state]}")
            if e.fix:
                lines.append(f"  {'':10}  {'':<26} fix: {group_fix(run)}")
    in_force = [e for e in entries if e.state in ("overridden", "pinned")]
    if in_force:
        lines.append("\nIn force: " + "; ".join(f"{e.tier} {e.week_start} {e.state}"
                                                for e in in_force))
    if absent:
        lines.append(f"\nConfigured but never fetched into this lake: {', '.join(absent)} "
                     "(the weekly update fetches their recent weeks; `--tier` shows them)")
    need = [e for e in entries if e.needs_operator]
    commands_ = len({group_fix(r) for r in groups(need)})
    lines.append(f"\n{len(need)} week(s) need an operator ({commands_} command(s) above)" if need
                 else "\nNothing needs an operator.")
    return "\n".join(lines) + "\n"


def first(entries: list[Entry]) -> str | None:
    """The first week that needs an operator, as shell assignments (`eval "$(spine status
    --first)"`): TIER, WEEK, STATE, CHECKS (the failed checks, for a week held back) and FIX.
    For a run of consecutive missing weeks, FIX fetches the whole run at once."""
    need = [e for e in entries if e.needs_operator]
    if not need:
        return None
    run = groups(need)[0]
    e, fix = run[0], group_fix(run)
    values = {"TIER": e.tier, "WEEK": e.week_start, "STATE": e.state,
              "CHECKS": ",".join(e.checks), "FIX": fix}
    return " ".join(f"{k}={shlex.quote(v)}" for k, v in values.items()) + "\n"


def as_json(entries: list[Entry]) -> list[dict]:
    return [asdict(e) | {"needs_operator": e.needs_operator} for e in entries]
