"""Lake backups: `spine backup` copies the records (what nothing can derive, see
spine/lake/verify.py) to a folder or object store; `spine restore` (spine/lake/repair.py)
brings them back from one.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import os
import sys
from pathlib import Path

import fsspec

from spine import lake
from spine.lake.verify import files_on_disk, is_record, manifest, verify

SNAPSHOTS = "snapshots"


class Backup:
    """A backup folder or object store URL (anything fsspec opens: a path, file://, s3://...).

    Layout: the lake's record files under their lake paths, and `snapshots/<time>.json`, each
    listing every file of one consistent backup with its bytes and SHA-256. A file's path never
    changes content in the lake (records are immutable or append-only), so a backup copies a
    file only when the destination does not have it with the same size."""

    def __init__(self, url: str):
        self.url = str(url)
        self.fs, self.base = fsspec.core.url_to_fs(self.url)
        self.base = self.base.rstrip("/")

    def _p(self, rel: str) -> str:
        return f"{self.base}/{rel}"

    def sizes(self) -> dict[str, int]:
        self.fs.invalidate_cache()
        if not self.fs.exists(self.base):
            return {}
        found = self.fs.find(self.base, detail=True)
        prefix = self.base.rstrip("/") + "/"
        return {name[len(prefix):] if name.startswith(prefix) else name.lstrip("/"):
                info.get("size", 0) for name, info in found.items()}

    def put(self, root: Path, rel: str) -> None:
        if self._local():
            tmp = self._p(rel) + ".partial"
            self.fs.makedirs(os.path.dirname(tmp), exist_ok=True)
            self.fs.put_file(str(root / rel), tmp)
            self.fs.mv(tmp, self._p(rel))
        else:  # an object store writes an object whole or not at all
            self.fs.put_file(str(root / rel), self._p(rel))

    def write_snapshot(self, files: dict[str, dict]) -> str:
        name = f"{SNAPSHOTS}/{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%S%f}.json"
        body = json.dumps({"files": files, "written": dt.datetime.now(dt.timezone.utc)
                           .isoformat()}, indent=1, sort_keys=True).encode()
        if self._local():
            self.fs.makedirs(os.path.dirname(self._p(name)), exist_ok=True)
        self.fs.pipe_file(self._p(name), body)
        return name

    def _local(self) -> bool:
        protocol = self.fs.protocol
        return "file" in (protocol if isinstance(protocol, tuple) else (protocol,))

    @functools.cached_property
    def snapshot(self) -> dict[str, dict]:
        """The latest snapshot's files (read once: a restore asks for it per file)."""
        try:
            names = sorted(self.fs.glob(self._p(f"{SNAPSHOTS}/*.json")))
        except FileNotFoundError:
            names = []
        if not names:
            raise FileNotFoundError(f"{self.url} holds no backup snapshot "
                                    f"({SNAPSHOTS}/*.json); is it the folder `spine backup` "
                                    "wrote to?")
        return json.loads(self.fs.cat_file(names[-1]))["files"]

    def has(self, rel: str) -> bool:
        try:
            return rel in self.snapshot
        except FileNotFoundError:
            return False

    def get(self, rel: str, root: Path) -> None:
        """Copy one file back into the lake, checked against the snapshot's SHA-256."""
        want = self.snapshot[rel]
        data = self.fs.cat_file(self._p(rel))
        if hashlib.sha256(data).hexdigest() != want["sha256"]:
            raise ValueError(f"the backup's copy of {rel} at {self._p(rel)} is damaged (its "
                             "SHA-256 differs from the snapshot's); try an older backup")
        path = root / rel
        if rel.startswith(lake.MANIFEST + "/"):  # the manifest's own files are not recorded
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.restore")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        else:
            lake.write_file_atomic(path, data)


def backup(root: str | Path, dest: str, out=sys.stdout) -> dict:
    """Copy every record file the destination lacks, then write a snapshot listing them all.
    Damaged records are not copied (the destination keeps its good copy)."""
    root = Path(root).absolute()
    target = Backup(dest)
    with lake.lake_lock(root, wait=600):
        damaged = {p.path for p in verify(root) if is_record(p.path)}
        recs = manifest(root)
        have = target.sizes()
        files, copied, sent = {}, 0, 0
        for rel, size in sorted(files_on_disk(root).items()) + _manifest_files(root):
            if not is_record(rel):
                continue
            if rel in damaged:
                print(f"skipped    {rel}: damaged (see spine verify)", file=out)
                continue
            rec = recs.get(rel)
            digest = (rec["sha256"] if rec and rec.get("bytes") == size
                      else lake.sha256_file(root / rel))
            files[rel] = {"bytes": size, "sha256": digest}
            if have.get(rel) != size:
                target.put(root, rel)
                copied, sent = copied + 1, sent + size
        name = target.write_snapshot(files)
    print(f"backup {dest}: {len(files)} files in snapshot {name}; {copied} copied "
          f"({sent / 1e6:.1f} MB), {len(files) - copied} already there", file=out)
    return {"files": len(files), "copied": copied, "bytes": sent, "snapshot": name}


def _manifest_files(root: Path) -> list[tuple[str, int]]:
    folder = root / lake.MANIFEST
    return [(p.relative_to(root).as_posix(), p.stat().st_size)
            for p in sorted(folder.glob("*.jsonl"))] if folder.exists() else []
