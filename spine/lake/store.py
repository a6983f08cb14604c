"""The lake in an object store (`lake_store` in the config): the store holds the lake of record;
a run works in a local working copy (`lake_root`) that it brings up to date from the store when
it starts and sends back to the store when it ends, holding the store's lock in between.

Why a working copy, and not Snakemake's storage plugin (docs/architecture.md, "The lake in an
object store"): the plan folds the ledger's listing, every write appends to the manifest and
takes a lock, and a raw capture is never replaced (link, not rename). Those reads and writes are
outside the jobs' declared files and need a file system; a working copy gives them one, and the
store stays a plain hive-partitioned lake that DuckDB, pyarrow, Polars and pandas read.

The store's layout: the lake's files under their lake paths, `_spine/index.json` (every file
with its bytes, SHA-256 and mtime, and a generation that changes with every push) and, while a
run holds it, `_spine/run.lock`. The working copy keeps the index it last synced with in
`.store.json` (hidden: not a lake file, never sent). A pull downloads what differs from the
index (checked against its SHA-256) and removes what the store removed; a push sends what
changed since (raw captures, payloads and ledger events are never replaced), removes
what the working copy removed (the quarantine keeps its copy), then writes the new index.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import hashlib
import json
import os
import socket
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import Iterator

import fsspec

from spine.lake import LakeBusy, sha256_file, triggers

INDEX = "_spine/index.json"
# Snakemake's rerun-trigger records of the lake's outputs (spine/lake/triggers.py), in one object:
# a run in a new working copy reruns what a run in the old one would
METADATA = "_spine/snakemake-metadata.zip"
LOCK = "_spine/run.lock"
# written once and never replaced (spine/lake/__init__.py writes them with overwrite=False)
IMMUTABLE = ("raw/", "payloads/", "ledger/")
SYNCED = ".store.json"  # in the working copy: the index it last synced with
HELD = "SPINE_STORE_HELD"  # set while this process (or its parent run) holds the store


class StoreError(RuntimeError):
    """The lake store cannot be used as asked (unreachable, refused, or in conflict)."""


class StoreConflict(StoreError):
    """The working copy and the store both changed, or a record would be replaced."""


def _unusable(store: "Store", err: Exception, doing: str) -> StoreError:
    return StoreError(f"the lake store {store.url} cannot be used ({doing}: "
                      f"{type(err).__name__}: {err}). Check lake_store in the config, the "
                      "store's address (AWS_ENDPOINT_URL) and its credentials (AWS_ACCESS_KEY_ID, "
                      "AWS_SECRET_ACCESS_KEY)")


class Store:
    """An object store URL (s3://bucket/prefix, or anything fsspec opens) holding one lake."""

    def __init__(self, url: str):
        self.url = str(url).rstrip("/")
        # a new client each time: fsspec's cached one keeps the endpoint it was made with
        self.fs, base = fsspec.core.url_to_fs(self.url, skip_instance_cache=True)
        self.base = base.rstrip("/")
        self.requests: Counter[str] = Counter()  # what this process asked the store, by kind
        self.held = False

    def _p(self, rel: str) -> str:
        return f"{self.base}/{rel}"

    def index(self) -> dict | None:
        """The store's index, or None for a store no push has written to."""
        self.requests["GET"] += 1
        try:
            return json.loads(self.fs.cat_file(self._p(INDEX), max_concurrency=1))  # no HEAD
        except FileNotFoundError:
            return None

    # -- the lock ---------------------------------------------------------------------------
    def lock(self) -> None:
        """Take the store's run lock (a conditional PUT: only one run creates it)."""
        body = json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                           "since": dt.datetime.now(dt.timezone.utc).isoformat()}).encode()
        for attempt in range(2):
            self.requests["PUT"] += 1
            try:
                self.fs.pipe_file(self._p(LOCK), body, mode="create")
                self.held = True
                os.environ[HELD] = self.url
                atexit.register(self.unlock)
                return
            except FileExistsError:
                holder = self._holder()
                if attempt == 0 and holder and _gone(holder):  # a run on this host that died
                    self.requests["DELETE"] += 1
                    self.fs.rm_file(self._p(LOCK))
                    continue
                who = (f"{holder.get('host')} (pid {holder.get('pid')}) since "
                       f"{holder.get('since')}" if holder else "another run")
                raise LakeBusy(f"the lake store {self.url} is held by {who}; wait for that run "
                               f"to finish. If it is gone, remove {self.url}/{LOCK} (aws s3 rm) "
                               "and run this again") from None

    def _holder(self) -> dict | None:
        self.requests["GET"] += 1
        try:
            return json.loads(self.fs.cat_file(self._p(LOCK), max_concurrency=1))
        except (FileNotFoundError, ValueError):
            return None

    def unlock(self) -> None:
        if self.held:
            self.held = False
            os.environ.pop(HELD, None)
            self.requests["DELETE"] += 1
            # gone already, or the store unreachable: the next run on this host takes over a
            # lock whose process is gone, and names it otherwise
            with contextlib.suppress(Exception):
                self.fs.rm_file(self._p(LOCK))

    # -- pull and push ----------------------------------------------------------------------
    def pull(self, root: str | Path) -> str:
        """Bring the working copy at `root` up to the store's index. Returns what it did, in a
        line to print ("" when the working copy was current)."""
        root = Path(root)
        remote, synced = self.index(), _synced(root, self.url)
        if remote is None or (synced and synced["generation"] == remote["generation"]):
            return ""
        local = _walk(root)
        old = synced["files"] if synced else {}
        changed = _changed(local, old)
        if changed and synced:
            raise StoreConflict(
                f"the working copy {root} has changes it has not pushed ({_some(changed)}) and "
                f"the lake store {self.url} changed since they last synced. Move {root} aside "
                "and run again: the run pulls a fresh working copy. Keep the moved copy: a raw "
                "capture or ledger event named above is only there")
        want = remote["files"]
        foreign = [rel for rel in changed if rel in local
                   and (rel not in want or want[rel]["bytes"] != local[rel][0]
                        or sha256_file(root / rel) != want[rel]["sha256"])]
        if foreign:
            raise StoreConflict(
                f"{root} holds files the lake store {self.url} does not ({_some(foreign)}): it "
                "is not a working copy of that store. Point lake_root at an empty folder, or "
                f"lake_store at the store {root} was pushed to")
        fetch = [rel for rel, entry in want.items()
                 if local.get(rel) != (entry["bytes"], entry["mtime_ns"])]
        damaged = self._download(root, fetch, want)
        gone = [rel for rel in old if rel not in want and rel in local]
        for rel in gone:  # the store removed them (a later run's retraction)
            (root / rel).unlink()
        # a damaged object is left out of the working copy and of what it synced with, so the
        # repaired or rebuilt file is pushed over it
        self._pull_metadata(root, remote, synced)
        _write_synced(root, self.url, {**remote, "files": {
            rel: entry for rel, entry in want.items() if rel not in damaged}})
        size = sum(want[rel]["bytes"] for rel in fetch if rel not in damaged)
        line = (f"lake store {self.url}: pulled {len(fetch) - len(damaged)} files "
                f"({size / 1e6:.1f} MB) into {root}, removed {len(gone)}")
        if damaged:
            line += (f"; {len(damaged)} damaged in the store (SHA-256 not its index's), left "
                     f"out: {_some(damaged)}. `spine verify` names them in the working copy, "
                     "`spine repair` rebuilds them or puts them back from a backup, and the "
                     "push replaces them")
        return line

    def _pull_metadata(self, root: Path, remote: dict, synced: dict | None) -> None:
        """Snakemake's metadata of the lake's outputs, as the run that pushed last left it."""
        want = remote.get("metadata")
        if not want or (synced or {}).get("metadata") == want:
            return
        self.requests["GET"] += 1
        data = self.fs.cat_file(self._p(METADATA), max_concurrency=1)
        if hashlib.sha256(data).hexdigest() != want["sha256"]:
            return  # damaged: the run goes on without it, as on a lake copied by hand
        triggers.unpack(root, data)

    def _download(self, root: Path, rels: list[str], want: dict) -> list[str]:
        """Download `rels` into the working copy, each checked against the index and given its
        mtime; returns those whose bytes do not match the index (not written)."""
        if not rels:
            return []
        tmps = [root / str(Path(rel).parent) / f".{Path(rel).name}.pull" for rel in rels]
        for tmp in tmps:
            tmp.parent.mkdir(parents=True, exist_ok=True)
        self.requests["GET"] += len(rels)
        self.fs.get([self._p(rel) for rel in rels], [str(t) for t in tmps])
        damaged = []
        for rel, tmp in zip(rels, tmps, strict=True):
            entry = want[rel]
            if sha256_file(tmp) != entry["sha256"]:
                tmp.unlink()
                damaged.append(rel)
                continue
            os.utime(tmp, ns=(entry["mtime_ns"], entry["mtime_ns"]))
            os.replace(tmp, root / rel)
        return damaged

    def push(self, root: str | Path) -> str:
        """Send what the working copy changed since it last synced; then the new index. Returns
        what it did, in a line to print ("" when there was nothing to send)."""
        root = Path(root)
        synced = _synced(root, self.url)
        old = synced["files"] if synced else {}
        local = _walk(root)
        files, send = {}, []
        for rel, (size, mtime) in local.items():
            entry = old.get(rel)
            if entry and (entry["bytes"], entry["mtime_ns"]) == (size, mtime):
                files[rel] = entry
                continue
            digest = sha256_file(root / rel)
            if entry and entry["sha256"] != digest and rel.startswith(IMMUTABLE):
                raise StoreConflict(f"{root / rel} differs from the lake store's copy, and it "
                                    "is never replaced (a raw capture, payload or ledger "
                                    "event): run `spine verify` on the working copy; spine "
                                    "repair puts the record back")
            files[rel] = {"bytes": size, "sha256": digest, "mtime_ns": mtime}
            if not entry or entry["sha256"] != digest:
                send.append(rel)
        removed = sorted(set(old) - set(local))
        metadata = triggers.pack(root)
        meta = ({"bytes": len(metadata), "sha256": hashlib.sha256(metadata).hexdigest()}
                if metadata else (synced or {}).get("metadata"))  # none here: keep the store's
        same_meta = (synced or {}).get("metadata") == meta
        if not send and not removed and synced and same_meta:
            return ""
        if send:
            self.requests["PUT"] += len(send)
            self.fs.put([str(root / rel) for rel in send], [self._p(rel) for rel in send])
        if removed:
            self.requests["DELETE"] += -(-len(removed) // 1000)  # DeleteObjects: 1,000 a call
            self.fs.rm([self._p(rel) for rel in removed])
        if not same_meta:
            self.requests["PUT"] += 1
            self.fs.pipe_file(self._p(METADATA), metadata)
        index = {"generation": uuid.uuid4().hex, "files": files, "metadata": meta,
                 "written": dt.datetime.now(dt.timezone.utc).isoformat()}
        self.requests["PUT"] += 1
        self.fs.pipe_file(self._p(INDEX), json.dumps(index, sort_keys=True).encode())
        _write_synced(root, self.url, index)
        size = sum(files[rel]["bytes"] for rel in send)
        return (f"lake store {self.url}: pushed {len(send)} files ({size / 1e6:.1f} MB), "
                f"removed {len(removed)}")

    def asked(self) -> str:
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(self.requests.items()))
        return f"{sum(self.requests.values())} requests ({kinds})"


# -- a session: what the Snakefile and the spine commands do -------------------------------------
def held_by_parent() -> bool:
    """A run or command that started this process holds the store and pushes at its end."""
    return bool(os.environ.get(HELD))


def begin(cfg: dict, *, write: bool, out=sys.stderr) -> Store | None:
    """When the config names a `lake_store` and no parent process holds it: take its lock,
    pull into lake_root, and keep the lock if this will write (released by `end`, or when the
    process exits). None when there is no store to sync with."""
    url = cfg.get("lake_store")
    if not url or held_by_parent():
        return None
    store = Store(url)
    try:
        store.lock()
    except (LakeBusy, StoreError):
        raise
    except Exception as err:  # an address, a bucket or credentials that do not work
        raise _unusable(store, err, "taking its lock") from None
    try:
        _say(store.pull(cfg["lake_root"]), out)
    except StoreError:
        store.unlock()
        raise
    except Exception as err:
        store.unlock()
        raise _unusable(store, err, "pulling the working copy") from None
    if write:
        atexit.register(end, store, cfg["lake_root"], out, raising=False)
    else:
        store.unlock()
    return store


def end(store: Store | None, root: str | Path, out=sys.stderr, *, raising: bool = True) -> None:
    """Push what the working copy changed and release the lock (once; also at exit, where a
    failed push is said, not raised)."""
    if store is None or not store.held:
        return
    try:
        pushed = store.push(root)
    except Exception as err:  # the working copy keeps the run's work; the next run pushes it
        failed = err if isinstance(err, StoreError) else _unusable(
            store, err, f"pushing {root}, which keeps what this run wrote; the next run from "
            "it pushes it")
        if raising:
            raise failed from None
        _say(str(failed), out)
        return
    finally:
        store.unlock()
    if pushed:  # quiet when there was nothing to send (a dry run, a run with nothing to do)
        _say(f"{pushed}; {store.asked()} this run", out)


@contextlib.contextmanager
def session(cfg: dict, *, write: bool, out=sys.stderr) -> Iterator[Store | None]:
    store = begin(cfg, write=write, out=out)
    try:
        yield store
    finally:
        end(store, cfg["lake_root"], out)


def _say(line: str, out) -> None:
    if line:
        print(line, file=out, flush=True)


# -- the working copy ---------------------------------------------------------------------------
def _walk(root: Path) -> dict[str, tuple[int, int]]:
    """Every file of the working copy (lake-relative path -> bytes, mtime_ns); hidden files
    (locks, writes in progress, the synced index) are not the lake's."""
    out = {}
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in names:
            if not name.startswith("."):
                path = Path(folder) / name
                stat = path.stat()
                out[path.relative_to(root).as_posix()] = (stat.st_size, stat.st_mtime_ns)
    return out


def _changed(local: dict, old: dict) -> list[str]:
    """Files the working copy changed, added or removed since it last synced."""
    out = [rel for rel, sm in local.items()
           if rel not in old or (old[rel]["bytes"], old[rel]["mtime_ns"]) != sm]
    return sorted(out + [rel for rel in old if rel not in local])


def _synced(root: Path, url: str) -> dict | None:
    path = root / SYNCED
    if not path.exists():
        return None
    synced = json.loads(path.read_text())
    if synced.get("url") != url:
        raise StoreConflict(f"{root} is a working copy of the lake store {synced.get('url')}, "
                            f"not of {url}: point lake_root at another folder")
    return synced


def _write_synced(root: Path, url: str, index: dict) -> None:
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f"{SYNCED}.tmp"
    tmp.write_text(json.dumps({**index, "url": url}, sort_keys=True))
    os.replace(tmp, root / SYNCED)


def _some(rels: list[str]) -> str:
    return ", ".join(rels[:3]) + (f" and {len(rels) - 3} more" if len(rels) > 3 else "")


def _gone(holder: dict) -> bool:
    """Whether the lock's holder was a process of this host that no longer runs."""
    if holder.get("host") != socket.gethostname():
        return False
    try:
        os.kill(int(holder["pid"]), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, KeyError, ValueError, TypeError):
        return False
    return False
