# The notebook rule template. Every step is `python -m spine.notebooks <step>`: a papermill run
# of notebooks/<step>.ipynb, in process, with the parameters spine.steps.parameters()
# derives from the step's one declaration (spine.steps.STEPS); the executed copy is the
# job's `notebook` log. Steps reuse it with `use rule notebook as <step> with:`.
#
# Jobs run `python` from PATH, and the interpreter running Snakemake comes first on it (see
# rules/common.smk), so a job always uses Snakemake's environment, and moving that environment
# does not change a job's parameters (which would rerun it).

envvars:
    "PATH",


# A failed step's few lines (spine.notebooks prints the step, its partition, the error's own
# message and where the executed notebook is) reach the operator's terminal; the rest of its
# output stays in its log.
NOTEBOOK_SHELL = (
    "python -m spine.notebooks {params.step} {log.notebook} --params {params.json:q} "
    "{params.html} --bench {log.bench} > {log.stderr} 2>&1 "
    "|| {{ code=$?; if [ $code -ge 128 ]; then echo \"step {params.step} interrupted "
    "({log.stderr})\" >&2; else tail -n 12 {log.stderr:q} >&2; "
    "echo \"full log: {log.stderr}\" >&2; fi; exit $code; }}"
)


rule notebook:
    output:
        L("executed", step="template", job="{name}.never"),
    log:
        notebook=L("executed", step="template", job="{name}.ipynb"),
        stderr=L("log", step="template", job="{name}"),
        bench=L("bench", step="template", job="{name}"),
    params:
        step="",
        json="{}",
        html="",
    threads: 1
    resources:
        mem_mb=1000,
    shell:
        NOTEBOOK_SHELL
