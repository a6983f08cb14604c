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
