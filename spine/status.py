"""`spine status`: for every (tier, week) the publication calendar says should be in the lake as
of a date, what is there, and for every gap why (in domain words) and the command that fixes it.

Read from the ledger's listing (spine.plan.LakeState: file names only), the fetch receipts'
listing and, for a week held back, its verdict event (the failed checks with their measured
values and limits). With `--ask-source`, the configured source is asked which weeks it has
published (the FINRA API's partitions endpoint), so a publication FINRA missed is seen the day
it is due.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import asdict, dataclass, field

from spine import calendar as cal
from spine import lake, ledger, plan

GRACE_DAYS = 3  # a week still missing this long after its publication date is stale

# what each state means for an operator: True = something to do
NEEDS_OPERATOR = {
    "present": False, "overridden": False, "not yet published": False,
    "published, not fetched yet": False,
    "held back": True, "revision refused": True, "stale": True, "not decided": True,
    "overdue at the source": True,
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


def _fetched(root: str, tier: str, week: dt.date) -> list[str]:
    folder = lake.path(root, "fetch", tier=tier, week_start=week, fetch_key="x").parent
    try:
        return sorted(e.name for e in os.scandir(folder) if e.name.endswith(".json"))
    except FileNotFoundError:
        return []


def _held_by(root: str, tier: str, week: dt.date, event: plan.Event, e: Entry) -> str:
    """The failed checks of a refused capture (into `e.checks`), described."""
    report = ledger.read_event(plan.ledger_dir(root, tier, week) / event.file)["report"]
    failed = [c for c in report["checks"] if c["status"] == "FAIL"]
    e.checks = [c["check"] for c in failed]
    return "; ".join(f"{c['check']} (measured {c['measured']}, limit {c['limit']}): "
                     f"{c['message']}" for c in failed)


def status(config: dict, as_of=None, tiers: list[str] | None = None,
           since: dt.date | str | None = None, grace_days: int = GRACE_DAYS,
           published: dict[str, set[dt.date]] | None = None) -> list[Entry]:
    """One entry per (tier, week), oldest first. `published`: per tier, the weeks the source
    says it has (None: not asked)."""
    root = config["lake_root"]
    as_of = cal.to_date(as_of or config["as_of"], "as_of")
    tiers = tiers or config["tiers"]
    state = plan.LakeState.read(root)
    out = []
    for tier in tiers:
        held_weeks = [w for t, w in state.parts if t == tier]
        first = (cal.check_week_start(since) if since else
                 min(held_weeks) if held_weeks else
                 min(cal.recent_weeks(tier, as_of, config["revision_lookback_weeks"])))
        weeks = cal.published_weeks(tier, as_of, first)
        upcoming = (weeks[-1] if weeks else first - dt.timedelta(days=7)) + dt.timedelta(days=7)
        for week in weeks + [upcoming]:
            out.append(_entry(root, tier, week, as_of, state.get(tier, week), grace_days,
                              None if published is None else published.get(tier)))
    return out


def _entry(root: str, tier: str, week: dt.date, as_of: dt.date, s: plan.PartitionState,
           grace_days: int, source_has: set | None) -> Entry:
    due = cal.publication_date(tier, week)
    refetch = f"snakemake --cores 2 refetch --config 'weeks=[{week}]' 'tiers=[{tier}]'"
    e = Entry(tier, week.isoformat(), "", "", published=due.isoformat())
    if due > as_of:
        e.state, e.detail = "not yet published", f"FINRA publishes it on {due}"
        return e
    if s.held:
        if s.held in s.overrides:
            e.state = "overridden"
            e.detail = (f"clean holds {s.held}, let through by an override on "
                        f"{_when(s.overrides[s.held].at)} (spine override --revoke takes it back)")
        elif s.refused_since:
            refused = s.refused_since[-1]
            e.state = "revision refused"
            e.detail = (f"clean keeps {s.held}; a newer capture {refused} was held back: "
                        + _held_by(root, tier, week, s.verdicts[refused], e))
            e.fix = ("workflows/incident/RESOLVE_QUALITY_GATE.md: if the restatement is real, "
                     f"spine override --tier {tier} --week-start {week} --check ... --reason "
                     "'...'")
        else:
            e.state, e.detail = "present", f"clean holds {s.held}"
        return e
    if s.verdicts:
        latest = max(s.verdicts.values(), key=lambda v: v.at)
        e.state = "held back"
        e.detail = (f"fetched, capture {latest.capture_id} held back by "
                    + _held_by(root, tier, week, latest, e))
        e.fix = (f"workflows/incident/RESOLVE_QUALITY_GATE.md: {refetch} once FINRA has fixed "
                 f"it, or spine override --tier {tier} --week-start {week} --check ... "
                 "--reason '...'")
        return e
    if _fetched(root, tier, week):
        e.state = "not decided"
        e.detail = "fetched, but no gate verdict recorded (a run interrupted before its gates)"
        e.fix = refetch
        return e
    late = (as_of - due).days
    fix = f"snakemake --cores 2 backfill --config start={week} end={week} 'tiers=[{tier}]'"
    if source_has is not None and week not in source_has:
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
        e.fix = "snakemake --cores 2"
    return e


def _when(at: str) -> str:
    return dt.datetime.strptime(at, "%Y%m%dT%H%M%S%f").strftime("%Y-%m-%d %H:%M UTC")


def source_weeks(config: dict, tiers: list[str]) -> dict[str, set[dt.date]] | None:
    """The weeks the configured source says it has published, per tier (None: it cannot say)."""
    from spine import sources

    source = sources.get(config["source"], config)
    if not hasattr(source, "available"):
        return None
    have: dict[str, set[dt.date]] = {t: set() for t in tiers}
    for name in ("weeklySummary", "weeklySummaryHistoric"):
        for tier, week in source.available(name):
            if tier in have:
                have[tier].add(dt.date.fromisoformat(week))
    return have


def render(entries: list[Entry], as_of) -> str:
    lines = [f"Market Spine status as of {as_of}"]
    for tier in dict.fromkeys(e.tier for e in entries):
        mine = [e for e in entries if e.tier == tier]
        counts = {}
        for e in mine:
            counts[e.state] = counts.get(e.state, 0) + 1
        lines.append(f"\n{tier}: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
        for e in mine:
            lines.append(f"  {e.week_start}  {e.state:<26} {e.detail}")
            if e.fix:
                lines.append(f"  {'':10}  {'':<26} fix: {e.fix}")
    need = [e for e in entries if e.needs_operator]
    lines.append(f"\n{len(need)} week(s) need an operator" if need else
                 "\nNothing needs an operator.")
    return "\n".join(lines) + "\n"


def first(entries: list[Entry]) -> str | None:
    """The first week that needs an operator, as shell assignments (`eval "$(spine status
    --first)"`): TIER, WEEK, STATE, CHECKS (the failed checks, for a week held back) and FIX.
    For weeks missing from the lake, FIX fetches every missing week of that tier at once."""
    import shlex

    need = [e for e in entries if e.needs_operator]
    if not need:
        return None
    e = need[0]
    fix = e.fix
    if e.state == "stale":
        gap = [x.week_start for x in need if x.tier == e.tier and x.state == "stale"]
        fix = (f"snakemake --cores 2 backfill --config start={gap[0]} end={gap[-1]} "
               f"'tiers=[{e.tier}]'")
    values = {"TIER": e.tier, "WEEK": e.week_start, "STATE": e.state,
              "CHECKS": ",".join(e.checks), "FIX": fix}
    return " ".join(f"{k}={shlex.quote(v)}" for k, v in values.items()) + "\n"


def as_json(entries: list[Entry]) -> list[dict]:
    return [asdict(e) | {"needs_operator": e.needs_operator} for e in entries]
