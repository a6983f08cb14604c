"""The warm runner's server: one per run, started by `spine.warm.start()` (the Snakefile's
`onstart`), it imports once what every step imports and forks a child per step, which runs the
step as the client's own process would (spine/warm.py says how a run and its steps use it).

Fork safety: the server forks from one thread. Before its imports it sets `OMP_NUM_THREADS`,
`OPENBLAS_NUM_THREADS` and `MKL_NUM_THREADS` to 1 (no BLAS pool) and turns off the background
thread of pyarrow's jemalloc (`JE_ARROW_MALLOC_CONF`); it only imports, never computes
(pyarrow's CPU and IO pools and its memory pool start on first use, in the child); and it
counts its threads (`/proc/self/task`) after the imports and before every fork: with more than
one it forks nothing and the client runs the step in its own process instead.

    python -m spine.warm_server SOCKET --owner PID     (what spine.warm.start() runs)
"""

from __future__ import annotations

import argparse
import atexit
import importlib
import json
import os
import selectors
import signal
import socket
import struct
import sys
import time
import traceback

from spine.warm import SIGNALS, SINGLE_THREAD, TOKEN_VAR, fingerprint, run_here, threads

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
           "spine.cli.dispatch", "spine.steps", "spine.ingest.decide", "spine.derive.calc",
           "spine.derive.calcs", "spine.reports.weekly",
           "spine.reports.symbol", "spine.reports.charts", "spine.reports.index",
           "spine.reports.revision", "spine.ingest.gates", "spine.status", "spine.lake.repair")


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
        import numpy  # preloaded (PRELOAD); not at the top: SINGLE_THREAD must come before it

        numpy.random.seed()  # a fresh global RNG per step, as in a fresh process
        code = run_here(request["module"], request["argv"])
    except SystemExit as done:
        code = done.code
    except KeyboardInterrupt:  # Ctrl-C before or after the step's own handling: 128 + SIGINT
        print("interrupted", file=sys.stderr)
        code = 130
    except BaseException:  # noqa: BLE001 - the plain process would print it and exit 1
        traceback.print_exc()
        code = 1
    finally:
        if code is None:
            code = 0
        elif not isinstance(code, int):
            print(code, file=sys.stderr)
            code = 1
        try:
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
    no thread pools (the thread count is checked after it). Imported here, after `preload()`
    set SINGLE_THREAD: at the top they would start BLAS and jemalloc threads before it (the
    server's one thread is tested in tests/unit/test_warm.py)."""
    import nbformat
    import pandas as pd
    from matplotlib.backends.registry import backend_registry
    from pandera.api.pandas.container import DataFrameSchema

    from spine import calendar, notebooks

    DataFrameSchema.register_default_backends(pd.DataFrame)  # 0.12 s on a first validation
    calendar.xnys()  # the exchange calendar (0.3 s on a step's first trading-day count)
    backend_registry.list_all()  # matplotlib's backend entry points (the engine's shell asks)
    nbformat.validate(nbformat.read(notebooks.NOTEBOOKS / "calc.ipynb", as_version=4))  # schema


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
    parser = argparse.ArgumentParser(prog="python -m spine.warm_server",
                                     description="serve one run's steps: the warm runner's "
                                                 "server (started by the Snakefile's onstart "
                                                 "through spine.warm.start)")
    parser.add_argument("socket", help="the socket to listen on (spine.warm.socket_path)")
    parser.add_argument("--owner", type=int, required=True,
                        help="the Snakemake process whose run this is: the server ends with it")
    parser.add_argument("--idle", type=float, default=IDLE_SECONDS,
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
