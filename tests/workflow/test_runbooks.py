"""Every runbook is executed as written: each ```bash block, in order, in one shell, in a scratch
copy of the repository (so `data/` is the copy's), with the project's environment on PATH.

The copy's config/config.yaml is the repository's with a smaller synthetic source (`small`,
OTCE only, a 1-week lookback) so that the weekly update and backfills fit in the test suite;
the commands themselves are not changed. Commands that name their own tiers or lake_root keep
them."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO

pytestmark = pytest.mark.e2e
RUNBOOKS = REPO / "workflows"


def bash_blocks(markdown: Path) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", markdown.read_text(), re.S)


def scratch_repo(tmp_path: Path) -> Path:
    work = tmp_path / "repo"
    ignore = shutil.ignore_patterns(".git", ".venv", "data", ".snakemake", "__pycache__")
    shutil.copytree(REPO, work, ignore=ignore)
    config = yaml.safe_load((work / "config" / "config.yaml").read_text())
    config.update(tiers=["OTCE"], revision_lookback_weeks=1)
    config["synthetic"]["size"] = "small"
    (work / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return work


def run_runbook(path: Path, tmp_path: Path, blocks: list[str] | None = None) -> str:
    blocks = blocks if blocks is not None else bash_blocks(path)
    assert blocks, f"{path} has no bash block"
    work = scratch_repo(tmp_path)
    # `set -x` echoes each command so a failure shows which one; demonstration lakes under
    # /tmp/market-spine-* are the runbooks' own, removed before and after
    script = "set -euxo pipefail\n" + "\n".join(blocks)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    for demo in Path("/tmp").glob("market-spine-*demo"):
        shutil.rmtree(demo)
    try:
        proc = subprocess.run(["bash", "-c", script], cwd=work, env=env, capture_output=True,
                              text=True, timeout=1200)
    finally:
        for demo in Path("/tmp").glob("market-spine-*demo"):
            shutil.rmtree(demo, ignore_errors=True)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{path.name} failed:\n{out[-6000:]}"
    assert "Traceback" not in out, out[-6000:]
    return out


def test_every_runbook_is_tested():
    tested = {"WEEKLY_DATA_UPDATE.md", "BACKFILL_HISTORICAL.md", "HANDLE_REVISION.md",
              "ADD_DATASOURCE.md"}
    have = {p.name for p in RUNBOOKS.glob("*/*.md")}
    assert have == tested, "a runbook without a test (add it here and below)"


def test_weekly_data_update_runbook(tmp_path):
    out = run_runbook(RUNBOOKS / "operational" / "WEEKLY_DATA_UPDATE.md", tmp_path)
    assert "Gate summary: " in out and " 0 failed" in out
    assert out.count("Nothing to be done") >= 2  # after the run and after the repair
    repair = out.split("rm ")[-1]
    assert "calc" in repair and "localrule fetch:" not in repair  # rebuilt, never re-fetched


def test_backfill_runbook(tmp_path):
    out = run_runbook(RUNBOOKS / "operational" / "BACKFILL_HISTORICAL.md", tmp_path)
    assert "Gate summary: 3 passed, 0 failed" in out and "Nothing to be done" in out
    assert re.search(r"OTCE\s*│\s*3", out), "DuckDB counts three weeks"


def test_handle_revision_runbook(tmp_path):
    out = run_runbook(RUNBOOKS / "operational" / "HANDLE_REVISION.md", tmp_path)
    assert re.search(r"^\d+ added, \d+ removed, \d+ changed$", out, re.M)
    assert "revision_report" in out and "_to_" in out
    assert "Nothing to be done" in out
    assert "clean pinned to" in out


def test_add_datasource_runbook(tmp_path):
    out = run_runbook(RUNBOOKS / "development" / "ADD_DATASOURCE.md", tmp_path)
    assert "passed" in out and "Gate summary: 1 passed, 0 failed" in out
    assert "fetch_regsho" in out and "short_volume" in out
    for day in ("2025-06-02", "2025-06-03", "2025-06-04", "2025-06-05", "2025-06-06"):
        assert day in out
    assert not (tmp_path / "repo" / "data").exists(), "the demonstration never writes data/"


def test_readme_pipeline_and_revision_commands(tmp_path):
    """The README's "Running the pipeline" and "Revisions" commands, in order, as written."""
    readme = (REPO / "README.md").read_text()
    blocks = []
    for heading in ("## Running the pipeline", "## Revisions"):
        section = readme.split(heading, 1)[1].split("\n## ", 1)[0]
        blocks += re.findall(r"```bash\n(.*?)```", section, re.S)
    assert len(blocks) == 2
    out = run_runbook(REPO / "README.md", tmp_path, blocks)
    assert re.search(r"^\d+ added, \d+ removed, \d+ changed$", out, re.M)
    assert "Nothing to be done" in out
