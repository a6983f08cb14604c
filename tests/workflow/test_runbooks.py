"""Runbook commands are executed as written, in a scratch copy of the repository (so `data/`
is the copy's), with the project's environment on PATH."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

pytestmark = pytest.mark.e2e
MARKER = "<!-- runbook-test"


def runbook_blocks(runbook: Path) -> list[str]:
    text = runbook.read_text()
    blocks = []
    for part in text.split(MARKER)[1:]:
        match = re.search(r"```bash\n(.*?)```", part, re.S)
        assert match, f"{runbook}: a runbook-test marker without a bash block"
        blocks.append(match.group(1))
    return blocks


def scratch_repo(tmp_path: Path) -> Path:
    work = tmp_path / "repo"
    ignore = shutil.ignore_patterns(".git", ".venv", "data", ".snakemake", "__pycache__")
    shutil.copytree(REPO, work, ignore=ignore)
    return work


def test_add_datasource_runbook(tmp_path):
    runbook = REPO / "workflows" / "development" / "ADD_DATASOURCE.md"
    blocks = runbook_blocks(runbook)
    assert blocks
    work = scratch_repo(tmp_path)
    script = "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n" + "\n".join(blocks)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    proc = subprocess.run(["bash", "-c", script], cwd=work, env=env, capture_output=True,
                          text=True, timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "passed" in out and "Gate summary: 1 passed, 0 failed" in out
    assert "fetch_regsho" in out and "short_volume" in out
    for day in ("2025-06-02", "2025-06-03", "2025-06-04", "2025-06-05", "2025-06-06"):
        assert day in out
    assert (work / "data/calc/short_volume/tier=T1/week_start=2025-06-02/part-0.parquet").exists()
