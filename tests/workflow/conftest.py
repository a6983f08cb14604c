"""The slow end-to-end runs, made once per session and shared: an 8-week T2 lake built by the
weekly update, a restatement of a week in its middle seen by the next weekly update, and an
identical re-fetch after that. Tests that damage a lake work on a copy."""

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.helpers import run_snakemake, scenario_config

RESTATED = "2025-06-16"  # T2 week restated on 2025-08-15, in the middle of the 8 weeks
AS_OF = {"initial": "2025-08-14", "revised": "2025-08-15", "identical": "2025-08-16"}


def revision_config(root: Path) -> dict:
    config = scenario_config("revision", lake_root=str(root))
    assert config["synthetic"]["revisions"] == [
        {"tier": "T2", "week_start": RESTATED, "published": AS_OF["revised"]}]
    return config


@dataclass
class Runs:
    root: Path
    config: dict
    work: Path
    procs: dict = field(default_factory=dict)  # name -> completed snakemake run
    dry: dict = field(default_factory=dict)  # name -> the dry run right after it

    def snake(self, *args, check=True, root: Path | None = None):
        config = dict(self.config, lake_root=str(root or self.root))
        return run_snakemake(self.work, config, *args, check=check)

    def copy(self, dest: Path) -> Path:
        """A copy of the lake (mtimes kept) for a test that damages it."""
        shutil.copytree(self.root, dest, symlinks=True)
        return dest


@pytest.fixture(scope="session")
def revision_runs(tmp_path_factory) -> Runs:
    work = tmp_path_factory.mktemp("revision")
    runs = Runs(root=work / "lake", config=revision_config(work / "lake"), work=work)
    for name, as_of in AS_OF.items():
        runs.procs[name] = runs.snake("--config", f"as_of={as_of}")
        runs.dry[name] = runs.snake("--config", f"as_of={as_of}", "-n")
    return runs
