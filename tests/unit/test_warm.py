"""The warm runner (spine/warm.py, spine/warm_server.py) with real processes: a server per test
group, clients started as the Snakemake jobs start them, the steps of tests/warm_steps.py. No
Snakemake here (the end-to-end checks are in tests/workflow/test_warm_e2e.py)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from spine import warm
from tests.helpers import alive

REPO = Path(__file__).resolve().parents[2]
CLIENT = ("import os, sys; from spine import warm; "
          "sys.exit(warm.run('tests.warm_steps', sys.argv[1:], bench=os.environ.get('BENCH')))")


class Server:
    """A warm server for a lake, owned by a process the test controls (the 'Snakemake')."""

    def __init__(self, lake: Path, idle: float | None = None):
        self.owner = subprocess.Popen(["sleep", "600"])
        saved = {k: os.environ.pop(k, None) for k in (warm.SOCKET_VAR, warm.TOKEN_VAR)}
        try:
            self.path = warm.start(str(lake), owner=self.owner.pid)
            assert self.path, "the server did not start"
            self.env = dict(os.environ, **{warm.SOCKET_VAR: self.path,
                                           warm.TOKEN_VAR: os.environ[warm.TOKEN_VAR]})
        finally:
            for k, v in saved.items():
                os.environ.pop(k, None)
                if v is not None:
                    os.environ[k] = v
        self.pid = warm.status(self.path)["pid"]

    def client(self, *argv, env=None, input=None, **kwargs):
        return subprocess.run([sys.executable, "-c", CLIENT, *argv], env=env or self.env,
                              cwd=REPO, capture_output=True, text=True, input=input,
                              timeout=120, **kwargs)

    def background(self, *argv):
        return subprocess.Popen([sys.executable, "-c", CLIENT, *argv], env=self.env, cwd=REPO,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def stop(self):
        self.owner.kill()
        self.owner.wait()
        assert wait_until(lambda: not alive(self.pid)), "the server outlived its run"


def wait_until(condition, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def pids(pidfile: Path, seconds: float = 30.0) -> tuple[int, int]:
    assert wait_until(pidfile.exists, seconds), "the step did not start"
    step, grandchild = map(int, pidfile.read_text().split())
    return step, grandchild


@pytest.fixture(scope="module")
def server(tmp_path_factory, request):
    os.chdir(REPO)  # the server imports tests.warm_steps from where it starts, as Snakemake's
    srv = Server(tmp_path_factory.mktemp("warm") / "lake")
    request.addfinalizer(srv.stop)
    return srv


def test_the_server_forks_from_one_thread_and_runs_the_step_in_a_child(server, tmp_path):
    status = warm.status(server.path)
    assert status["threads"] == 1  # nothing started a thread before the forks
    assert status["children"] == []
    bench = tmp_path / "bench.tsv"
    done = server.client("state", env=dict(server.env, BENCH=str(bench)), input="hello\n")
    assert done.returncode == 0, done.stderr
    state = json.loads(done.stdout)
    assert state["stdin"] == "hello"  # the client's stdin, stdout and stderr are the step's
    assert state["argv"] == ["tests.warm_steps", "state"]
    assert state["cwd"] == str(REPO)
    assert state["pid"] != server.pid
    header, values = bench.read_text().splitlines()
    record = dict(zip(header.split("\t"), values.split("\t")))
    assert record["runner"] == "warm" and float(record["s"]) > 0 and float(record["max_rss"]) > 50


def test_a_step_that_fails_leaks_or_changes_state_affects_no_other_step(server):
    rss_before = warm.status(server.path)["rss_mb"]
    failed = server.client("fail")
    assert failed.returncode == 1
    assert "ValueError: this step fails on purpose" in failed.stderr
    assert server.client("exit", "3").returncode == 3
    dirty = server.client("dirty")
    assert dirty.returncode == 0, dirty.stderr
    assert json.loads(dirty.stdout) | {"pid": 0, "threads": 0} == {
        "env": "1", "cwd": "/", "global": True, "rc": 9.0, "figures": 1, "pid": 0,
        "threads": 0, "argv": ["tests.warm_steps", "dirty"], "stdin": ""}
    clean = json.loads(server.client("state").stdout)
    assert (clean["env"], clean["cwd"], clean["global"], clean["rc"], clean["figures"]) == (
        None, str(REPO), False, 1.5, 0)
    assert warm.status(server.path)["rss_mb"] < rss_before + 20  # the 200 MB left with it


def test_the_server_refuses_another_run_and_other_code_and_the_step_runs_anyway(server, tmp_path):
    bench = tmp_path / "bench.tsv"
    for env in (dict(server.env, **{warm.TOKEN_VAR: "another-run"}),
                dict(server.env, PYTHONWARMTEST="1")):  # an import-relevant variable differs
        done = server.client("exit", "0", env=dict(env, BENCH=str(bench)))
        assert done.returncode == 0
        assert "refused the step" in done.stderr and "its own process" in done.stderr
        assert bench.read_text().split()[-1] == "process"


def test_without_a_server_the_same_command_runs_the_step_in_its_own_process(server, tmp_path):
    bench = tmp_path / "bench.tsv"
    for env in (dict(server.env, SPINE_WARM="0"),
                {k: v for k, v in server.env.items() if k != warm.SOCKET_VAR}):
        done = server.client("state", env=dict(env, BENCH=str(bench)))
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""
        assert bench.read_text().split()[-1] == "process"
    gone = server.client("state", env=dict(server.env, **{warm.SOCKET_VAR: str(tmp_path / "x")}))
    assert gone.returncode == 0 and "no server at" in gone.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_cancelling_the_job_ends_its_step_and_what_the_step_started(server, tmp_path, sig):
    """Snakemake cancels a job with SIGTERM, Ctrl-C reaches it as SIGINT, and a client killed
    with -9 closes its connection: each ends the step (and its own child process)."""
    client = server.background("sleep", str(tmp_path / "pids"))
    step, grandchild = pids(tmp_path / "pids")
    assert warm.status(server.path)["children"] == [step]
    client.send_signal(sig)
    client.wait(timeout=10)
    assert client.returncode != 0
    assert wait_until(lambda: not alive(step) and not alive(grandchild))
    assert wait_until(lambda: warm.status(server.path)["children"] == [])


def test_the_server_ends_with_its_run_and_takes_running_steps_with_it(tmp_path):
    """kill -9 of Snakemake: the server sees its owner go, ends every step and removes its
    socket; the next run's server for the lake starts cleanly."""
    os.chdir(REPO)
    srv = Server(tmp_path / "lake")
    client = srv.background("sleep", str(tmp_path / "pids"))
    step, grandchild = pids(tmp_path / "pids")
    srv.owner.kill()
    assert wait_until(lambda: not alive(srv.pid) and not alive(step) and not alive(grandchild))
    _, stderr = client.communicate(timeout=10)
    assert client.returncode != 0 and "server ended before the step" in stderr
    assert not os.path.exists(srv.path)
    again = Server(tmp_path / "lake")
    assert again.client("exit", "0").returncode == 0
    again.stop()


def test_a_stale_socket_is_replaced_and_two_lakes_have_two_servers(tmp_path):
    os.chdir(REPO)
    first = Server(tmp_path / "a")
    os.kill(first.pid, signal.SIGKILL)  # a crashed server leaves its socket behind
    assert wait_until(lambda: not alive(first.pid))
    assert os.path.exists(first.path)
    second = Server(tmp_path / "a")  # detected (refused connection) and replaced
    assert second.path == first.path and second.pid != first.pid
    third = Server(tmp_path / "a")  # a live server of an earlier run is told to stop
    assert wait_until(lambda: not alive(second.pid))
    other = Server(tmp_path / "b")
    assert other.path != third.path
    for srv in (third, other):
        assert srv.client("exit", "0").returncode == 0
        assert warm.status(srv.path)["pid"] == srv.pid
    # a step of the earlier run cannot reach the new server: its token is the old run's
    refused = third.client("exit", "0", env=dict(third.env, **{warm.TOKEN_VAR: "x"}))
    assert "belongs to another run" in refused.stderr
    first.owner.kill()
    second.owner.kill()
    third.stop()
    other.stop()


def test_stop_and_idle_end_the_server(tmp_path):
    os.chdir(REPO)
    srv = Server(tmp_path / "lake")
    saved = os.environ.copy()
    os.environ.update({warm.SOCKET_VAR: srv.path, warm.TOKEN_VAR: srv.env[warm.TOKEN_VAR]})
    try:
        warm.stop()  # onsuccess / onerror
        assert warm.SOCKET_VAR not in os.environ
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert wait_until(lambda: not alive(srv.pid)) and not os.path.exists(srv.path)
    srv.owner.kill()
    path = warm.socket_path(str(tmp_path / "idle"))
    idle = subprocess.run([sys.executable, "-m", "spine.warm_server", path, "--owner",
                           str(os.getpid()), "--idle", "0.5"], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert idle.returncode == 0 and "idle for" in idle.stdout
    assert not os.path.exists(path)


def test_a_steps_client_imports_only_what_it_needs():
    """Every step's command imports spine.warm: the run's side (start: subprocess, secrets,
    tempfile, 10 ms) and the server (pandas, the notebooks) are not loaded by it."""
    probe = ("import sys; from spine import warm; print(sorted(m for m in ('subprocess', "
             "'secrets', 'tempfile', 'pandas', 'spine.notebooks', 'spine.warm_server') "
             "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and done.stdout == "[]\n", done.stdout + done.stderr
