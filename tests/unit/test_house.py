"""The rules of the house (docs/architecture.md): one vocabulary, declared once in
spine/vocabulary.py; the ledger's state read without pandas."""

import re
import subprocess
import sys

from spine import config, steps, vocabulary
from tests.helpers import REPO


def test_the_config_schemas_enums_are_current():
    """config/schema.yaml's enums (tiers, sources, gate checks) are written from the code."""
    assert config.SCHEMA_PATH.read_text() == config.current_schema(), \
        "config/schema.yaml is out of date: run `python -m spine.config`"


def test_a_step_has_one_name_rule_notebook_and_config():
    """rule = notebook = step: each step of spine.vocabulary.STEPS has its config keys in
    spine.steps.STEPS, its notebook notebooks/<step>.ipynb and a rule of that name running it."""
    rules = "".join(p.read_text() for p in sorted((REPO / "rules").glob("*.smk")))
    made = dict(re.findall(r'(?:use rule notebook as|checkpoint) (\w+)(?: with)?:.*?step="(\w+)"',
                           rules, re.S))
    assert set(steps.STEPS) == set(vocabulary.STEPS)
    assert {p.stem for p in (REPO / "notebooks").glob("*.ipynb")} == set(vocabulary.STEPS)
    assert made == {s: s for s in vocabulary.STEPS}, made


def test_the_tiers_are_written_once():
    """No module, rule or config schema spells the tiers out again (tests and docs may)."""
    found = subprocess.run(["git", "grep", "-n", "-E", r"T1[\"']?(, ?|\|)[\"']?T2[\"']?(, ?|\|)[\"']?OTCE", "--", "spine",
                            "rules", "Snakefile", "config/schema.yaml"], cwd=REPO,
                           capture_output=True, text=True).stdout.splitlines()
    allowed = ("spine/vocabulary.py:", "config/schema.yaml:")  # the declaration; the generated enum
    assert [f for f in found if not f.startswith(allowed)] == []


def test_the_dataset_names_are_written_once():
    """The lake's dataset names are spelled in spine/vocabulary.py, and nowhere else in code."""
    found = subprocess.run(["git", "grep", "-n", "-E", "finra_(otc_weekly|regsho_daily)", "--",
                            "spine/*.py", "spine/**/*.py", "rules", "Snakefile"], cwd=REPO,
                           capture_output=True, text=True).stdout.splitlines()
    code = [f for f in found if not f.startswith("spine/vocabulary.py:")
            and not f.split(":", 2)[2].lstrip().startswith("#")]
    assert code == []


def test_the_ledgers_state_loads_no_pandas():
    """spine.ingest.ledger (the fold, LakeState) and the plan's week arithmetic it uses import
    no pandas: the plan's publication calendar and sources are imported where a run's
    partitions are asked for (spine/plan.py), not at the top."""
    probe = ("import sys; import spine.ingest.ledger; "
             "print(sorted(m for m in ('pandas', 'pyarrow.parquet') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and done.stdout == "['pyarrow.parquet']\n", \
        done.stdout + done.stderr


def test_a_jobs_command_loads_no_step_code():
    """`python -m spine.notebooks ...` is each job's thin client (the warm server runs the
    step): spine.notebooks imports papermill, the engine and the lake only inside its
    functions, where the server has them loaded already."""
    probe = ("import sys; import spine.notebooks; print(sorted(m for m in ('pandas', "
             "'papermill', 'nbformat', 'spine.lake') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and done.stdout == "[]\n", done.stdout + done.stderr


def _modules() -> dict[str, "Path"]:
    return {".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__"): p
            for p in sorted((REPO / "spine").rglob("*.py"))}


def test_no_module_over_400_lines():
    long = {m: n for m, p in _modules().items() if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}, "split it along what it does (docs/architecture.md draws the house)"


def test_no_import_circles():
    """Module-level imports between spine's modules form no circle (the house's floors)."""
    import ast

    modules = _modules()
    graph = {}
    for name, path in modules.items():
        deps = set()
        for node in ast.parse(path.read_text()).body:  # module level only
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                base = node.module
                deps |= {f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                         for a in node.names}
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names}
        graph[name] = {d for d in deps if d in modules and d != name}
    done, path = set(), []

    def visit(m):
        if m in path:
            raise AssertionError("import circle: " + " -> ".join(path[path.index(m):] + [m]))
        if m in done:
            return
        path.append(m)
        for d in sorted(graph[m]):
            visit(d)
        path.pop()
        done.add(m)

    for m in sorted(graph):
        visit(m)
