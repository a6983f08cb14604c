"""The Snakefile's structure: lint, and what the default target covers (dry runs, no jobs)."""

import re
import subprocess
import sys
import tempfile

from spine import calendar as cal
from spine import pipeline
from tests.helpers import REPO, run_snakemake


def job_counts(output: str) -> dict[str, int]:
    table = output.split("Job stats:")[1].split("\n\n")[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def test_lint_leaves_only_the_per_rule_conda_advice():
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=REPO,
                          capture_output=True, text=True)
    lints = {line.strip() for line in (proc.stdout + proc.stderr).splitlines()
             if line.strip().startswith("* ")}
    # One environment for every rule, built from pyproject.toml (docs/architecture.md).
    assert lints == {"* Specify a conda environment or container for each rule.:"}


def test_weekly_default_target_covers_recently_published_weeks(tmp_path):
    config = {"lake_root": str(tmp_path / "lake"), "as_of": "2025-08-01", "tiers": ["T1", "T2"],
              "revision_lookback_weeks": 2, "synthetic": {"size": "small"}}
    proc = run_snakemake(tmp_path, config, "--dry-run")
    counts = job_counts(proc.stdout)
    expected = sum(len(cal.recent_weeks(t, "2025-08-01", 2)) for t in ("T1", "T2"))
    # the fetches are checkpoints: what follows them is planned once they have run
    assert counts["fetch"] == expected == 4
    assert counts["weekly"] == 1 and counts["gate_summary"] == 1
    assert not (tmp_path / "lake").exists(), "a dry run writes nothing"


def test_notebook_defaults_use_a_temporary_lake():
    cfg = pipeline.notebook_config({"as_of": "2025-08-01"})
    assert cfg["lake_root"].startswith(tempfile.gettempdir())
    assert not cfg["lake_root"].startswith(str(REPO))
    assert cfg["synthetic"]["size"] == "small"


def test_refetch_target_as_documented(tmp_path):
    """The HANDLE_REVISION runbook's command: re-fetch named weeks now."""
    config = {"lake_root": str(tmp_path / "lake"), "as_of": "2025-08-01",
              "synthetic": {"size": "small"}}
    proc = run_snakemake(tmp_path, config, "refetch", "--dry-run", "--config",
                         "weeks=[2025-06-02]", "tiers=[T2]")
    assert job_counts(proc.stdout).get("fetch") == 1
    bad = run_snakemake(tmp_path, config, "refetch", "--dry-run", "--config",
                        "weeks=[2025-06-03]", check=False)
    assert bad.returncode != 0 and "config key 'weeks.0'" in bad.stdout + bad.stderr
