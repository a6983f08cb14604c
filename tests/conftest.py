import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def small_config(tmp_path):
    """A validated config on the `small` synthetic source in a temporary lake."""
    from spine import config

    return config.load(lake_root=str(tmp_path / "lake"), as_of="2025-08-01",
                       synthetic={"size": "small"})


def run_snakemake(tmp_path: Path, config: dict, *args: str, check: bool = True,
                  env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the real Snakefile from the repository with a config file written to tmp_path."""
    configfile = tmp_path / "config.yaml"
    configfile.write_text(yaml.safe_dump(config))
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
               **(env or {}))
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", str(configfile),
           "--keep-going", *args]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def monday(text: str) -> dt.date:
    day = dt.date.fromisoformat(text)
    assert day.weekday() == 0, text
    return day
