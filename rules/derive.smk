# Derive: everything that follows from the ledger and raw, planned from `state()` (the lake at
# the start plus this run's verdicts). Every input is a file whose path the state names, so a
# changed verdict changes the inputs (Snakemake reruns on a changed input set), an unchanged
# one changes nothing, and a deleted derived file (clean included) is rebuilt from raw.

# Small, quick jobs: run where Snakemake runs, never sent to a cluster.
localrules: gate_report, revision_index, report_index, gate_summary, retract


rule retract:
    """The lake equals its ledger: every derived file the ledger does not account for (a week
    it stopped holding after a revoked override, a pin or a regate that refused; a calculation
    removed from the registry or off with Reg SHO) moves to quarantine (spine.lake.repair.retract).
    Its record is named by the fingerprint of what the ledger accounts for (of `state()`), so
    one is due whenever that changes, and in a run that ingests it is only known, so only run,
    after the verdicts. It reads the ledger's listing and the derived layers' (no input file)."""
    output:
        record=L("retracted", fingerprint="{fingerprint}"),
    log:
        L("log", step="retract", job="{fingerprint}"),
    params:
        root=lambda wc, output: str(Path(output.record).parents[2]),  # <root>/quarantine/sweeps
        regsho="" if CFG["regsho"]["enabled"] else "--no-regsho",
    shell:
        "python -m spine.cli retract --lake-root {params.root:q} --fingerprint "
        "{wildcards.fingerprint} {params.regsho} > {log:q} 2>&1"


rule gate_report:
    """A capture's gate report, written from its verdict event in the ledger."""
    input:
        event=lambda wc: L("ledger_event", tier=wc.tier, week_start=wc.week_start,
                           event_file=state().verdict_file(wc.tier, wc.week_start,
                                                           wc.capture_id)),
    output:
        report=L("gate", tier="{tier}", week_start="{week_start}", capture_id="{capture_id}"),
    log:
        J("gate_report", tier="{tier}", week_start="{week_start}", capture_id="{capture_id}")["stderr"],
    shell:
        "python -m spine.cli gate-report {input.event:q} {output.report:q} > {log:q} 2>&1"


use rule notebook as clean with:
    input:
        notebook="notebooks/clean.ipynb",
        capture=lambda wc: L("capture", tier=wc.tier, week_start=wc.week_start,
                             capture_id=state().must_hold(wc.tier, wc.week_start)),
        # the ledger event that made clean hold it: a pin back to an older capture, or a revoke
        # or regate that lets clean fall back to one, is newer than clean, so clean is rebuilt
        decision=lambda wc: L("ledger_event", tier=wc.tier, week_start=wc.week_start,
                              event_file=state().get(wc.tier, wc.week_start).decided_by.file),
    output:
        clean=L("clean", tier="{tier}", week_start="{week_start}"),
    log:
        **J("clean", tier="{tier}", week_start="{week_start}"),
    params:
        step="clean",
        json=lambda wc: steps.parameters("clean", CFG, tier=wc.tier, week_start=wc.week_start,
                                             capture_id=state().must_hold(wc.tier, wc.week_start)),
        html="",


# Every calculation of spine/derive/registry.py: one job per (calculation, tier, week), its inputs
# the registry's (a window's weeks as the state lists them), its version a parameter, so
# bumping it reruns exactly that calculation, and what reads it, for every week.
use rule notebook as calc with:
    input:
        notebook="notebooks/calc.ipynb",
        data=lambda wc: calc_inputs(wc.calc, wc.tier, wc.week_start),
    output:
        calc=L("calc", calc="{calc}", tier="{tier}", week_start="{week_start}"),
    log:
        **J("calc", calc="{calc}", tier="{tier}", week_start="{week_start}"),
    params:
        step="calc",
        json=lambda wc: steps.parameters(
            "calc", CFG, calc=wc.calc, version=registry.get(wc.calc).version, tier=wc.tier,
            week_start=wc.week_start, windows=calc_windows(wc.calc, wc.tier, wc.week_start)),
        html="",


use rule notebook as fetch_regsho with:
    input:
        notebook="notebooks/fetch_regsho.ipynb",
    output:
        week=L("regsho_week", week_start="{week_start}"),
    log:
        **J("fetch_regsho", week_start="{week_start}"),
    params:
        step="fetch_regsho",
        json=lambda wc: steps.parameters(
            "fetch_regsho", dict(CFG, as_of=plan.regsho_as_of(dt.date.fromisoformat(wc.week_start),
                                                        CFG["as_of"])),
            week_start=wc.week_start),
        html="",


use rule notebook as weekly_report with:
    input:
        notebook="notebooks/weekly_report.ipynb",
        data=lambda wc: week_inputs(wc.week_start),
    output:
        html=L("weekly_report", week_start="{week_start}"),
    log:
        **J("weekly_report", week_start="{week_start}"),
    params:
        step="weekly_report",
        json=lambda wc: steps.parameters("weekly_report", CFG, week_start=wc.week_start,
                                             tiers=state().week_view(
                                                 wc.week_start, CFG["regsho"]["enabled"])),
        html=lambda wc, output: f"--html {output.html}",


use rule notebook as revision_report with:
    input:
        notebook="notebooks/revision_report.ipynb",
        old=L("capture", tier="{tier}", week_start="{week_start}", capture_id="{old}"),
        new=L("capture", tier="{tier}", week_start="{week_start}", capture_id="{new}"),
        gate=L("gate", tier="{tier}", week_start="{week_start}", capture_id="{new}"),
        earlier=lambda wc: [L("calc", calc="symbol_week", tier=wc.tier, week_start=w)
                            for w in state().revision_window(wc.tier, wc.week_start)["earlier"]],
        # an override that let the new capture in (the report says who, when and why)
        override=lambda wc: [L("ledger_event", tier=wc.tier, week_start=wc.week_start,
                               event_file=e.file)
                             for e in [state().get(wc.tier, wc.week_start).overrides.get(wc.new)]
                             if e],
    output:
        html=L("revision_report", tier="{tier}", week_start="{week_start}", old="{old}",
               new="{new}"),
    log:
        **J("revision_report", tier="{tier}", week_start="{week_start}", old="{old}", new="{new}"),
    params:
        step="revision_report",
        json=lambda wc: steps.parameters("revision_report", CFG, tier=wc.tier,
                                             week_start=wc.week_start, old=wc.old, new=wc.new,
                                             **state().revision_window(wc.tier, wc.week_start)),
        html=lambda wc, output: f"--html {output.html}",


use rule notebook as symbol_report with:
    input:
        notebook="notebooks/symbol_report.ipynb",
        data=lambda wc: symbol_inputs(wc.tier, wc.symbol),
    output:
        html=L("symbol_report", tier="{tier}", symbol="{symbol}"),
    log:
        **J("symbol_report", tier="{tier}", symbol="{symbol}"),
    params:
        step="symbol_report",
        json=lambda wc: steps.parameters("symbol_report", CFG, tier=wc.tier, symbol=wc.symbol,
                                             **symbol_view(wc.tier)),
        html=lambda wc, output: f"--html {output.html}",


rule report_index:
    """reports/index.html: every weekly, revision and symbol report, and each week's status per
    tier (a param): rebuilt when a report or a status changes."""
    input:
        lambda wc: index_reports(),
    output:
        html=L("report_index"),
    log:
        L("log", step="report_index", job="index"),
    params:
        listing=lambda wc: json.dumps(index_listing()),
    shell:
        "python -m spine.cli report-index {output.html:q} --listing {params.listing:q} "
        "--inputs {input:q} > {log:q} 2>&1"


rule revision_index:
    """All revisions, newest first, linking their reports."""
    input:
        lambda wc: [L("revision_report", tier=t, week_start=w, old=o, new=n)
                    for t, w, o, n in state().revisions()],
    output:
        html=L("revision_index"),
    log:
        L("log", step="revision_index", job="index"),
    params:
        revisions=lambda wc: json.dumps(state().revision_list()),
    shell:
        "python -m spine.cli revision-index {output.html:q} --revisions {params.revisions:q} "
        "--inputs {input:q} > {log:q} 2>&1"


rule gate_summary:
    """The run's gate verdicts, printed and kept, after its weekly reports (a refused week
    never stops the other weeks' reports). The run then ends non-zero if any was refused.
    `ancient`: the summary depends on which captures were decided (their gate reports' paths),
    not on when a report was last rebuilt, so `spine repair` rebuilding one does not make the
    next dry run want a new summary."""
    input:
        gates=ancient(lambda wc: [L("gate", tier=p["tier"], week_start=p["week_start"],
                                    capture_id=p["capture_id"])
                                  for p in ingest_record()["partitions"]]),
        reports=ancient(lambda wc: [L("weekly_report", week_start=w)
                                    for w in plan.by_week(PARTS)]),
    output:
        summary=L("gate_summary", run_kind="{run_kind}"),
    log:
        L("log", step="gate_summary", job="{run_kind}"),
    shell:
        # the summary is kept; the Snakefile's onsuccess prints the run's summary as its last
        # lines and ends the run non-zero when it counts a refusal
        "python -m spine.cli gate-summary {output.summary:q} {input.gates:q} > {log:q} 2>&1"
