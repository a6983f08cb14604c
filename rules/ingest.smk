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
        **J("fetch", tier="{tier}", week_start="{week_start}", fetch_key="{fetch_key}"),
    params:
        step="fetch",
        json=lambda wc: steps.parameters("fetch", CFG, tier=wc.tier,
                                             week_start=wc.week_start, fetch_key=wc.fetch_key),
        html="",


checkpoint gate:
    input:
        notebook="notebooks/gate.ipynb",
        # the run's receipts
        receipts=lambda wc: [L("fetch", tier=t, week_start=w, fetch_key=FETCH_KEY)
                             for t, w in PARTS],
        # the verdicts of the accepted versions of the trailing weeks outside the run that the
        # first weeks' count bands compare with, as the lake held them at the start
        trailing=lambda wc: [L("ledger_event", tier=t, week_start=w, event_file=f)
                             for t, w, f in STATE0.trailing_verdicts(
                                 PARTS, CFG["gates"]["band_weeks"])],
    output:
        record=L("ingest", run_key="{run_key}"),
    log:
        **J("gate", run_key="{run_key}"),
    params:
        step="gate",
        json=lambda wc, input, output: steps.parameters(
            "gate", CFG, receipts=list(input.receipts), output=output.record),
        html="",
    threads: 1
    resources:
        mem_mb=1000,
    shell:
        NOTEBOOK_SHELL
