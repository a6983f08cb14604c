"""The warm runner through the real Snakefile: the same lake as plain processes, and Ctrl-C of
a run ends its steps and its server (the unit tests in tests/unit/test_warm.py cover each
signal, refusal and lifetime rule with real processes)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from spine import warm
from tests.helpers import REPO, alive, planned, run_snakemake, scenario_config

pytestmark = pytest.mark.e2e

CONFIG = scenario_config(tiers=["T2"], as_of="2025-08-14", revision_lookback_weeks=2)


def parquet_data(lake: Path) -> dict[str, object]:
    """Every Parquet file of the lake by its path, as data, less the wall-clock times a run
    stamps (a raw capture's `retrieved_at`; a ledger event's time, in its name too)."""
    out = {}
    for path in sorted(lake.rglob("*.parquet")):
        rel = str(path.relative_to(lake))
        table = pq.read_table(path)
        if rel.startswith("ledger/"):
            row = table.drop_columns(["recorded_at"]).to_pylist()[0]
            for key in ("report", "request"):
                if row.get(key):
                    row[key] = {k: v for k, v in json.loads(row[key]).items()
                                if not k.endswith("_at")}
            rel = rel.rsplit("/", 1)[0] + "/" + path.name.split("-", 1)[1]
            out[rel] = row
        else:
            out[rel] = table.drop_columns([c for c in table.column_names if c == "retrieved_at"])
    return out


def test_the_warm_runner_writes_exactly_what_plain_processes_write(tmp_path):
    """One weekly update through the warm runner and one with SPINE_WARM=0 (each step in its
    own process): every Parquet file of every layer holds the same data."""
    lakes = {}
    for name, env in (("warm", {}), ("plain", {"SPINE_WARM": "0"})):
        lakes[name] = tmp_path / name / "lake"
        (tmp_path / name).mkdir()
        run_snakemake(tmp_path / name, dict(CONFIG, lake_root=str(lakes[name])), env=env)
        runners = {line.split("\t")[-1] for tsv in (lakes[name] / "benchmarks").rglob("*.tsv")
                   for line in tsv.read_text().splitlines()[1:]}
        assert runners == ({"warm"} if name == "warm" else {"process"})
    warm_files, plain_files = parquet_data(lakes["warm"]), parquet_data(lakes["plain"])
    assert sorted(warm_files) == sorted(plain_files)
    assert any(k.startswith("calc/") for k in warm_files)
    for rel, data in warm_files.items():
        other = plain_files[rel]
        assert (data.equals(other) if hasattr(data, "equals") else data == other), rel


def test_ctrl_c_ends_the_runs_steps_and_its_server_and_the_same_command_completes(tmp_path):
    lake = tmp_path / "lake"
    configfile = tmp_path / "config.yaml"
    configfile.write_text(yaml.safe_dump(dict(CONFIG, lake_root=str(lake))))
    cmd = [sys.executable, "-m", "snakemake", "--configfile", str(configfile)]
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    output = open(tmp_path / "run.log", "w")
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=output,
                            stderr=subprocess.STDOUT, start_new_session=True)
    path, steps = warm.socket_path(str(lake)), []
    deadline = time.monotonic() + 120
    while not steps and time.monotonic() < deadline:
        try:
            status = warm.status(path)
            steps = status["children"]
        except OSError:
            time.sleep(0.05)
    assert steps, "no step ran through the warm runner"
    os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
    proc.wait(timeout=120)
    assert proc.returncode != 0
    # a few lines: which steps were interrupted, and that the same command resumes
    said = (tmp_path / "run.log").read_text()
    after = said.split("Terminating processes on user request")[-1].splitlines()
    assert "Traceback" not in said and '"cells"' not in said and "KeyboardInterrupt" not in said
    assert len(after) < 40 and "The same command resumes where it stopped." in said

    deadline = time.monotonic() + 15
    while any(map(alive, [status["pid"], *steps])) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(map(alive, [status["pid"], *steps]))
    assert not os.path.exists(path)
    done = run_snakemake(tmp_path, dict(CONFIG, lake_root=str(lake)))
    assert planned(run_snakemake(tmp_path, dict(CONFIG, lake_root=str(lake)), "-n")) == {}, \
        done.stdout[-2000:]
