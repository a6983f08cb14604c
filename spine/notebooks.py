"""The runner: one step's notebook executed in process, and rendered to HTML for a report.

Every step is a papermill run of `notebooks/<step>.ipynb`; the executed copy is kept under the
lake's `runs/`. What config each step reads, and its parameters: `spine.steps`.

    python -m spine.notebooks <step> <executed.ipynb> --params '<json>' [--html <report.html>]

runs a step the way the Snakefile does: papermill with its in-process engine (ploomber-engine's
`embedded`), so a job pays for one interpreter and one set of imports instead of two (papermill
plus a Jupyter kernel). Measured on this 2-core machine: a trivial notebook took 5.6 s through
the papermill CLI and a kernel, 1.9 s in process. JupyterLab users run the same notebooks on the
ordinary `python3` kernel; nothing in a notebook depends on the engine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path

from spine.vocabulary import REPORTS, STEPS

# Standard library only at the top: `python -m spine.notebooks` is each job's thin client
# (tests/unit/test_warm.py); what a step needs is imported by the warm server that runs it.

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def render_html(notebook: str | Path, html: str | Path, inputs: dict | None = None) -> None:
    """Executed notebook -> a self-contained HTML report: input cells hidden, plots embedded as
    PNG data, and no script loaded from the network, so the file opens offline. `inputs`: what
    the report was made from, for the manifest (lake-relative path -> SHA-256)."""
    import nbformat
    from nbconvert import HTMLExporter

    from spine import lake

    exporter = HTMLExporter(template_name="lab")
    exporter.exclude_input = True
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    exporter.embed_images = True
    exporter.mathjax_url = ""
    exporter.require_js_url = ""
    exporter.widget_renderer_url = ""
    nb = nbformat.read(str(notebook), as_version=4)
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": _title(nb)}})
    # wide tables scroll inside the page instead of being cut off at its edge
    body = body.replace("</head>", "<style>.jp-OutputArea-output{overflow-x:auto}"
                        ".jp-RenderedHTMLCommon table{font-size:12px}</style></head>", 1)
    lake.write_file_atomic(Path(html), body.encode(), inputs=inputs)


def _title(nb) -> str:
    """The browser tab's title: the report's first Markdown heading (it shows "Notebook"
    otherwise)."""
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            text = out.get("data", {}).get("text/markdown", "")
            for line in str(text).splitlines():
                if line.startswith("# "):
                    return "Market Spine: " + line[2:].strip().replace("`", "")
    return "Market Spine report"


PLOTTING_STEPS = ("weekly_report", "revision_report", "symbol_report")
# Imported by the embedded engine whether a notebook plots or not: ploomber-engine's optional
# profiling imports matplotlib.pyplot, and its shell enables IPython's inline backend. Both are
# optional there (skipped when absent). Steps that plot nothing run with them hidden: 1.3 s less
# per job (`python -X importtime`), most of a small job's start-up.
PLOTTING_MODULES = ("matplotlib.pyplot", "matplotlib_inline")


@contextlib.contextmanager
def _without(modules: tuple[str, ...]):
    hidden = [m for m in modules if m not in sys.modules]
    for m in hidden:
        sys.modules[m] = None  # importing it now raises ModuleNotFoundError
    try:
        yield
    finally:
        for m in hidden:
            if sys.modules.get(m, 0) is None:
                del sys.modules[m]


def run(step: str, executed: str | Path, params: dict, html: str | Path | None = None) -> None:
    """Run one step's notebook in this process and keep the executed copy at `executed`."""
    with _without(() if step in PLOTTING_STEPS else PLOTTING_MODULES):
        _run(step, executed, params, html)


def _engine() -> str:
    """ploomber-engine's in-process engine, registered under the name "spine". The executed
    notebook is written when the step starts and when it ends, not around every cell. And one
    fix: when a cell fails, ploomber-engine inserts a banner cell without papermill's metadata, and
    papermill then fails on that cell (`AttributeError: papermill`), hiding the real error. The
    banner gets the metadata, so papermill raises PapermillExecutionError naming the cell."""
    from IPython.core.history import HistoryManager
    from papermill.engines import papermill_engines
    from ploomber_engine import ipython as shells
    from ploomber_engine.engine import ProfilingEngine

    class Shell(shells.PloomberShell):
        """A step's shell keeps no IPython history: no writes to ~/.ipython, and no history
        thread (a thread in the step would keep the gate step from forking per tier)."""

        def init_history(self):
            self.history_manager = HistoryManager(shell=self, parent=self, enabled=False)
            self.configurables.append(self.history_manager)

    if shells.PloomberShell.__name__ != "Shell":
        shells.PloomberShell = Shell

    class Engine(ProfilingEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, **kwargs):
            # papermill writes the whole notebook before and after every cell (a fifth of a
            # small step's time); it is written when the step starts and when it ends
            nb_man.save = lambda **kw: None
            try:
                return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)
            finally:
                del nb_man.save
                nb_man.nb.metadata["spine"] = _made()  # what made it, and what it wrote
                for cell in nb_man.nb.cells:
                    cell.metadata.setdefault("papermill", {
                        "exception": False, "start_time": None, "end_time": None,
                        "duration": None, "status": "completed"})

    papermill_engines.register("spine", Engine)
    return "spine"


# What the running step's executed notebook says made it (its metadata's `spine`): the report
# steps' declared inputs (spine.steps.report_inputs), hashed before the step reads them.
_INPUTS: dict[str, str] = {}


def _made() -> dict:
    """The stamp of the running step (spine/lake/stamp.py), its inputs (a report's declared
    ones, and those of every file it wrote) and the files it wrote."""
    from spine import lake
    from spine.lake import stamp

    wrote = stamp.written()
    inputs = dict(_INPUTS)
    for w in wrote:
        inputs |= w.get("inputs") or {}
    return {"made": stamp.stamp(lake.producer()), "inputs": inputs,
            "wrote": {w["path"]: w["sha256"] for w in wrote}}


def _run(step: str, executed: str | Path, params: dict, html: str | Path | None) -> None:
    import papermill

    from spine import lake, steps

    if step not in STEPS:
        raise ValueError(f"unknown step {step!r}; one of {', '.join(STEPS)}")
    Path(executed).parent.mkdir(parents=True, exist_ok=True)
    root = params.get("config", {}).get("lake_root")
    _INPUTS.clear()
    if root and step in REPORTS:  # the reports: what the Snakefile declares they read
        _INPUTS.update(lake.made_from(root, *[p for p in steps.report_inputs(step, root, params)
                                              if p.exists()]))
    papermill.execute_notebook(str(NOTEBOOKS / f"{step}.ipynb"), str(executed),
                               parameters=params, engine_name=_engine(), progress_bar=False,
                               cwd=None)  # the job's own (Snakemake's) directory: a relative lake_root works
    if html:
        render_html(executed, html, inputs=dict(_INPUTS))


def _cell_error(executed: str | Path) -> tuple[str, str] | None:
    """The error a failed cell of an executed notebook shows (its type and message)."""
    import nbformat

    try:
        nb = nbformat.read(str(executed), as_version=4)
    except Exception:  # noqa: BLE001 - no notebook: the caller has papermill's message
        return None
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                return out["ename"], out["evalue"]
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spine.notebooks",
                                     description="run one pipeline step's notebook")
    parser.add_argument("step", choices=sorted(STEPS))
    parser.add_argument("executed", help="where the executed notebook is kept")
    parser.add_argument("--params", required=True, help="papermill parameters as JSON")
    parser.add_argument("--html", help="also render the executed notebook to this HTML file")
    parser.add_argument("--bench", help="the step's benchmark record (written by spine.warm.run: "
                                        "wall time, peak RSS, CPU time)")
    args = parser.parse_args(argv)
    os.environ["SPINE_PRODUCER"] = f"{args.step} {args.executed}"  # the lake's manifest says so
    params = json.loads(args.params)
    where = ", ".join(f"{k}={params[k]}" for k in PARTITION_KEYS if params.get(k))
    step = f"step {args.step}" + (f" ({where})" if where else "")
    try:
        run(args.step, args.executed, params, args.html)
    except KeyboardInterrupt:
        print(f"{step} interrupted; the same command resumes it", file=sys.stderr)
        return 130
    except Exception as err:  # the executed notebook holds the traceback; say where it is
        if type(err).__name__ == "PapermillExecutionError":
            ename, evalue = _cell_error(args.executed) or (err.ename, err.evalue)
            print(f"{step} failed: {ename}: {evalue}\n"
                  f"The executed notebook, with the traceback, is {args.executed}",
                  file=sys.stderr)
            return 1
        raise
    return 0


# what names a step's partition in its one-line failure (its parameters)
PARTITION_KEYS = ("calc", "tier", "week_start", "symbol", "old", "new")


if __name__ == "__main__":  # a thin client: the run's warm server runs the step (spine/warm.py)
    from spine import warm

    bench = sys.argv[sys.argv.index("--bench") + 1] if "--bench" in sys.argv[:-1] else None
    sys.exit(warm.run("spine.notebooks", sys.argv[1:], bench=bench))
