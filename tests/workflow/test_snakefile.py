"""The Snakefile's structure: lint, and what the default target covers (dry runs, no jobs)."""

import subprocess
import sys
import tempfile

import pytest

from spine import calendar as cal
from spine import steps
from tests.helpers import REPO, planned, run_snakemake, scenario_config

pytestmark = pytest.mark.e2e


def test_lint_leaves_only_the_per_rule_conda_advice():
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=REPO,
                          capture_output=True, text=True)
    lints = {line.strip() for line in (proc.stdout + proc.stderr).splitlines()
             if line.strip().startswith("* ")}
    # One environment for every rule, built from pyproject.toml (docs/architecture.md).
    assert lints == {"* Specify a conda environment or container for each rule.:"}


def test_weekly_default_target_covers_recently_published_weeks(tmp_path):
    config = scenario_config(lake_root=str(tmp_path / "lake"), as_of="2025-08-01",
                             tiers=["T1", "T2"], revision_lookback_weeks=2)
    proc = run_snakemake(tmp_path, config, "--dry-run")
    counts = planned(proc)
    expected = sum(len(cal.recent_weeks(t, "2025-08-01", 2)) for t in ("T1", "T2"))
    # the fetches, then the run's one gate job (the checkpoint between the stages): the derive
    # stage is planned from its verdicts
    assert counts == {"fetch": expected, "gate": 1, "weekly": 1} and expected == 4
    assert not (tmp_path / "lake").exists(), "a dry run writes nothing"


def test_notebook_defaults_use_a_temporary_lake():
    cfg = steps.notebook_config({"as_of": "2025-08-01"})
    assert cfg["lake_root"].startswith(tempfile.gettempdir())
    assert not cfg["lake_root"].startswith(str(REPO))
    assert cfg["synthetic"]["size"] == "small"


def test_refetch_target_as_documented(tmp_path):
    """The HANDLE_REVISION runbook's command: re-fetch named weeks now."""
    config = scenario_config(lake_root=str(tmp_path / "lake"), as_of="2025-08-01")
    proc = run_snakemake(tmp_path, config, "refetch", "--dry-run", "--config",
                         "weeks=[2025-06-02]", "tiers=[T2]")
    assert planned(proc).get("fetch") == 1
    bad = run_snakemake(tmp_path, config, "refetch", "--dry-run", "--config",
                        "weeks=[2025-06-03]", check=False)
    assert bad.returncode != 0 and "config key 'weeks.0'" in bad.stdout + bad.stderr
    assert "Traceback" not in bad.stdout + bad.stderr


def test_a_run_target_without_its_key_says_what_it_needs(tmp_path):
    config = {"lake_root": str(tmp_path / "lake"), "as_of": "2025-08-01"}
    proc = run_snakemake(tmp_path, config, "backfill", "--dry-run", check=False)
    assert proc.returncode != 0
    assert "`backfill` needs config key 'start'" in proc.stdout + proc.stderr


def test_make_lint_help_and_clean_lake(tmp_path):
    lint = subprocess.run(["make", "lint"], cwd=REPO, capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    helped = subprocess.run(["make", "help"], cwd=REPO, capture_output=True, text=True)
    for target in ("run", "test", "test-fast", "lab", "sync-notebooks", "bench", "faults", "lint",
                   "lock", "clean-lake"):
        assert f"make {target} " in helped.stdout
    # test-fast selects the tests that do not start Snakemake (the whole suite is CI's)
    fast = subprocess.run(["make", "test-fast", "PYTEST_ARGS=--collect-only -q"], cwd=REPO,
                          capture_output=True, text=True)
    assert fast.returncode == 0, fast.stdout[-2000:] + fast.stderr[-2000:]
    selected = [line for line in fast.stdout.splitlines() if "::" in line]
    assert selected and not any(line.startswith("tests/workflow/test_core") for line in selected)
    assert any(line.startswith("tests/unit/test_warm.py") for line in selected)
    # clean-lake, in a scratch folder with a lake of its own
    (tmp_path / "data" / "clean").mkdir(parents=True)
    makefile = str(REPO / "Makefile")
    refused = subprocess.run(["make", "-f", makefile, "clean-lake"], cwd=tmp_path,
                             capture_output=True, text=True)
    assert refused.returncode != 0 and "CONFIRM=yes" in refused.stdout + refused.stderr
    assert (tmp_path / "data").exists()
    done = subprocess.run(["make", "-f", makefile, "clean-lake", "CONFIRM=yes"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert done.returncode == 0 and not (tmp_path / "data").exists()
