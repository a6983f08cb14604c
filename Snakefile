# Market Spine: the weekly FINRA OTC Transparency pipeline.
#
#   snakemake --cores 2                                   weekly update as of config `as_of`
#   snakemake --cores 2 --config as_of=2025-06-30         ... as of another date
#   snakemake --cores 2 backfill --config start=2025-01-06 end=2025-06-30
#   snakemake --cores 2 refetch --config 'weeks=[2025-06-02]' 'tiers=[T2]'   re-fetch on demand
#   snakemake --cores 2 reports                           derive what the lake holds; never fetches
#   snakemake --cores 2 symbol --config symbol=AAPL tier=T1   one symbol's history report
#
# Two stages, each a fixed DAG (docs/architecture.md):
#   ingest  rules/ingest.smk  fetch every partition the run covers, then one checkpoint that
#                             gates them in week order and records the verdicts in the ledger
#   derive  rules/derive.smk  clean + calculations, rolling windows, Reg SHO, reports, revision
#                             reports: planned from the ledger (as the lake held it at the start,
#                             plus the ingest's verdicts), rerunning exactly what changed
# Which weeks a run covers and all week arithmetic: spine/plan.py. Paths: spine/lake/__init__.py LAYOUT.
# The steps and the config each reads: spine/notebooks.py STEPS. Defaults an operator should not
# have to type (cores, rerun-incomplete, ...): profiles/default/config.yaml.

import datetime as dt
import os
import time

from snakemake.exceptions import WorkflowError

from spine import config as spine_config
from spine import plan
from spine.ingest import ledger
from spine.lake import LakeBusy, store
from spine.derive import registry


configfile: "config/config.yaml"


START = time.time()  # when this invocation started (for the run's verdict, onsuccess)


# Refuse a bad value before any job runs; the message names the key.
try:
    CFG = spine_config.validate(config)
    registry.check()  # spine/derive/registry.py: each calculation's inputs known and computed first
except (spine_config.ConfigError, ValueError) as err:
    raise WorkflowError(str(err)) from None
ROOT = CFG["lake_root"]

# The lake of record in an object store (`lake_store`): this run takes the store's lock, pulls
# its working copy (lake_root) now and pushes it when the run ends (onsuccess, onerror, or the
# process's exit), spine/lake/store.py. A job on a cluster reads this file again: it never syncs.
try:
    STORE = store.begin(CFG, write=True) if workflow.is_main_process else None
except (LakeBusy, store.StoreError) as err:
    raise WorkflowError(str(err)) from None

# The plan, computed once: what this run covers and what the lake holds at the start.
RUN_KIND = "refetch" if CFG["weeks"] else "backfill" if CFG["start"] else "weekly"
try:
    # per partition, the first configured source that serves it (`source:`, in preference
    # order); those none serves are not fetched, and the run's summary names them (onsuccess)
    COVERAGE = plan.coverage(CFG, getattr(plan, RUN_KIND)(CFG))
except RuntimeError as err:  # spine.ingest.sources.SourceError: a source cannot be set up
    raise WorkflowError(str(err)) from None
PARTS = COVERAGE.parts
FETCH_KEY = plan.fetch_key(CFG, dt.datetime.now(dt.timezone.utc))
RUN_KEY = plan.run_key(FETCH_KEY, PARTS)
STATE0 = ledger.LakeState.read(ROOT)  # the ledger's listing: no data file is opened


include: "rules/common.smk"
include: "rules/notebook.smk"
include: "rules/ingest.smk"
include: "rules/derive.smk"


rule weekly:
    """Default target: every week first published within revision_lookback_weeks of as_of
    (re-fetched each time as_of moves, which is how revisions are seen), and what they touch."""
    default_target: True
    input:
        lambda wc: run_targets("weekly"),


rule backfill:
    """Every published week with week_start in [start, end] that a configured source serves,
    and what they touch; the run's summary names the weeks none serves."""
    input:
        lambda wc: run_targets("backfill"),


rule refetch:
    """Re-fetch named weeks now (config `weeks`), and derive whatever changed."""
    input:
        lambda wc: run_targets("refetch"),


rule reports:
    """Every derived file of every partition the lake holds (clean, calculations, reports,
    revision reports) that is missing or stale. Reads the ledger; never fetches."""
    input:
        lambda wc: derive_targets(STATE0, STATE0.gated()),


rule symbol:
    """One symbol's history report (config `symbol` and `tier`), and the index listing it:
    snakemake --cores 2 symbol --config symbol=AAPL tier=T1. Reads the lake; never fetches."""
    input:
        lambda wc: symbol_targets(),


onerror:
    warm.stop()
    store.end(STORE, ROOT, raising=False)  # what the finished jobs wrote is kept: pushed
    print("The run stopped before it finished. A failed step says above what went wrong "
          "(step, partition, cause, full log): fix that, then run the same command; an "
          "interrupted run needs nothing fixed. The same command resumes where it stopped.",
          file=sys.stderr)


onsuccess:
    warm.stop()
    try:
        store.end(STORE, ROOT)
    except store.StoreError as err:
        print(err, file=sys.stderr)
        raise SystemExit(1)
    # The run's summary, as its last lines (spine.reports.summary.run_summary). The operator's verdict:
    # a run whose gates refused a capture ends non-zero, once: when this invocation wrote the
    # run's gate summary (it is kept, so the lake is complete and a dry run then has nothing to
    # do).
    # Weeks no configured source holds are named in it, also when the run had nothing else to do.
    from spine.reports.summary import run_summary

    summary = L("gate_summary", run_kind=RUN_KIND)
    if ingesting() and os.path.exists(summary):
        with open(summary) as handle:
            verdicts = handle.read()
        refused = int(verdicts.splitlines()[0].split(", ")[1].split()[0])
        failing = refused and os.path.getmtime(summary) >= START
        if failing:
            print(f"{refused} capture(s) refused by a gate were not advanced to clean (the "
                  f"verdicts: {summary}).", file=sys.stderr)
        print(run_summary(ROOT, RUN_KIND, CFG["as_of"], ingest_record(), state(), verdicts,
                          COVERAGE), file=sys.stderr)
        if failing:
            raise SystemExit(1)
    elif run_asked() and COVERAGE.unheld:
        print(run_summary(ROOT, RUN_KIND, CFG["as_of"], None, STATE0, None, COVERAGE),
              file=sys.stderr)
