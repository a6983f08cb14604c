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
it watches that process), when idle for `IDLE_SECONDS`, or when stopped. Its socket is one per
lake (`socket_path`), so two runs on two lakes each have their own; a socket left by a killed
run is replaced atomically by the next run's server.

Signals: the client forwards SIGTERM, SIGINT, SIGHUP and SIGQUIT to the child's process group
and then exits the way the child did; a client that dies (kill -9) closes its connection and
the server kills its child; a Snakemake killed with -9 ends the server and all its children.

Fork safety: the server forks from one thread. Before its imports it sets `OMP_NUM_THREADS`,
`OPENBLAS_NUM_THREADS` and `MKL_NUM_THREADS` to 1 (no BLAS pool) and turns off the background
thread of pyarrow's jemalloc (`JE_ARROW_MALLOC_CONF`); it only imports, never computes
(pyarrow's CPU and IO pools and its memory pool start on first use, in the child); and it
counts its threads (`/proc/self/task`) after the imports and before every fork: with more than
one it forks nothing and the client runs the step in its own process instead.

Fallback: with no server (`SPINE_WARM=0`, a cluster executor, no `fork`, a refused request) the
same command runs the step in its own process. Nothing in the rules differs between the two.

    python -m spine.warm serve SOCKET --owner PID     (what start() runs)
"""

from __future__ import annotations

import hashlib
import json
import os
import selectors
import signal
import socket
import struct
import sys
import time

PACKAGE = os.path.dirname(os.path.abspath(__file__))
SOCKET_VAR, TOKEN_VAR, SWITCH_VAR = "SPINE_WARM_SOCKET", "SPINE_WARM_TOKEN", "SPINE_WARM"
IDLE_SECONDS = 600
# What the server imports once, before it forks: everything a step imports, including what
# the libraries import lazily on a step's first use (found by listing `sys.modules` before and
# after a step).
PRELOAD = ("numpy", "pandas", "pyarrow", "pyarrow.parquet", "pyarrow.dataset", "pyarrow.compute",
           "pyarrow.csv", "pandera", "yaml", "jsonschema", "papermill", "ploomber_engine.engine",
           "nbformat", "nbconvert", "IPython", "matplotlib", "matplotlib.pyplot",
           "matplotlib_inline", "duckdb", "exchange_calendars", "hypothesis", "sqlite3",
           "pandera.backends.pandas.register", "pandera.typing.dask", "pandera.typing.geopandas",
           "pandera.typing.modin", "pandera.typing.pyspark", "IPython.core.magics",
           "IPython.core.completer", "IPython.core.application", "pandas.io.formats.html",
           "pandas.io.formats.string", "pandas.core.arrays.arrow._arrow_utils",
           "encodings.unicode_escape", "spine.config", "spine.notebooks", "spine.cli",
           "spine.pipeline", "spine.derive.calcs", "spine.reports.report", "spine.reports.revision", "spine.ingest.gates",
           "spine.status", "spine.lake.integrity")
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
    import tempfile

    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    folder = os.path.join(base, f"spine-warm-{os.getuid()}")
    os.makedirs(folder, mode=0o700, exist_ok=True)
    key = hashlib.sha256(os.path.realpath(lake_root).encode()).hexdigest()[:16]
    return os.path.join(folder, f"{key}.sock")


# --- the run's side: start and stop ----------------------------------------------------------

def start(lake_root: str, owner: int | None = None, timeout: float = 10.0) -> str | None:
    """Start this run's server for `lake_root` and point the run's jobs at it (environment
    variables the jobs inherit). Returns the socket, or None with the reason printed when the
    steps will run in their own processes."""
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
            [sys.executable, "-m", "spine.warm", "serve", path, "--owner",
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
        code = _local(module, argv)
        import resource

        r = resource.getrusage(resource.RUSAGE_SELF)
        usage = {"max_rss_kb": r.ru_maxrss, "cpu_s": r.ru_utime + r.ru_stime, "runner": "process"}
    if bench:
        _write_bench(bench, time.monotonic() - started, usage)
    return code


def _local(module: str, argv: list[str]) -> int:
    import importlib

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


# --- the server -----------------------------------------------------------------------------

class Server:
    def __init__(self, path: str, owner: int, idle: float):
        self.path, self.owner, self.idle = path, owner, idle
        self.token = os.environ.get(TOKEN_VAR)
        self.fingerprint = fingerprint()  # the environment it was asked to serve, before its own
        self.selector = selectors.DefaultSelector()
        self.children: dict[int, dict] = {}  # pid -> {"conn", "pidfd"}
        self.last_active = time.monotonic()
        self.refuse_fork = ""
        self.stopping = False
        self.owner_fd = None

    def bind(self) -> None:
        """Listen before the imports (a client queues until they are done), then take the
        socket's name atomically (a stale socket of a killed run is replaced, not reused)."""
        tmp = f"{self.path}.{os.getpid()}"
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(tmp)
        self.listener.listen(128)
        os.rename(tmp, self.path)
        self.inode = os.stat(self.path).st_ino
        try:
            os.unlink(self.path + ".pid")
        except FileNotFoundError:
            pass
        os.symlink(str(os.getpid()), self.path + ".pid")

    def preload(self) -> None:
        import importlib

        os.environ.update(SINGLE_THREAD)
        os.environ.setdefault("MPLBACKEND", "Agg")
        started = time.monotonic()
        for module in PRELOAD:
            importlib.import_module(module)
        _warm_up()
        count = threads()
        if count != 1:
            self.refuse_fork = f"the server has {count} threads after its imports"
        print(f"warm runner {os.getpid()}: {len(PRELOAD)} modules imported in "
              f"{time.monotonic() - started:.2f} s; threads: {count}; serving {self.path}",
              flush=True)

    def serve(self) -> None:
        self.selector.register(self.listener, selectors.EVENT_READ, ("accept", None))
        try:
            self.owner_fd = os.pidfd_open(self.owner)
            self.selector.register(self.owner_fd, selectors.EVENT_READ, ("owner", None))
        except (AttributeError, OSError):  # no pidfd: polled below
            pass
        while True:
            events = self.selector.select(timeout=1.0)
            for key, _ in events:
                kind, pid = key.data
                if kind == "accept":
                    self.accept()
                elif kind == "child":
                    self.reap(pid)
                elif kind == "client":  # the client went away: its step ends with it
                    self.kill(pid)
                elif kind == "owner":
                    print("warm runner: the run ended; stopping", flush=True)
                    return
            if self.owner_fd is None and not _alive(self.owner):
                return
            if self.children:
                self.last_active = time.monotonic()
            elif time.monotonic() - self.last_active > self.idle:
                print(f"warm runner: idle for {self.idle:.0f} s; stopping", flush=True)
                return
            if self.stopping and not self.children:
                return

    def accept(self) -> None:
        conn, _ = self.listener.accept()
        conn.settimeout(10)
        try:
            request, fds = _receive(conn)
        except (OSError, ValueError) as err:
            print(f"warm runner: bad request ({err})", flush=True)
            conn.close()
            return
        op = request.get("op")
        if op == "stop":
            self.stopping = True
            self.selector.unregister(self.listener)
            self.listener.close()
            conn.close()
            return
        if op == "status":  # anyone may look (tests, the benchmark)
            self.reply(conn, {"pid": os.getpid(), "threads": threads(),
                              "rss_mb": _rss_mb(), "children": sorted(self.children)})
        elif request.get("token") != self.token:
            self.reply(conn, {"refused": "it belongs to another run"})
        elif request.get("fingerprint") != self.fingerprint:
            self.reply(conn, {"refused": "the step's code or environment differs from the "
                                         "server's (changed since the run started?)"})
        elif self.refuse_fork:
            self.reply(conn, {"refused": self.refuse_fork})
        elif threads() != 1:
            self.reply(conn, {"refused": f"the server has {threads()} threads"})
        else:
            self.fork(conn, request, fds)
            return
        for fd in fds:
            os.close(fd)

    def reply(self, conn, message: dict) -> None:
        try:
            conn.sendall(json.dumps(message).encode() + b"\n")
        except OSError:
            pass
        conn.close()

    def fork(self, conn, request: dict, fds: list[int]) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            inherited = [self.selector, self.listener, conn, self.owner_fd]
            for c in self.children.values():
                inherited += [c["conn"], c["pidfd"]]
            _child([x for x in inherited if x is not None], request, fds)  # never returns
        for fd in fds:
            os.close(fd)
        self.last_active = time.monotonic()
        try:
            conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
        except OSError:
            pass
        entry = {"conn": conn}
        self.selector.register(conn, selectors.EVENT_READ, ("client", pid))
        try:
            entry["pidfd"] = os.pidfd_open(pid)
            self.selector.register(entry["pidfd"], selectors.EVENT_READ, ("child", pid))
        except (AttributeError, OSError):
            entry["pidfd"] = None
        self.children[pid] = entry
        if entry["pidfd"] is None:
            self.reap(pid)  # no pidfd: wait here (steps then run one at a time)

    def reap(self, pid: int) -> None:
        _, status, usage = os.wait4(pid, 0)
        entry = self.children.pop(pid)
        if entry["conn"] is not None:
            self.selector.unregister(entry["conn"])
        if entry["pidfd"] is not None:
            self.selector.unregister(entry["pidfd"])
            os.close(entry["pidfd"])
        result = {"exit": os.waitstatus_to_exitcode(status), "runner": "warm",
                  "max_rss_kb": usage.ru_maxrss, "cpu_s": usage.ru_utime + usage.ru_stime}
        if os.WIFSIGNALED(status):
            result["signal"] = os.WTERMSIG(status)
        if entry["conn"] is not None:
            self.reply(entry["conn"], result)

    def kill(self, pid: int) -> None:
        """The client went away (killed): its step ends with it."""
        entry = self.children[pid]
        self.selector.unregister(entry["conn"])
        entry["conn"].close()
        entry["conn"] = None
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def close(self) -> None:
        """Every child ends with the server; the socket is removed if it is still ours."""
        for pid in list(self.children):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        try:
            if os.stat(self.path).st_ino == self.inode:
                os.unlink(self.path)
                os.unlink(self.path + ".pid")
        except (OSError, AttributeError):
            pass


def _child(closing, request: dict, fds: list[int]) -> None:
    """The forked step: the client's process in all but name. Never returns."""
    code = 1
    try:
        os.setpgid(0, 0)  # its own group: a forwarded signal reaches what it starts, too
        for item in closing:  # the server's sockets and descriptors are not the step's
            item.close() if hasattr(item, "close") else os.close(item)
        for sig in SIGNALS:
            signal.signal(sig, signal.default_int_handler if sig == signal.SIGINT
                          else signal.SIG_DFL)
        for target, fd in enumerate(fds[:3]):
            os.dup2(fd, target)
        for fd in fds:
            if fd > 2:
                os.close(fd)
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        sys.argv = [request["module"], *request["argv"]]
        import numpy

        numpy.random.seed()  # a fresh global RNG per step, as in a fresh process
        code = _local(request["module"], request["argv"])
    except SystemExit as done:
        code = done.code
    except KeyboardInterrupt:  # Ctrl-C before or after the step's own handling: 128 + SIGINT
        print("interrupted", file=sys.stderr)
        code = 130
    except BaseException:  # noqa: BLE001 - the plain process would print it and exit 1
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        if code is None:
            code = 0
        elif not isinstance(code, int):
            print(code, file=sys.stderr)
            code = 1
        try:
            import atexit

            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _receive(conn) -> tuple[dict, list[int]]:
    data, fds, _, _ = socket.recv_fds(conn, 1 << 16, 3)
    if len(data) < 4:
        raise ValueError("short request")
    size = struct.unpack("!I", data[:4])[0]
    data = data[4:]
    while len(data) < size:
        more = conn.recv(size - len(data))
        if not more:
            raise ValueError("truncated request")
        data += more
    return json.loads(data), fds


def _warm_up() -> None:
    """What every step would otherwise compute on first use, done once: pure Python and pandas,
    no thread pools (the thread count is checked after it)."""
    import nbformat
    import pandas as pd
    from matplotlib.backends.registry import backend_registry
    from pandera.api.pandas.container import DataFrameSchema

    from spine import calendar, notebooks

    DataFrameSchema.register_default_backends(pd.DataFrame)  # 0.12 s on a first validation
    calendar.xnys()  # the exchange calendar (0.3 s on a step's first trading-day count)
    backend_registry.list_all()  # matplotlib's backend entry points (the engine's shell asks)
    nbformat.validate(nbformat.read(notebooks.NOTEBOOKS / "calc.ipynb", as_version=4))  # schema


def threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        import threading

        return threading.active_count()


def _rss_mb() -> float:
    try:
        with open("/proc/self/status") as status_file:
            for line in status_file:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m spine.warm",
                                     description="the warm runner's server (started by the "
                                                 "Snakefile's onstart; see spine/warm.py)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="serve one run's steps")
    p.add_argument("socket", help="the socket to listen on (spine.warm.socket_path)")
    p.add_argument("--owner", type=int, required=True,
                   help="the Snakemake process whose run this is: the server ends with it")
    p.add_argument("--idle", type=float, default=IDLE_SECONDS,
                   help="stop after this many seconds without a step")
    args = parser.parse_args(argv)
    server = Server(args.socket, args.owner, args.idle)
    server.bind()
    try:
        server.preload()
        server.serve()
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
