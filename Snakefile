# Market Spine: the weekly FINRA OTC Transparency pipeline.
#
#   snakemake --cores 2                                   weekly update as of config `as_of`
#   snakemake --cores 2 --config as_of=2025-06-30         ... as of another date
#   snakemake --cores 2 backfill --config start=2025-01-06 end=2025-06-30
#   snakemake --cores 2 refetch --config weeks=[2025-06-02] tiers=[T2]   re-fetch on demand
#   snakemake --cores 2 reports                           render missing or stale reports
#
# Per (tier, week): fetch (checkpoint, one per fetch key) -> gate (checkpoint, one per capture:
# advances clean only on PASS) -> calc -> symbol_rolling; Reg SHO -> short_volume; per week a
# report, per revision a revision report. A re-fetch of identical content is the same capture,
# whose gate and everything downstream are already done: nothing reruns. Every step is a
# papermill run of a notebook in notebooks/; executed copies are kept under <lake_root>/runs/.
# Which weeks a run covers: spine/targets.py. File layout: spine/lake.py (LAYOUT).

import datetime as dt
import os
import json
import shlex
import sys
from pathlib import Path

from snakemake.exceptions import IncompleteCheckpointException

from spine import config as spine_config
from spine import lake, targets
from spine.calcs import CALCS, ROLLING_WEEKS


configfile: "config/config.yaml"


# Refuse a bad value before any job runs; the message names the key.
CFG = spine_config.validate(config)
ROOT = CFG["lake_root"]
PY = sys.executable
KERNEL = CFG["kernel"]
WEEKLY = targets.weekly(CFG)
BACKFILL = targets.backfill(CFG) if CFG.get("start") else []
REFETCH = targets.refetch(CFG)
RUN = REFETCH or BACKFILL or WEEKLY  # the partitions this invocation fetches
RUN_SET = set(RUN)
FETCH_KEY = targets.fetch_key(CFG, dt.datetime.now(dt.timezone.utc))
LAKE = targets.gated_partitions(ROOT)  # what the lake already holds (`reports`)
TIERS_BY_WEEK = {w.isoformat(): tiers for w, tiers in
                 targets.weeks_by_start(sorted(RUN_SET | set(LAKE))).items()}


def L(kind, **keys):
    """A layout path (spine.lake.LAYOUT) under the lake root, as a Snakemake pattern."""
    return str(lake.path(ROOT, kind, **keys))


def papermill_yaml(step, **params):
    """Notebook parameters: the wildcards and the part of the config the step reads. Only that
    part, so that changing an unrelated key (as_of, say) does not rerun a step."""
    keys = {"fetch": ["lake_root", "as_of", "source", "synthetic", "finra_api", "finra_files"],
            "gate": ["lake_root", "gates"],
            "calc": ["lake_root"],
            "regsho": ["lake_root", "regsho", "synthetic"],
            "report": ["lake_root", "report", "regsho"]}[step]
    return shlex.quote(json.dumps({**params, "config": {k: CFG[k] for k in keys}}, sort_keys=True))


def capture_of(tier, week):
    """The capture a partition is at for this invocation: what this run fetched (resolving the
    fetch checkpoint), or, for a partition the run does not fetch, its latest gated capture."""
    week = str(week)
    if (tier, dt.date.fromisoformat(week)) in RUN_SET:
        receipt = checkpoints.fetch.get(tier=tier, week_start=week, fetch_key=FETCH_KEY).output[0]
        return json.loads(Path(receipt).read_text())["capture_id"]
    return targets.latest_gated_capture(ROOT, tier, dt.date.fromisoformat(week))


def gate_of(tier, week):
    """The gate report of the partition's capture (resolving the gate checkpoint)."""
    capture = capture_of(tier, week)
    return checkpoints.gate.get(tier=tier, week_start=str(week), capture_id=capture).output[0]


def shown_gates(tier, week):
    """The gate reports a weekly report shows, after this run's gate of the partition: the
    version clean holds and any revision refused since (spine.targets.report_captures)."""
    if (tier, dt.date.fromisoformat(str(week))) in RUN_SET:
        gate_of(tier, week)
    return [L("gate", tier=tier, week_start=week, capture_id=c)
            for c in targets.report_captures(ROOT, tier, week)]


class Pending(Exception):
    """Checkpoint outputs not produced yet (fetches or gates of several partitions)."""

    def __init__(self, targets):
        self.targets = targets


def resolve_all(items, lookup):
    """lookup(*item) for every item; if any needs a checkpoint that has not run, raise Pending
    with all of them, so Snakemake schedules them together instead of one at a time."""
    out, pending = [], []
    for item in items:
        try:
            out.append(lookup(*item))
        except IncompleteCheckpointException as e:
            pending.append(e.targetfile)
    if pending:
        raise Pending(pending)
    return out


def checkpointed(func):
    """An input function over checkpoint outputs: while some are pending, depend on them all
    (flagged as checkpoint targets, so the function is evaluated again when they are done)."""

    def inputs(wc):
        try:
            return func(wc)
        except Pending as p:
            return p.targets

    return inputs


def has_clean(tier, week):
    return lake.path(ROOT, "clean", tier=tier, week_start=week).exists()


def affected_weeks(partitions):
    """The weeks whose reports a run must refresh: its own, and the later weeks whose rolling
    window contains one of them (they are rerun only if that week really changed)."""
    weeks = {w for _, w in partitions}
    for tier, week in partitions:
        for k in range(1, ROLLING_WEEKS):
            later = week + dt.timedelta(days=7 * k)
            if has_clean(tier, later) or (tier, later) in RUN_SET:
                weeks.add(later)
    return sorted(weeks)


def run_outputs(partitions, name):
    """A run's targets, as plain paths: this invocation's fetch of every partition (which is how
    Snakemake learns to fetch them), then what depends on them (the checkpoint work happens in
    the input functions of the rules below)."""
    return ([L("fetch", tier=t, week_start=w, fetch_key=FETCH_KEY) for t, w in partitions]
            + [L("gate_summary", run=name)]
            + [L("report", week_start=w) for w in affected_weeks(partitions)]
            + [L("revision_index")])


wildcard_constraints:
    tier="T1|T2|OTCE",
    nms_tier="T1|T2",
    week_start=r"\d{4}-\d{2}-\d{2}",
    capture_id=r"[0-9a-f]{16}",
    old=r"[0-9a-f]{16}",
    new=r"[0-9a-f]{16}",
    fetch_key=r"(asof|at|import)-[0-9A-Za-z-]+",


localrules: weekly, backfill, refetch, reports, gate_summary, revision_index


rule weekly:
    """Default target: every week first published within revision_lookback_weeks of as_of
    (re-fetched each time as_of moves, which is how revisions are seen)."""
    input:
        run_outputs(WEEKLY, "weekly"),


rule backfill:
    """Every published week with week_start in [start, end]."""
    input:
        run_outputs(BACKFILL, "backfill") if BACKFILL else [],


rule refetch:
    """Re-fetch named weeks now (config `weeks`), and process whatever changed."""
    input:
        run_outputs(REFETCH, "refetch") if REFETCH else [],


rule reports:
    """Every weekly and revision report that is missing or stale, for whatever the lake holds."""
    input:
        [L("report", week_start=w) for w in targets.weeks_by_start(LAKE)],
        L("revision_index"),


checkpoint fetch:
    input:
        notebook="notebooks/fetch.ipynb",
    output:
        receipt=L("fetch", tier="{tier}", week_start="{week_start}", fetch_key="{fetch_key}"),
    log:
        notebook=L("fetch_run", tier="{tier}", week_start="{week_start}", fetch_key="{fetch_key}"),
        stderr=L("fetch_log", tier="{tier}", week_start="{week_start}", fetch_key="{fetch_key}"),
    benchmark:
        L("fetch_bench", tier="{tier}", week_start="{week_start}", fetch_key="{fetch_key}")
    params:
        yaml=lambda wc: papermill_yaml("fetch", tier=wc.tier, week_start=wc.week_start,
                                       fetch_key=wc.fetch_key),
        py=PY,
        kernel=KERNEL,
    threads: 1
    resources:
        mem_mb=1500,
    shell:
        "{params.py} -m papermill {input.notebook} {log.notebook} -k {params.kernel} "
        "-y {params.yaml} --no-progress-bar > {log.stderr} 2>&1"


@checkpointed
def trailing_gates(wc):
    """The gate reports of the trailing weeks the count band compares with, so that they are
    decided first (a backfill gives the same verdicts in any job order): this run's gates, or
    the accepted version's gate for weeks the run does not fetch. They change only when a
    trailing week's capture changes, which re-decides this week's band too."""
    week = dt.date.fromisoformat(wc.week_start)
    weeks = [week - dt.timedelta(days=7 * k) for k in range(1, CFG["gates"]["band_weeks"] + 1)]
    files = resolve_all([(wc.tier, w) for w in weeks if (wc.tier, w) in RUN_SET], gate_of)
    for w in weeks:
        if (wc.tier, w) not in RUN_SET and has_clean(wc.tier, w):
            held = targets.report_captures(ROOT, wc.tier, w)[0]
            files.append(L("gate", tier=wc.tier, week_start=w, capture_id=held))
    return files


checkpoint gate:
    input:
        notebook="notebooks/gate.ipynb",
        capture=L("capture", tier="{tier}", week_start="{week_start}", capture_id="{capture_id}"),
        trailing=trailing_gates,
    output:
        report=L("gate", tier="{tier}", week_start="{week_start}", capture_id="{capture_id}"),
    log:
        notebook=L("gate_run", tier="{tier}", week_start="{week_start}", capture_id="{capture_id}"),
        stderr=L("gate_log", tier="{tier}", week_start="{week_start}", capture_id="{capture_id}"),
    benchmark:
        L("gate_bench", tier="{tier}", week_start="{week_start}", capture_id="{capture_id}")
    params:
        yaml=lambda wc: papermill_yaml("gate", tier=wc.tier, week_start=wc.week_start,
                                       capture_id=wc.capture_id),
        py=PY,
        kernel=KERNEL,
    threads: 1
    resources:
        mem_mb=1500,
    shell:
        "{params.py} -m papermill {input.notebook} {log.notebook} -k {params.kernel} "
        "-y {params.yaml} --no-progress-bar > {log.stderr} 2>&1"


rule calc:
    input:
        notebook="notebooks/calc.ipynb",
        # Only the clean partition: it changes when a new capture is accepted, not otherwise.
        clean=L("clean", tier="{tier}", week_start="{week_start}"),
    output:
        **{name: L("calc", calc=name, tier="{tier}", week_start="{week_start}")
           for name in CALCS},
    log:
        notebook=L("run", step="calc", tier="{tier}", week_start="{week_start}"),
        stderr=L("log", step="calc", tier="{tier}", week_start="{week_start}"),
    benchmark:
        L("bench", step="calc", tier="{tier}", week_start="{week_start}")
    params:
        yaml=lambda wc: papermill_yaml("calc", tier=wc.tier, week_start=wc.week_start),
        py=PY,
        kernel=KERNEL,
    threads: 1
    resources:
        mem_mb=1500,
    shell:
        "{params.py} -m papermill {input.notebook} {log.notebook} -k {params.kernel} "
        "-y {params.yaml} --no-progress-bar > {log.stderr} 2>&1"


@checkpointed
def rolling_inputs(wc):
    """symbol_week of every week in the window that is (or, after its gate, will be) in clean."""
    week = dt.date.fromisoformat(wc.week_start)
    window = [week - dt.timedelta(days=7 * k) for k in range(ROLLING_WEEKS)]
    # order after this run's gates of the window's weeks
    resolve_all([(wc.tier, w) for w in window if (wc.tier, w) in RUN_SET], gate_of)
    # this week always (its rolling output is only asked for when it has an accepted version),
    # earlier weeks when clean has them
    return [L("calc", calc="symbol_week", tier=wc.tier, week_start=w) for w in window
            if w == week or has_clean(wc.tier, w)]


rule symbol_rolling:
    """A multi-week output: reruns when any week of its window changes."""
    input:
        notebook="notebooks/rolling.ipynb",
        window=rolling_inputs,
    output:
        calc=L("calc", calc="symbol_rolling", tier="{tier}", week_start="{week_start}"),
    log:
        notebook=L("run", step="rolling", tier="{tier}", week_start="{week_start}"),
        stderr=L("log", step="rolling", tier="{tier}", week_start="{week_start}"),
    benchmark:
        L("bench", step="rolling", tier="{tier}", week_start="{week_start}")
    params:
        yaml=lambda wc: papermill_yaml("calc", tier=wc.tier, week_start=wc.week_start),
        py=PY,
        kernel=KERNEL,
    threads: 1
    resources:
        mem_mb=1000,
    shell:
        "{params.py} -m papermill {input.notebook} {log.notebook} -k {params.kernel} "
        "-y {params.yaml} --no-progress-bar > {log.stderr} 2>&1"


rule fetch_regsho:
    """Reg SHO daily short-sale volume for every trading day of a week (second source)."""
    input:
        notebook="notebooks/regsho.ipynb",
    output:
        week=L("regsho_week", week_start="{week_start}"),
    log:
        notebook=L("regsho_run", week_start="{week_start}"),
        stderr=L("regsho_log", week_start="{week_start}"),
    benchmark:
        L("regsho_bench", week_start="{week_start}")
    params:
        yaml=lambda wc: papermill_yaml("regsho", week_start=wc.week_start),
        py=PY,
        kernel=KERNEL,
    threads: 1
    resources:
        mem_mb=1000,
    shell:
        "{params.py} -m papermill {input.notebook} {log.notebook} -k {params.kernel} "
        "-y {params.yaml} --no-progress-bar > {log.stderr} 2>&1"


rule short_volume:
    """Short-volume ratio beside ATS share, per NMS symbol and week."""
    input:
        notebook="notebooks/short_volume.ipynb",
        symbol_week=L("calc", calc="symbol_week", tier="{nms_tier}", week_start="{week_start}"),
        regsho=rules.fetch_regsho.output.week,
    output:
        calc=L("calc", calc="short_volume", tier="{nms_tier}", week_start="{week_start}"),
    log:
        notebook=L("run", step="short_volume", tier="{nms_tier}", week_start="{week_start}"),
        stderr=L("log", step="short_volume", tier="{nms_tier}", week_start="{week_start}"),
    benchmark:
        L("bench", step="short_volume", tier="{nms_tier}", week_start="{week_start}")
    params:
        yaml=lambda wc: papermill_yaml("calc", tier=wc.nms_tier, week_start=wc.week_start),
        py=PY,
        kernel=KERNEL,
    threads: 1
    resources:
        mem_mb=1000,
    shell:
        "{params.py} -m papermill {input.notebook} {log.notebook} -k {params.kernel} "
        "-y {params.yaml} --no-progress-bar > {log.stderr} 2>&1"


@checkpointed
def week_data(wc):
    """Per tier of the week: the gate report of its capture, and, when clean holds an accepted
    version, that version's calculations."""
    tiers = TIERS_BY_WEEK[wc.week_start]
    files = sum(resolve_all([(t, wc.week_start) for t in tiers], shown_gates), [])
    for tier in tiers:
        if has_clean(tier, wc.week_start):
            files += [str(p) for p in targets.calc_files(ROOT, tier, wc.week_start)]
            files.append(L("calc", calc="symbol_rolling", tier=tier, week_start=wc.week_start))
            if CFG["regsho"]["enabled"] and tier in ("T1", "T2"):
                files.append(L("calc", calc="short_volume", tier=tier, week_start=wc.week_start))
    return files


rule report:
    input:
        notebook="notebooks/report.ipynb",
        data=week_data,
    output:
        html=L("report", week_start="{week_start}"),
    log:
        notebook=L("report_run", week_start="{week_start}"),
        stderr=L("report_log", week_start="{week_start}"),
    benchmark:
        L("report_bench", week_start="{week_start}")
    params:
        yaml=lambda wc: papermill_yaml(
            "report", week_start=wc.week_start, tiers=TIERS_BY_WEEK[wc.week_start],
            captures={t: targets.report_captures(ROOT, t, wc.week_start)
                      for t in TIERS_BY_WEEK[wc.week_start]}),
        py=PY,
        kernel=KERNEL,
    threads: 1
    resources:
        mem_mb=1500,
    shell:
        "({params.py} -m papermill {input.notebook} {log.notebook} -k {params.kernel} "
        "-y {params.yaml} --no-progress-bar "
        "&& {params.py} -m spine.cli render-html {log.notebook} {output.html}) > {log.stderr} 2>&1"


rule revision_report:
    """What a revision changed: rows, totals, largest changes, effect on the calculations."""
    input:
        notebook="notebooks/revision.ipynb",
        old=L("capture", tier="{tier}", week_start="{week_start}", capture_id="{old}"),
        new=L("capture", tier="{tier}", week_start="{week_start}", capture_id="{new}"),
        gate=L("gate", tier="{tier}", week_start="{week_start}", capture_id="{new}"),
        rolling=lambda wc: [L("calc", calc="symbol_rolling", tier=wc.tier, week_start=wc.week_start)]
        if has_clean(wc.tier, wc.week_start) else [],
    output:
        html=L("revision", tier="{tier}", week_start="{week_start}", old="{old}", new="{new}"),
    log:
        notebook=L("revision_run", tier="{tier}", week_start="{week_start}", old="{old}", new="{new}"),
        stderr=L("revision_log", tier="{tier}", week_start="{week_start}", old="{old}", new="{new}"),
    params:
        yaml=lambda wc: papermill_yaml("report", tier=wc.tier, week_start=wc.week_start,
                                       old=wc.old, new=wc.new),
        py=PY,
        kernel=KERNEL,
    threads: 1
    resources:
        mem_mb=1500,
    shell:
        "({params.py} -m papermill {input.notebook} {log.notebook} -k {params.kernel} "
        "-y {params.yaml} --no-progress-bar "
        "&& {params.py} -m spine.cli render-html {log.notebook} {output.html}) > {log.stderr} 2>&1"


@checkpointed
def all_revisions(wc):
    """A revision report for every revision in the ledger, after this run's gates (which is
    when a run's own revisions are recorded)."""
    resolve_all(RUN, gate_of)
    return [L("revision", tier=t, week_start=w, old=o, new=n)
            for t, w, o, n in targets.recorded_revisions(ROOT)]


rule revision_index:
    """All revisions, newest first, linking their reports."""
    input:
        all_revisions,
    output:
        html=L("revision_index"),
    log:
        L("revision_index_log"),
    params:
        py=PY,
    shell:
        # the lake root is the one the index lives in (spine.lake.LAYOUT["revision_index"])
        "{params.py} -m spine.cli revision-index --output {output.html} > {log} 2>&1"


rule gate_summary:
    """Fails (non-zero exit) when any gate of the run failed, after everything else has run."""
    input:
        gates=checkpointed(lambda wc: resolve_all(
            {"weekly": WEEKLY, "backfill": BACKFILL, "refetch": REFETCH}[wc.run], gate_of)),
        # ... and after the run's weekly reports, so a failed gate never stops them rendering
        reports=lambda wc: [L("report", week_start=w) for w in targets.weeks_by_start(
            {"weekly": WEEKLY, "backfill": BACKFILL, "refetch": REFETCH}[wc.run])],
    output:
        summary=L("gate_summary", run="{run}"),
    log:
        L("gate_summary_log", run="{run}"),
    params:
        py=PY,
    shell:
        # The summary is printed to the terminal (the operator's verdict) and kept in the log.
        "{params.py} -m spine.cli gate-summary --output {output.summary} {input.gates} "
        "2>&1 | tee {log}"


onsuccess:
    # Snakemake re-plans after each checkpoint, but work that a late checkpoint uncovers (a
    # revision's rolling windows and report, say) can be left for the next invocation. Settle:
    # run once more while a dry run still finds work, so one `snakemake --cores 2` completes.
    settle_passes = int(os.environ.get("SPINE_SETTLE_PASSES", "0"))
    if settle_passes < 2 and not workflow.dryrun:
        import subprocess

        argv = [a for a in sys.argv[1:] if a != "--dry-run"]
        cmd = [sys.executable, "-m", "snakemake", *argv, "--nolock"]  # this run holds the lock
        env = dict(os.environ, SPINE_SETTLE_PASSES=str(settle_passes + 1))
        probe = subprocess.run([*cmd, "--dry-run", "--quiet", "rules"], env=env,
                               capture_output=True, text=True)
        if probe.returncode == 0 and "Nothing to be done" not in probe.stdout + probe.stderr:
            print("Settling: work uncovered by checkpoints late in the run; running again.")
            finished = subprocess.run(cmd, env=env)
            if finished.returncode:
                sys.exit(finished.returncode)
