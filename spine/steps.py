"""The steps: the config each reads, the parameters it gets, and a notebook's config by hand.

Every step is a papermill run of `notebooks/<step>.ipynb` (`spine.notebooks` runs it), made by
one rule of the same name. `STEPS` is the one declaration of the config keys a step reads: the
Snakefile passes exactly those (so changing another key never reruns the step), and in a
pipeline run the step gets a `StepConfig` that refuses any other key, so the declaration cannot
drift from what the step really reads.

By hand (JupyterLab), a notebook's parameters cell leaves `lake_root` out: `notebook_config`
gives it a scratch lake on the small synthetic source, and `upstream` has the Snakefile make
what the step reads there (`snakemake refetch --until ...`): the Snakefile is the one
orchestrator, by hand as in a run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from spine import config as config_
from spine import lake
from spine.ingest.ledger import LakeState
from spine.lake import stamp
from spine.plan import HISTORY_CALCS
from spine.vocabulary import NMS_TIERS, REPORTS

REPO = Path(__file__).resolve().parents[1]  # the Snakefile, when not run from a repository

# step -> the config keys it reads
STEPS: dict[str, tuple[str, ...]] = {
    "fetch": ("lake_root", "as_of", "source", "synthetic", "finra_api", "finra_files"),
    "fetch_regsho": ("lake_root", "as_of", "regsho", "synthetic"),
    "gate": ("lake_root", "as_of", "gates"),
    "clean": ("lake_root",),
    "calc": ("lake_root",),
    "weekly_report": ("lake_root", "report"),
    "revision_report": ("lake_root", "report"),
    "symbol_report": ("lake_root",),
}


class StepConfigError(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


class StepConfig(dict):
    """The config of one step in a pipeline run: exactly the keys `STEPS` declares for it."""

    def __init__(self, step: str, values: dict):
        declared = set(STEPS[step])
        missing, extra = declared - set(values), set(values) - declared
        if missing or extra:
            raise StepConfigError(f"step {step!r} got config keys {sorted(values)}; "
                                  f"spine/steps.py STEPS declares {sorted(declared)}")
        super().__init__(values)
        self.step = step
        stamp.note_step(step, values)  # what the files it writes say made them

    def _check(self, key: str) -> None:
        if key not in self and key != "by_hand":
            raise StepConfigError(
                f"step {self.step!r} reads config key {key!r}, which spine/steps.py STEPS "
                f"does not give it (it gets {sorted(self)}); declare it there")

    def __getitem__(self, key: str):
        self._check(key)
        return super().__getitem__(key)

    def get(self, key: str, default=None):
        self._check(key)
        return super().get(key, default)


def notebook_config(overrides: dict, step: str | None = None) -> dict:
    """The config a notebook runs with. The pipeline passes exactly the keys `step` reads
    (`STEPS`) and gets them as a StepConfig, which refuses any other key. By hand, the
    repository's config with `overrides`; without `lake_root` it is the embedded `small` source
    in a fresh temporary lake, so running a notebook in JupyterLab never writes into the
    repository (`upstream` has the Snakefile make what the step reads)."""
    overrides = dict(overrides)
    if step and set(overrides) == set(STEPS[step]):
        return StepConfig(step, overrides)
    by_hand = not overrides.get("lake_root")
    if by_hand:
        overrides["lake_root"] = str(Path(tempfile.mkdtemp(prefix="market-spine-")) / "lake")
        overrides["lake_store"] = ""  # a scratch lake is nobody's working copy
        overrides["synthetic"] = {"size": "small", **overrides.get("synthetic", {})}
    cfg = config_.load(**overrides) | {"by_hand": by_hand}
    if not by_hand:  # a lake named by hand (the real one, to look at): read, never written
        lake.LOOKING.add(Path(cfg["lake_root"]).absolute())
        print(f"Looking at {cfg['lake_root']}: this notebook reads it and writes nothing into "
              "it (the pipeline writes the lake; leave lake_root out to work in a scratch lake)")
    return cfg


def snakemake(args: list[str], log=None, cwd: Path | None = None) -> int:
    """Run the Snakefile with this interpreter's Snakemake: the repository's the command is
    run from, else the installed package's. Returns its exit status."""
    cmd = [sys.executable, "-m", "snakemake", *args]
    print("$ snakemake " + " ".join(args), file=log or sys.stdout, flush=True)
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    workdir = cwd or (Path.cwd() if (Path.cwd() / "Snakefile").exists() else REPO)
    return subprocess.run(cmd, cwd=workdir, env=env, stdout=log,
                          stderr=subprocess.STDOUT).returncode


# what a notebook opened by hand reads: the ingest up to the rule named (`refetch --until`);
# for the steps after clean, also the derive stage short of the reports (`reports --omit-from`:
# `--until calc` would stop at the calculations that read no other calculation)
UPSTREAM = {"gate": "fetch", "clean": "gate", "calc": "gate", "weekly_report": "gate",
            "revision_report": "gate", "symbol_report": "gate"}
DERIVED_FIRST = ("calc", "weekly_report", "revision_report", "symbol_report")


def upstream(config: dict, step: str, tiers: list[str], weeks: list[str], **overrides) -> None:
    """For a notebook opened by hand on its scratch lake: the Snakefile makes what the step
    reads, as a pipeline run would: `snakemake refetch --until fetch|gate` for the tiers and
    weeks, then, for a step after clean, `snakemake reports --omit-from <the reports>` for
    what the gate's verdicts let follow (the derive stage is planned after the gate). In a
    pipeline run, or on a lake named by hand, it does nothing: Snakemake ran the steps before,
    and a missing input must fail loudly rather than be made behind the DAG's back.
    `overrides`: config keys for this run (a later `as_of`, to see a revision)."""
    if not config.get("by_hand"):
        return
    folder = Path(config["lake_root"]).parent
    values = {k: v for k, v in config.items() if k != "by_hand"} | {
        "tiers": list(tiers), "weeks": [str(w) for w in weeks], "start": "", "end": ""} | overrides
    configfile = folder / "config.yaml"
    configfile.write_text(yaml.safe_dump(json.loads(json.dumps(values, default=str))))
    runs = [["refetch", "--until", UPSTREAM[step]]]
    if step in DERIVED_FIRST:
        runs.append(["reports", "--omit-from", *REPORTS, "revision_index"])
    with open(folder / "snakemake.log", "a") as log:
        for run in runs:
            if snakemake(["--cores", "2", *run, "--configfile", str(configfile), "--nolock"],
                         log=log):
                raise RuntimeError(
                    f"making what step {step} reads ({', '.join(tiers)} "
                    f"{', '.join(map(str, weeks))}) "
                    f"failed; the Snakemake log is {folder / 'snakemake.log'}")


def parameters(step: str, config: dict, **params) -> str:
    """The papermill parameters of a step as JSON: its own (wildcards, plan facts) and the
    declared part of the config, keys sorted so that equal parameters compare equal."""
    return json.dumps({**params, "config": {k: config[k] for k in STEPS[step]}}, sort_keys=True,
                      default=str)


def report_inputs(step: str, root: str | Path, params: dict) -> list[Path]:
    """The files a report step reads, as rules/derive.smk declares them (its rule's `input:`),
    from the step's parameters: what the report's manifest record says it was made from. A
    weekly report: per tier the gate reports of the captures it shows, the override event that
    lets clean's capture through, the week's calculations and the trend charts' weeks'. A
    revision report: both captures, the new one's gate report, the override that let the new one
    in (not the earlier weeks' `symbol_week`: see below). A symbol report: clean, `symbol_week` and
    `symbol_trend` of each held week (and `short_volume_weekly`, for an NMS tier, where Reg SHO
    made it), both captures of each revision."""
    def at(kind: str, **keys) -> Path:
        return lake.path(root, kind, **keys)

    files: list[Path] = []
    if step == "weekly_report":
        week = params["week_start"]
        for tier, v in params["tiers"].items():
            files += [at("gate", tier=tier, week_start=week, capture_id=c) for c in v["captures"]]
            if v["override"]:
                files.append(at("ledger_event", tier=tier, week_start=week,
                                event_file=v["override"]))
            files += [at("calc", calc=n, tier=tier, week_start=week) for n in v["calcs"]]
            files += [at("calc", calc=n, tier=tier, week_start=w) for w in v["history"]
                      for n in HISTORY_CALCS]
    elif step == "revision_report":
        tier, week, new = params["tier"], params["week_start"], params["new"]
        files += [at("capture", tier=tier, week_start=week, capture_id=c)
                  for c in (params["old"], new)]
        files.append(at("gate", tier=tier, week_start=week, capture_id=new))
        # not the earlier weeks' symbol_week it also reads: which weeks those are is a param, so
        # a change of the window reruns the report through Snakemake's params trigger, which a
        # copied lake (no Snakemake metadata) does not have; `spine verify` would then call the
        # report stale over context weeks, not over what it reports (tests/workflow/test_core.py)
        override = LakeState.read(root).get(tier, week).overrides.get(new)
        if override:
            files.append(at("ledger_event", tier=tier, week_start=week, event_file=override.file))
    elif step == "symbol_report":
        tier = params["tier"]
        for w in params["weeks"]:
            files.append(at("clean", tier=tier, week_start=w))
            files += [at("calc", calc=n, tier=tier, week_start=w)
                      for n in ("symbol_week", "symbol_trend")]
            short = at("calc", calc="short_volume_weekly", tier=tier, week_start=w)
            if tier in NMS_TIERS and short.exists():
                files.append(short)
        files += [at("capture", tier=tier, week_start=w, capture_id=c)
                  for w, old, new in params["revisions"] for c in (old, new)]
    return files
