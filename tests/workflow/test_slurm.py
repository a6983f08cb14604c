"""The workflow on a real SLURM cluster: a one-node cluster started by the test on loopback
(munged, slurmctld and slurmd from Debian's slurm-wlm and munge: .ci/run installs them), the
shared scenario (the weekly update, a restatement seen by the next one, an identical re-fetch)
run through profiles/slurm, and its lake compared with the same scenario run locally (the
session's `revision_runs`): every Parquet file holds the same data.

The cluster: 2 CPUs, the machine's memory, proctrack/pgid, no task plugin and no accounting
(status from squeue: the profile's `slurm-status-command`), its state, spool, logs and munge key
in the test's folder. Skipped, with the missing binary and the install command, where SLURM is
not installed or the test is not root (slurmd runs jobs as their user)."""

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import REPO, run_snakemake
from tests.workflow.conftest import AS_OF
from tests.workflow.test_warm_e2e import parquet_data

pytestmark = pytest.mark.e2e

PARTITION, ACCOUNT, NODE = "spine", "spine", "localhost"
BINARIES = ("munged", "munge", "slurmctld", "slurmd", "sinfo", "sbatch", "squeue", "srun")
INSTALL = "apt-get update && apt-get install -y slurm-wlm munge (as root)"


def binaries() -> dict[str, str]:
    """Where each daemon and client is, or a skip naming the first one missing."""
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    found = {name: shutil.which(name, path=path) for name in BINARIES}
    missing = [name for name, where in found.items() if not where]
    if missing:
        pytest.skip(f"SLURM is not installed here: no {', '.join(missing)} on PATH; {INSTALL}")
    if os.geteuid() != 0:
        pytest.skip("a one-node SLURM needs root (slurmd starts jobs as their user); "
                    f"run the tests as root, with {INSTALL}")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def slurm_conf(root: Path) -> str:
    mem_mb = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal:"))) // 1024
    return f"""\
ClusterName=spine
SlurmctldHost={NODE}(127.0.0.1)
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={root}/munge/munge.socket
CredType=cred/munge
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/pgid
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
# finished jobs stay in squeue this long: the profile asks squeue for their state
MinJobAge=600
ReturnToService=2
MpiDefault=none
NodeName={NODE} NodeAddr=127.0.0.1 CPUs=2 RealMemory={mem_mb} State=UNKNOWN
PartitionName={PARTITION} Nodes={NODE} Default=YES MaxTime=INFINITE State=UP
"""


def logs(root: Path) -> str:
    return "\n".join(f"--- {p.name}\n" + p.read_text()[-3000:]
                     for p in sorted(root.glob("*.log")) + sorted(root.glob("munge/*.log")))


@pytest.fixture(scope="session")  # session, as revision_runs, so a skip comes before it runs
def cluster(tmp_path_factory):
    """A running one-node cluster: the environment that points SLURM's clients at it."""
    bins = binaries()
    root = tmp_path_factory.mktemp("slurm")
    for sub in ("state", "spool", "munge"):
        (root / sub).mkdir()
    (root / "munge").chmod(0o755)  # munged wants its socket's folder searchable by all
    key = root / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    (root / "slurm.conf").write_text(slurm_conf(root))
    # The jobstep plugin starts each step with an srun whose environment keeps none of SLURM_*
    # but the job's identity, so SLURM_CONF does not reach it: a cluster's nodes have their
    # configuration at the default path (/etc/slurm), this one has it here, and an srun first
    # on PATH (exported to the jobs) names it.
    (root / "bin").mkdir()
    (root / "bin" / "srun").write_text(
        f'#!/bin/sh\nSLURM_CONF={root}/slurm.conf exec {bins["srun"]} "$@"\n')
    (root / "bin" / "srun").chmod(0o755)
    env = dict(os.environ, SLURM_CONF=str(root / "slurm.conf"),
               PATH=f"{root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    daemons = {
        "munged": [bins["munged"], "-F", "-f", f"--socket={root}/munge/munge.socket",
                   f"--key-file={key}", f"--log-file={root}/munge/munged.log",
                   f"--pid-file={root}/munge/munged.pid", f"--seed-file={root}/munge/seed"],
        "slurmctld": [bins["slurmctld"], "-D", "-i"],
        "slurmd": [bins["slurmd"], "-D", "-N", NODE],
    }
    procs = []
    try:
        for name, cmd in daemons.items():
            out = open(root / f"{name}.out", "wb")
            procs.append(subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL))
            if name == "munged":
                deadline = time.monotonic() + 20
                while not (root / "munge" / "munge.socket").exists():
                    assert time.monotonic() < deadline, f"munged did not start\n{logs(root)}"
                    time.sleep(0.1)
        deadline = time.monotonic() + 60
        while True:
            state = subprocess.run([bins["sinfo"], "-h", "-n", NODE, "-o", "%T"], env=env,
                                   capture_output=True, text=True).stdout.strip()
            if state == "idle":
                break
            assert time.monotonic() < deadline, f"node not idle (sinfo: {state!r})\n{logs(root)}"
            time.sleep(0.5)
        yield {"env": env, "root": root, "bins": bins}
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in reversed(procs):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_a_job_runs_on_the_cluster(cluster, tmp_path):
    out = tmp_path / "hello.out"
    subprocess.run([cluster["bins"]["sbatch"], "--wait", "-p", PARTITION, "-A", ACCOUNT,
                    "-o", str(out), "--wrap", "echo hello from $SLURM_JOB_ID"],
                   env=cluster["env"], check=True, capture_output=True, timeout=120)
    assert out.read_text().startswith("hello from ")


def test_the_scenario_on_slurm_writes_the_lake_a_local_run_writes(cluster, revision_runs,
                                                                  tmp_path, monkeypatch):
    """The weekly update, the revision and the identical re-fetch through profiles/slurm: each
    step a SLURM job (or one of a group's), every Parquet file's data as in the local lake."""
    lake = tmp_path / "lake"
    config = dict(revision_runs.config, lake_root=str(lake))
    monkeypatch.setenv("PATH", cluster["env"]["PATH"])  # run_snakemake puts .venv/bin first
    env = {"SLURM_CONF": cluster["env"]["SLURM_CONF"], "SPINE_SLURM_PARTITION": PARTITION,
           "SPINE_SLURM_ACCOUNT": ACCOUNT}
    started = time.monotonic()
    for as_of in AS_OF.values():
        proc = run_snakemake(tmp_path, config, "--profile", str(REPO / "profiles" / "slurm"),
                             "--slurm-init-seconds-before-status-checks", "2",
                             "--slurm-logdir", str(tmp_path / "slurm_logs"),
                             "--config", f"as_of={as_of}", env=env)
        assert "SLURM" in proc.stdout + proc.stderr, proc.stderr[-3000:]
    seconds = time.monotonic() - started
    # the workflow's submissions (finished jobs stay listed for MinJobAge), not the sbatch test's
    submitted = [line for line in subprocess.run(
        [cluster["bins"]["squeue"], "-h", "--states=all", "-o", "%i %j"], env=cluster["env"],
        capture_output=True, text=True).stdout.splitlines() if not line.endswith(" wrap")]
    steps = [line.split("\t")[-1] for tsv in (lake / "benchmarks").rglob("*.tsv")
             for line in tsv.read_text().splitlines()[1:]]
    print(f"SLURM scenario: {seconds:.1f} s, {len(steps)} steps in "
          f"{len(submitted)} SLURM jobs", file=sys.stderr)
    # a cluster job has no warm runner: each step ran in its own process, under sbatch
    assert steps and set(steps) == {"process"}
    assert 0 < len(submitted) < len(steps), "job groups: fewer submissions than steps"
    local = parquet_data(revision_runs.root)
    remote = parquet_data(lake)
    assert sorted(remote) == sorted(local)
    for rel, data in local.items():
        assert remote[rel] == data, rel
