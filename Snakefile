# Market Spine: the weekly FINRA OTC Transparency pipeline.
#
#   snakemake --cores 2                                   weekly update as of config `as_of`
#   snakemake --cores 2 --config as_of=2025-06-30         ... as of another date
#   snakemake --cores 2 backfill --config start=2025-01-06 end=2025-06-30
#
# Per (tier, week): fetch -> gate (checkpoint: advances clean only on PASS) -> calc; per week a
# report rendered to HTML. Every step is a papermill run of a notebook in notebooks/; the
# executed copy is kept under <lake_root>/runs/. Which weeks a run covers is decided in
# spine/targets.py, the file layout in spine/lake.py (LAYOUT).

import json
import shlex
import sys

from spine import config as spine_config
from spine import lake, targets
from spine.gates import PASS


configfile: "config/config.yaml"


# Refuse a bad value before any job runs; the message names the key.
CFG = spine_config.validate(config)
ROOT = CFG["lake_root"]
PY = sys.executable
KERNEL = CFG["kernel"]
WEEKLY = targets.weekly(CFG)
BACKFILL = targets.backfill(CFG) if CFG.get("start") else []
# With `start` the invocation is a backfill: gates are ordered within the backfill's weeks only.
PARTITIONS = BACKFILL or WEEKLY
TIERS_BY_WEEK = {w.isoformat(): tiers
                 for w, tiers in targets.weeks_by_start(sorted(set(WEEKLY) | set(BACKFILL))).items()}


def L(kind, **keys):
    """A layout path (spine.lake.LAYOUT) under the lake root, as a Snakemake pattern."""
    return str(lake.path(ROOT, kind, **keys))


def papermill_yaml(step, **params):
    """Notebook parameters: the wildcards and the part of the config the step reads. Only that
    part, so that changing an unrelated key (as_of, say) does not rerun a step."""
    keys = {"fetch": ["lake_root", "as_of", "source", "synthetic", "finra_api", "finra_files"],
            "gate": ["lake_root", "gates"],
            "calc": ["lake_root"],
            "regsho": ["lake_root", "as_of", "regsho", "synthetic"],
            "report": ["lake_root", "report"]}[step]
    return shlex.quote(json.dumps({**params, "config": {k: CFG[k] for k in keys}}, sort_keys=True))


wildcard_constraints:
    tier="T1|T2|OTCE",
    nms_tier="T1|T2",
    week_start=r"\d{4}-\d{2}-\d{2}",


localrules: weekly, backfill, gate_summary


rule weekly:
    """Default target: every week first published within revision_lookback_weeks of as_of."""
    input:
        targets.outputs(ROOT, WEEKLY),
        summary=L("gate_summary", run="weekly"),


rule backfill:
    """Every published week with week_start in [start, end]."""
    input:
        targets.outputs(ROOT, BACKFILL) if BACKFILL else [],
        summary=L("gate_summary", run="backfill"),


rule fetch:
    input:
        notebook="notebooks/fetch.ipynb",
    output:
        receipt=L("fetch", tier="{tier}", week_start="{week_start}"),
    log:
        notebook=L("run", step="fetch", tier="{tier}", week_start="{week_start}"),
        stderr=L("log", step="fetch", tier="{tier}", week_start="{week_start}"),
    benchmark:
        L("bench", step="fetch", tier="{tier}", week_start="{week_start}")
    params:
        yaml=lambda wc: papermill_yaml("fetch", tier=wc.tier, week_start=wc.week_start),
        py=PY,
        kernel=KERNEL,
    threads: 1
    resources:
        mem_mb=1500,
    shell:
        "{params.py} -m papermill {input.notebook} {log.notebook} -k {params.kernel} "
        "-y {params.yaml} --no-progress-bar > {log.stderr} 2>&1"


checkpoint gate:
    input:
        notebook="notebooks/gate.ipynb",
        receipt=rules.fetch.output.receipt,
        # Trailing weeks of this run are gated first: the count band compares with them.
        trailing=lambda wc: targets.trailing_gates(
            ROOT, wc.tier, wc.week_start, CFG["gates"]["band_weeks"], PARTITIONS),
    output:
        report=L("gate", tier="{tier}", week_start="{week_start}"),
    log:
        notebook=L("run", step="gate", tier="{tier}", week_start="{week_start}"),
        stderr=L("log", step="gate", tier="{tier}", week_start="{week_start}"),
    benchmark:
        L("bench", step="gate", tier="{tier}", week_start="{week_start}")
    params:
        yaml=lambda wc: papermill_yaml("gate", tier=wc.tier, week_start=wc.week_start),
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
        # Only the clean partition: a re-gate of an unchanged capture leaves it untouched.
        clean=L("clean", tier="{tier}", week_start="{week_start}"),
    output:
        **{name: L("calc", calc=name, tier="{tier}", week_start="{week_start}")
           for name in targets.CALCS},
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


def report_inputs(wc):
    """Gate reports of the week's tiers, and the calculations of those that passed."""
    tiers = TIERS_BY_WEEK[wc.week_start]
    files = []
    for tier in tiers:
        gate_report = checkpoints.gate.get(tier=tier, week_start=wc.week_start).output.report
        files.append(gate_report)
        with open(gate_report) as handle:
            if json.load(handle)["status"] == PASS:
                files += [str(p) for p in targets.calc_files(ROOT, tier, wc.week_start)]
                if CFG["regsho"]["enabled"] and tier in ("T1", "T2"):
                    files.append(L("calc", calc="short_volume", tier=tier,
                                   week_start=wc.week_start))
    return files


rule report:
    input:
        notebook="notebooks/report.ipynb",
        data=report_inputs,
    output:
        html=L("report", week_start="{week_start}"),
    log:
        notebook=L("report_run", week_start="{week_start}"),
        stderr=L("report_log", week_start="{week_start}"),
    benchmark:
        L("report_bench", week_start="{week_start}")
    params:
        yaml=lambda wc: papermill_yaml(
            "report", week_start=wc.week_start, tiers=TIERS_BY_WEEK[wc.week_start]),
        py=PY,
        kernel=KERNEL,
    threads: 1
    resources:
        mem_mb=1500,
    shell:
        "({params.py} -m papermill {input.notebook} {log.notebook} -k {params.kernel} "
        "-y {params.yaml} --no-progress-bar "
        "&& {params.py} -m spine.cli render-html {log.notebook} {output.html}) > {log.stderr} 2>&1"


rule gate_summary:
    """Fails (non-zero exit) when any gate of the run failed, after everything else has run."""
    input:
        gates=lambda wc: [L("gate", tier=t, week_start=w)
                          for t, w in (WEEKLY if wc.run == "weekly" else BACKFILL)],
        reports=lambda wc: [L("report", week_start=w) for w in targets.weeks_by_start(
            WEEKLY if wc.run == "weekly" else BACKFILL)],
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
