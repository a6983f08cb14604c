"""The warm runner: a step costs its work, not an interpreter.

Every step of the pipeline is one short command (`python -m spine.notebooks <step> ...`, `python
-m spine.cli <command> ...`). Started cold, each would pay about 2.5 s of interpreter, imports
and notebook set-up before reading a byte. Inside a Snakemake run that command is a thin client
(this module and the standard library only): it hands the step to the run's server, which has
imported pandas, pyarrow, pandera, the notebook engine, matplotlib and `spine` once and forks a
child per step, the way Airflow's task runner, Luigi's workers, gunicorn `--preload` and
Mercurial's `chg` do. The child runs the step exactly as the plain process would: the client's
argv, environment, working directory, stdin, stdout and stderr (passed as file descriptors, so
the job's log gets the step's output), its exit status back to the client and so to Snakemake.

Lifetime: the Snakefile's `onstart` calls `start()` (after taking the lake's lock) and
`onsuccess`/`onerror` call `stop()`. The server belongs to that run: clients present the run's
token and the fingerprint of their code and environment (`fingerprint()`), and the server
refuses any other. It exits when the Snakemake process that started it ends (however it ends:
it watches that process), when idle for `warm_server.IDLE_SECONDS`, or when stopped. Its
socket is one per lake (`socket_path`), so two runs on two lakes each have their own; a socket
left by a killed run is replaced atomically by the next run's server.

Signals: the client forwards SIGTERM, SIGINT, SIGHUP and SIGQUIT to the child's process group
and then exits the way the child did; a client that dies (kill -9) closes its connection and
the server kills its child; a Snakemake killed with -9 ends the server and all its children.

The server is spine/warm_server.py: it forks from one thread, and checks it before every fork.

Fallback: with no server (`SPINE_WARM=0`, a cluster executor, no `fork`, a refused request) the
same command runs the step in its own process. Nothing in the rules differs between the two.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import resource
import signal
import socket
import struct
import sys
import threading
import time

PACKAGE = os.path.dirname(os.path.abspath(__file__))
SOCKET_VAR, TOKEN_VAR, SWITCH_VAR = "SPINE_WARM_SOCKET", "SPINE_WARM_TOKEN", "SPINE_WARM"
# No threads in the server: set before the imports. OpenBLAS starts its pool when numpy is
# imported, and pyarrow's bundled jemalloc its background purging thread when pyarrow is.
SINGLE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                 "JE_ARROW_MALLOC_CONF": "background_thread:false"}
# Environment variables that change what an import does: a server never serves a client whose
# values differ from those it was started with.
IMPORT_VARS = ("PYTHON", "OMP_", "OPENBLAS_", "MKL_", "ARROW_", "MPL", "TZ", "LANG", "LC_")
SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)
BENCH_COLUMNS = ("s", "h:m:s", "max_rss", "cpu_time", "runner")


class Unavailable(Exception):
    """No server can take this step; the client runs it in its own process."""


# --- identity -------------------------------------------------------------------------------

def fingerprint(env: dict | None = None) -> str:
    """The code and environment a step would run with: this package's source, the interpreter
    and its prefix, and the environment variables that change imports. Costs a few ms."""
    env = os.environ if env is None else env
    h = hashlib.sha256()
    h.update(json.dumps([sys.version, sys.prefix, PACKAGE,
                         sorted((k, v) for k, v in env.items()
                                if k.startswith(IMPORT_VARS) and k not in SINGLE_THREAD)])
             .encode())
    for folder, dirs, files in os.walk(PACKAGE):  # in a fixed order: folders sorted as walked
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(f for f in files if f.endswith(".py")):
            path = os.path.join(folder, name)
            with open(path, "rb") as handle:
                h.update(os.path.relpath(path, PACKAGE).encode() + b"\0" + handle.read())
    return h.hexdigest()


def socket_path(lake_root: str) -> str:
    """The server's socket for a lake: one per lake, in a folder only this user can open."""
    import tempfile  # not at the top: see start()

    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    folder = os.path.join(base, f"spine-warm-{os.getuid()}")
    os.makedirs(folder, mode=0o700, exist_ok=True)
    key = hashlib.sha256(os.path.realpath(lake_root).encode()).hexdigest()[:16]
    return os.path.join(folder, f"{key}.sock")


def threads() -> int:
    """This process's threads: the server forks only with one, and so do the steps that fork
    (the gate's workers per tier)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


# --- the run's side: start and stop ----------------------------------------------------------

def start(lake_root: str, owner: int | None = None, timeout: float = 10.0) -> str | None:
    """Start this run's server for `lake_root` and point the run's jobs at it (environment
    variables the jobs inherit). Returns the socket, or None with the reason printed when the
    steps will run in their own processes."""
    # not at the top: every step's client imports this module, and these cost it 10 ms; the
    # run's side needs them once (tests/unit/test_warm.py pins it)
    import secrets
    import subprocess

    if os.environ.get(SWITCH_VAR) == "0":
        return None
    if not hasattr(os, "fork") or not hasattr(socket, "AF_UNIX"):
        print("warm runner: no fork on this platform; each step runs in its own process",
              file=sys.stderr)
        return None
    path = socket_path(lake_root)
    _retire(path)
    token = secrets.token_hex(16)
    log = path[:-len(".sock")] + ".log"
    env = dict(os.environ, **{TOKEN_VAR: token})
    env.pop(SOCKET_VAR, None)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "spine.warm_server", path, "--owner",
             str(owner or os.getpid())],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
            start_new_session=True)  # Ctrl-C in the terminal reaches the clients, not it
    deadline = time.monotonic() + timeout
    while not _serves(path, proc.pid):
        if proc.poll() is not None or time.monotonic() > deadline:
            print(f"warm runner did not start (see {log}); each step runs in its own process",
                  file=sys.stderr)
            return None
        time.sleep(0.01)
    os.environ[SOCKET_VAR], os.environ[TOKEN_VAR] = path, token
    return path


def _serves(path: str, pid: int) -> bool:
    """Whether the socket at `path` is the one the server `pid` bound (its name says so)."""
    try:
        return os.readlink(path + ".pid") == str(pid)
    except OSError:
        return False


def stop() -> None:
    """Stop this run's server (onsuccess/onerror); the jobs' variables are removed."""
    path, token = os.environ.pop(SOCKET_VAR, None), os.environ.pop(TOKEN_VAR, None)
    if path:
        try:
            _request(path, {"op": "stop", "token": token}, timeout=5).close()
        except OSError:
            pass  # already gone


def _retire(path: str) -> None:
    """A socket left by an earlier run: a dead server's is removed; a live one (its run was
    killed a moment ago) is told to stop. The new server's socket replaces it atomically."""
    if not os.path.exists(path):
        return
    try:
        _request(path, {"op": "stop", "token": None}, timeout=2).close()
    except OSError:
        for stale in (path, path + ".pid"):
            try:
                os.unlink(stale)
            except FileNotFoundError:
                pass


def status(path: str) -> dict:
    """The server's pid, thread count, RSS and children (for tests and the benchmark)."""
    sock = _request(path, {"op": "status", "token": os.environ.get(TOKEN_VAR)}, timeout=30)
    with sock, sock.makefile("rb") as replies:
        return json.loads(replies.readline())


def _request(path: str, message: dict, fds: list[int] | None = None, timeout=None):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
        data = json.dumps(message).encode()
        socket.send_fds(sock, [struct.pack("!I", len(data)) + data], fds or [])
    except OSError:
        sock.close()
        raise
    return sock


# --- the step's side: the client ------------------------------------------------------------

def run(module: str, argv: list[str], bench: str | None = None) -> int:
    """Run `module.main(argv)` as a step: in the run's server if there is one, else here.
    `bench`: where to write the step's benchmark record (wall time, peak RSS, CPU time)."""
    started = time.monotonic()
    path = os.environ.get(SOCKET_VAR)
    usage = None
    if path and os.environ.get(SWITCH_VAR) != "0" and hasattr(os, "fork"):
        try:
            code, usage = _remote(path, module, argv)
        except Unavailable as why:
            print(f"warm runner: {why}; running the step in its own process", file=sys.stderr)
    if usage is None:
        code = run_here(module, argv)
        r = resource.getrusage(resource.RUSAGE_SELF)
        usage = {"max_rss_kb": r.ru_maxrss, "cpu_s": r.ru_utime + r.ru_stime, "runner": "process"}
    if bench:
        _write_bench(bench, time.monotonic() - started, usage)
    return code


def run_here(module: str, argv: list[str]) -> int:
    """`module.main(argv)` in this process (the plain process, or the server's child)."""
    return importlib.import_module(module).main(argv)


def _remote(path: str, module: str, argv: list[str]) -> tuple[int, dict]:
    request = {"op": "run", "token": os.environ.get(TOKEN_VAR), "fingerprint": fingerprint(),
               "module": module, "argv": argv, "env": dict(os.environ), "cwd": os.getcwd()}
    try:
        sock = _request(path, request, fds=[0, 1, 2])
    except OSError as err:
        raise Unavailable(f"no server at {path} ({err.strerror or err})") from None
    child = None

    def forward(signum, frame):  # to the step and what it started (its process group)
        try:
            os.killpg(child, signum)
        except ProcessLookupError:
            pass

    with sock, sock.makefile("rb") as replies:
        first = replies.readline()
        if not first:
            raise Unavailable("the server closed the connection")
        reply = json.loads(first)
        if "refused" in reply:
            raise Unavailable(f"the server refused the step: {reply['refused']}")
        # from here the step runs in the child: a signal to this client is the step's (before
        # this, it ends the client, its connection closes, and the server ends the child)
        child = reply["pid"]
        for sig in SIGNALS:
            signal.signal(sig, forward)
        last = replies.readline()
    if not last:
        print(f"warm runner: the server ended before the step did (child {child}); the step "
              "failed", file=sys.stderr)
        return 1, {"runner": "warm"}
    done = json.loads(last)
    if done.get("signal"):  # end the way the child ended, as the plain process would have
        sig = done["signal"]
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
        return 128 + sig, done
    return done["exit"], done


def _write_bench(path: str, seconds: float, usage: dict) -> None:
    """One record in Snakemake's benchmark layout (the columns we can measure)."""
    h, rest = divmod(int(seconds), 3600)
    values = [f"{seconds:.4f}", f"{h}:{rest // 60:02d}:{rest % 60:02d}",
              f"{usage.get('max_rss_kb', 0) / 1024:.2f}", f"{usage.get('cpu_s', 0):.2f}",
              usage.get("runner", "")]
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as out:
        out.write("\t".join(BENCH_COLUMNS) + "\n" + "\t".join(values) + "\n")

