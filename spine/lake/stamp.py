"""The stamp every manifest record carries: what made the file (spine.lake.record writes it).

    {"step": "calc", "code": {"commit": "<sha>", "dirty": false}, "lock": "<sha256>",
     "config": {"lake_root": "..."}}

- `step`: the pipeline step (its StepConfig), else the command writing (spine.lake.producer).
- `code`: the git commit of the repository the package is imported from and whether its
  tracked files differ from it, or "not a git checkout" (an installed package).
- `lock`: the SHA-256 of that checkout's requirements.lock (absent when not a checkout).
- `config`: the config keys the step read and their values (spine.steps.STEPS declares them,
  the step's StepConfig holds them); absent for a command that reads no declared config.

Cost: the code version and lock hash are computed once per process (one `git rev-parse` and
one `git status`), lazily on the first record, or not at all in a Snakemake run, which sets
them once for all its jobs (`environment()`, in rules/common.smk). A job forked by the warm
server gets the client's environment, and the cache is per process id, so a forked child never
uses its parent's. Standard library only: spine.lake imports it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Iterator

REPO = Path(__file__).resolve().parents[2]  # the checkout the package is imported from
CODE_VAR, LOCK_VAR = "SPINE_CODE_VERSION", "SPINE_LOCK_SHA256"
NOT_A_CHECKOUT = "not a git checkout"
_code: dict[int, tuple[object, str | None]] = {}  # pid -> (code version, lock hash)
_step: dict[int, tuple[str, str, dict]] = {}  # pid -> (producer, step, config it read)
_written: dict[int, list[dict]] = {}  # pid -> the records it wrote (path, sha256, inputs)


def code_version(repo: Path = REPO) -> tuple[object, str | None]:
    """({"commit", "dirty"} or NOT_A_CHECKOUT, the lock's SHA-256 or None), computed now."""
    if not (repo / ".git").exists():
        return NOT_A_CHECKOUT, None
    try:
        commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], check=True,
                                capture_output=True, text=True, timeout=30).stdout.strip()
        changed = subprocess.run(["git", "-C", str(repo), "status", "--porcelain",
                                  "--untracked-files=no"], check=True, capture_output=True,
                                 text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return NOT_A_CHECKOUT, None  # no git program, or not a repository it can read
    lock = repo / "requirements.lock"
    digest = hashlib.sha256(lock.read_bytes()).hexdigest() if lock.exists() else None
    return {"commit": commit, "dirty": bool(changed)}, digest


def environment() -> dict[str, str]:
    """The code version and lock hash as environment variables, computed once: a Snakemake run
    sets them for every job it starts (rules/common.smk)."""
    code, lock = code_version()
    return {CODE_VAR: json.dumps(code), LOCK_VAR: lock or ""}


def _process() -> tuple[object, str | None]:
    pid = os.getpid()
    if pid not in _code:
        if CODE_VAR in os.environ:
            _code[pid] = json.loads(os.environ[CODE_VAR]), os.environ.get(LOCK_VAR) or None
        else:
            _code[pid] = code_version()
    return _code[pid]


def note_step(step: str, config: dict) -> None:
    """The step this process runs and the config it read (spine.steps.StepConfig calls it);
    the files written under the same producer (spine.lake.producer) carry them."""
    safe = json.loads(json.dumps(dict(config), sort_keys=True, default=str))
    _step[os.getpid()] = (os.environ.get("SPINE_PRODUCER", ""), step, safe)


def stamp(producer: str) -> dict:
    """The stamp of a record written now by `producer`."""
    code, lock = _process()
    out: dict = {"step": producer, "code": code}
    noted = _step.get(os.getpid())
    if noted and noted[0] == os.environ.get("SPINE_PRODUCER", ""):
        out["step"], out["config"] = noted[1], noted[2]
    if lock:
        out["lock"] = lock
    return out


def made(line: dict) -> dict:
    """The stamp of a manifest record (spine.lake.record), which this process also keeps for
    `written`."""
    if "sha256" in line:
        _written.setdefault(os.getpid(), []).append(
            {k: line[k] for k in ("path", "sha256", "inputs") if k in line})
    return stamp(line["by"])


def written() -> list[dict]:
    """What this process has written into a lake so far: path, SHA-256, inputs."""
    return list(_written.get(os.getpid(), []))


_reading: dict[int, dict[str, str]] = {}  # pid -> what the files written now are made from


@contextlib.contextmanager
def reading(inputs: dict[str, str]) -> Iterator[None]:
    """Within the block, a file written without inputs of its own was made from `inputs`
    (lake-relative path -> SHA-256): a job's declared inputs, for the report it renders."""
    pid = os.getpid()
    before = _reading.get(pid)
    _reading[pid] = dict(inputs)
    try:
        yield
    finally:
        if before is None:
            _reading.pop(pid, None)
        else:
            _reading[pid] = before


def inputs_now() -> dict[str, str]:
    return dict(_reading.get(os.getpid(), {}))
