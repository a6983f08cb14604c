# Ingest: fetch every partition the run covers (in parallel), then gate them all in one job.
#
# Gating is one checkpoint per run because what the derive stage does depends on the verdicts
# (a refused week has no new calculations; an accepted revision reruns its week's and its
# rolling windows' outputs). It decides each capture the run fetched, oldest week first within
# a tier, since a week's count band compares with the weeks before it; a capture already
# decided (an identical re-fetch) is not decided again. Verdicts go to the ledger, the commit
# point; clean is derived from it in the derive stage.


use rule notebook as fetch with:
    input:
        notebook="notebooks/fetch.ipynb",
    output:
        receipt=L("fetch", tier="{tier}", week_start="{week_start}", fetch_key="{fetch_key}"),
    log:
        **{k: v for k, v in J("fetch", tier="{tier}", week_start="{week_start}",
                              fetch_key="{fetch_key}").items() if k != "bench"},
    benchmark:
        J("fetch", tier="{tier}", week_start="{week_start}", fetch_key="{fetch_key}")["bench"]
    params:
        step="fetch",
        json=lambda wc: notebooks.parameters("fetch", CFG, tier=wc.tier,
                                             week_start=wc.week_start, fetch_key=wc.fetch_key),
        html="",


def ingest_inputs(wc):
    """The run's receipts, and the verdict events of the trailing weeks outside the run that
    its first weeks' count bands compare with (as the lake held them at the start)."""
    if wc.run != RUN_KEY:
        raise WorkflowError(f"ingest {wc.run} is not this run's ({RUN_KEY})")
    receipts = [L("fetch", tier=t, week_start=w, fetch_key=FETCH_KEY) for t, w in PARTS]
    inside, trailing = set(PARTS), []
    for tier, week in PARTS:
        for prior in plan.trailing_weeks(week, CFG["gates"]["band_weeks"]):
            s = STATE0.get(tier, prior)
            if (tier, prior) not in inside and s.held:
                trailing.append(L("ledger_event", tier=tier, week_start=prior,
                                  event_file=s.verdicts[s.held].file))
    return {"receipts": receipts, "trailing": sorted(set(trailing))}


checkpoint ingest:
    input:
        unpack(ingest_inputs),
        notebook="notebooks/gate.ipynb",
    output:
        record=L("ingest", run="{run}"),
    log:
        notebook=J("gate", run="{run}")["notebook"],
        stderr=J("gate", run="{run}")["stderr"],
    benchmark:
        J("gate", run="{run}")["bench"]
    params:
        step="gate",
        json=lambda wc, input, output: notebooks.parameters(
            "gate", CFG, receipts=list(input.receipts), output=output.record),
        html="",
    threads: 1
    resources:
        mem_mb=1000,
    shell:
        NOTEBOOK_SHELL
