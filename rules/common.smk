# Shared by both stages: paths, the notebook rule template, the lake state the derive stage
# plans from, and the run's targets.

import fcntl
import json
import os
import sys
from pathlib import Path

from spine import lake, steps, vocabulary, warm
from spine.lake import stamp, verify
from spine.derive import registry


def L(kind, **keys):
    """A layout path (spine.lake.LAYOUT) under the lake root, as a Snakemake pattern."""
    return str(lake.path(ROOT, kind, **keys))


def J(step, **keys):
    """A job's executed notebook, log and benchmark record."""
    job = lake.job(step, **keys)
    return {"notebook": L("executed", step=step, job=job), "stderr": L("log", step=step, job=job),
            "bench": L("bench", step=step, job=job)}


wildcard_constraints:
    tier="|".join(vocabulary.TIERS),
    nms_tier="|".join(vocabulary.NMS_TIERS),
    week_start=r"\d{4}-\d{2}-\d{2}",
    calc="|".join(registry.names()),
    symbol=r"[^/]+",
    capture_id=r"[0-9a-f]{16}",
    old=r"[0-9a-f]{16}",
    new=r"[0-9a-f]{16}",
    fetch_key=r"(asof|at)-[0-9A-Za-z-]+",
    fingerprint=r"[0-9a-f]{16}",
    run_key=r"[0-9A-Za-z-]+",
    run_kind="|".join(vocabulary.RUN_KINDS),


os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
# the code version and requirements.lock's hash every manifest record carries, computed once
# for all the run's jobs (spine/lake/stamp.py)
os.environ.update(stamp.environment())


# --- what the derive stage plans from ----------------------------------------------------------

INGEST_TARGETS = set(vocabulary.RUN_KINDS)
_STATE = {}


def run_asked():
    """Whether one of the run targets was asked for (or none, the default `weekly`). `reports`
    and file targets plan from the lake as it is, and so does a Snakemake process that executes
    one job (`--target-jobs`, as on a cluster): it starts after the ingest, so the ledger it
    lists at its start already holds the verdicts."""
    settings = workflow.dag_settings
    if settings is not None and settings.target_jobs:
        return False
    targets = set(settings.targets) if settings is not None else set()
    return not targets or bool(targets & INGEST_TARGETS)


def ingesting():
    """Whether this invocation runs the ingest: a run target with partitions a source serves."""
    return bool(PARTS) and run_asked()


def state():
    """The lake the derive stage plans from: the ledger as listed at the start, plus what this
    run's ingest decided (its checkpoint record lists the ledger of every partition it gated)."""
    if not ingesting():
        return STATE0
    record = checkpoints.gate.get(run_key=RUN_KEY).output.record
    key = (record, os.stat(record).st_mtime_ns)
    if key not in _STATE:
        _STATE.clear()
        with open(record) as handle:
            _STATE[key] = STATE0.merged(json.load(handle)["ledger"])
    return _STATE[key]


def ingest_record():
    state()  # after the checkpoint
    with open(checkpoints.gate.get(run_key=RUN_KEY).output.record) as handle:
        return json.load(handle)


def calc_files(tier, week):
    """What a held partition has: clean and each of its calculations (spine.derive.registry)."""
    return [L("clean", tier=tier, week_start=week)] + [
        L("calc", calc=c.name, tier=tier, week_start=week)
        for c in registry.for_tier(tier, CFG["regsho"]["enabled"])]


def calc_windows(name, tier, week):
    """Per input of a calculation, the weeks it reads: its window's weeks that clean holds."""
    return {i.name: [w.isoformat() for w in state().window(tier, week, i.weeks)]
            for i in registry.get(name).inputs if i.name not in registry.SOURCES}


def calc_inputs(name, tier, week):
    """Every file a calculation reads, as the state names them."""
    files = []
    for i in registry.get(name).inputs:
        if i.name == "clean":
            files.append(L("clean", tier=tier, week_start=week))
        elif i.name == "regsho":
            files.append(L("regsho_week", week_start=week))
    for calc, weeks in calc_windows(name, tier, week).items():
        files += [L("calc", calc=calc, tier=tier, week_start=w) for w in weeks]
    # what decided each earlier week of its windows: a week let go (revoked, refused by a
    # regate) leaves a newer event here, so the window is recomputed without it
    longest = max([i.weeks for i in registry.get(name).inputs if i.name not in registry.SOURCES],
                  default=1)
    files += [L("ledger_event", tier=tier, week_start=w, event_file=f)
              for w, f in state().decisions(tier, week, longest)]
    return files


def week_inputs(week):
    """What a weekly report reads: per tier, the gate reports of the captures it shows and the
    calculations of the version clean holds."""
    files = []
    for tier, v in state().week_view(week, CFG["regsho"]["enabled"]).items():
        files += [L("gate", tier=tier, week_start=week, capture_id=c) for c in v["captures"]]
        if v["override"]:
            files.append(L("ledger_event", tier=tier, week_start=week, event_file=v["override"]))
        files += [L("calc", calc=name, tier=tier, week_start=week) for name in v["calcs"]]
        files += [L("calc", calc=name, tier=tier, week_start=w) for w in v["history"]
                  for name in plan.HISTORY_CALCS]
    return files


def derive_targets(st, parts):
    """Every derived file of `parts` (clean, calculations, gate reports, weekly reports), every
    revision report and the revision index, as the state `st` says they should be; and the
    sweep of those it no longer accounts for (rule `retract`)."""
    files = [L("retracted", fingerprint=verify.held_fingerprint(st, CFG["regsho"]["enabled"]))]
    for tier, week in parts:
        s = st.get(tier, week)
        files += [L("gate", tier=tier, week_start=week, capture_id=c) for c in s.shown]
        if s.held:
            files += calc_files(tier, week)
    files += [L("weekly_report", week_start=w) for w in plan.by_week(parts)]
    files += [L("revision_report", tier=t, week_start=w, old=o, new=n)
              for t, w, o, n in st.revisions()]
    files += [L("revision_index"), L("report_index")]
    return files


# --- symbol reports and the index of every report ----------------------------------------------

def symbol_view(tier):
    """A symbol report's plan: the weeks clean holds for the tier, and its revisions."""
    st = state()
    return {"weeks": [w.isoformat() for t, w in st.accepted() if t == tier],
            "revisions": [[w.isoformat(), old, new] for t, w, old, new in st.revisions()
                          if t == tier]}


def symbol_inputs(tier, symbol):
    """Every file a symbol report reads: clean, symbol_week, symbol_trend (and, for an NMS
    tier with Reg SHO, short_volume_weekly) of each held week; both captures of each revision."""
    view = symbol_view(tier)
    names = ["symbol_week", "symbol_trend"]
    if CFG["regsho"]["enabled"] and tier in vocabulary.NMS_TIERS:
        names.append("short_volume_weekly")
    files = [L("clean", tier=tier, week_start=w) for w in view["weeks"]]
    files += [L("calc", calc=n, tier=tier, week_start=w) for w in view["weeks"] for n in names]
    files += [L("capture", tier=tier, week_start=w, capture_id=c)
              for w, old, new in view["revisions"] for c in (old, new)]
    return files


def symbol_reports():
    """(tier, symbol) of every symbol report: those the lake has, and the one config asks for."""
    import glob

    found = {(Path(p).parent.name.removeprefix("tier="), Path(p).stem.removeprefix("symbol="))
             for p in glob.glob(L("symbol_report", tier="*", symbol="*"))}
    if CFG["symbol"]:
        found.add((CFG["tier"], CFG["symbol"]))
    return sorted(found)


def index_listing():
    """What the report index lists: per week, each gated tier's status (spine.reports.index's
    INDEX_STATUS says what each means), every revision and every symbol report. It is passed
    on a command line: facts, never file paths."""
    st = state()
    return {"weekly": st.week_statuses(), "revisions": st.revision_list(),
            "symbols": [list(s) for s in symbol_reports()]}


def index_reports():
    st = state()
    return ([L("weekly_report", week_start=w) for w in plan.by_week(st.gated())]
            + [L("revision_report", tier=t, week_start=w, old=o, new=n)
               for t, w, o, n in st.revisions()]
            + [L("symbol_report", tier=t, symbol=s) for t, s in symbol_reports()])


def symbol_targets():
    if not CFG["symbol"]:
        raise WorkflowError("`symbol` needs config keys 'symbol' and 'tier': snakemake --cores 2 "
                            "symbol --config symbol=AAPL tier=T1")
    if not any(t == CFG["tier"] for t, _ in STATE0.accepted()):
        raise WorkflowError(f"the lake {ROOT} holds no accepted {CFG['tier']} week yet: run the "
                            "weekly update or a backfill first")
    return [L("symbol_report", tier=CFG["tier"], symbol=CFG["symbol"]), L("report_index")]


def run_targets(name):
    """A run's targets: its ingest, then what it touches, then its gate summary."""
    if name != RUN_KIND:
        hint = {"backfill": "config key 'start' (snakemake --cores 2 backfill --config "
                            "start=2025-01-06 end=2025-06-30)",
                "refetch": "config key 'weeks' (snakemake --cores 2 refetch --config "
                           "'weeks=[2025-06-02]')",
                "weekly": "neither 'start' nor 'weeks' (they select backfill and refetch)"}
        raise WorkflowError(f"`{name}` needs {hint[name]}; this config describes a {RUN_KIND}")
    if not PARTS:
        return []
    # every partition the ledger holds, not only those the run fetched: a week the ledger
    # changed by hand since (a pin, an override, a regate) and the windows that read it are
    # brought in line by any run (what is current costs a look at its files)
    st = state()
    return ([L("ingest", run_key=RUN_KEY)] + derive_targets(st, st.gated())
            + [L("gate_summary", run_kind=RUN_KIND)])


# --- one run at a time per lake ----------------------------------------------------------------

onstart:
    # An advisory lock the kernel releases when this process ends, however it ends (kill -9
    # included), so the next run never finds a stale lock; Snakemake's own directory lock is
    # off in the profile for that reason (profiles/default/config.yaml).
    os.makedirs(ROOT, exist_ok=True)
    _LOCK = open(os.path.join(ROOT, lake.RUN_LOCK), "w")
    try:
        fcntl.flock(_LOCK, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise WorkflowError(f"another snakemake run is using the lake {ROOT}; wait for it to "
                            "finish (a killed run releases the lake by itself)")
    workflow._spine_lock = _LOCK
    # This run's warm runner (spine/warm.py): the steps' commands hand their work to one server
    # that imported pandas, pyarrow, pandera and the notebook engine once and forks per step.
    # On a cluster (jobs run elsewhere) there is none and each step runs in its own process.
    if workflow.local_exec:
        warm.start(ROOT)
