"""Lake integrity, mended: `spine repair`, `spine restore` and the run's sweep (`spine retract`).

`repair` moves damaged files to `<root>/quarantine/<time>/` (nothing is deleted), takes sound
unrecorded records into the manifest, puts back records from a backup (spine/lake/backup.py)
or re-fetches a damaged raw capture when asked, then runs the ordinary derive and verifies
again (spine/lake/verify.py says what is damaged). `restore` brings every record back from a
backup first. `retract` moves the derived files the ledger no longer accounts for.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from spine import lake
from spine.ingest import convert, history, ledger
from spine.lake.backup import Backup
from spine.lake.verify import (Problem, expected_path, held_fingerprint, is_record,
                               unaccounted, verify)
from spine.vocabulary import DATASET_REGSHO, DATASET_WEEKLY

REGSHO_CLEAN = f"clean/{DATASET_REGSHO}/"
REPO = Path(__file__).resolve().parents[2]  # the Snakefile, when not run from a repository


def quarantine(root: Path, rel: str, folder: Path, why: str) -> None:
    """Move a file out of the lake into `folder` (kept, never deleted) and record it."""
    source = root / rel
    if source.exists():
        target = folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(source, target)
        why += f"; kept at {target.relative_to(root).as_posix()}"
    lake.record(root, source, {"removed": True, "why": why})


def adopt(root: Path, rel: str) -> None:
    data = (root / rel).read_bytes()
    lake.record(root, root / rel, {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                                   "inputs": {}, "adopted": True})


def rebuild_regsho_clean(root: Path, trade_date: str) -> None:
    """A Reg SHO day's clean file, from the capture last fetched for it (its ledger)."""
    ev = history.events(root, DATASET_REGSHO, trade_date=trade_date)
    if not len(ev):
        return
    capture = ev["capture_id"].iloc[-1]
    keys = {"trade_date": trade_date}
    raw = pd.read_parquet(lake.partition_dir(root, "raw", DATASET_REGSHO, **keys)
                          / f"{capture}.parquet")
    lake.write_partition(convert.regsho_to_clean(raw, capture), root, "clean",
                         DATASET_REGSHO, keys, metadata={"spine.capture_id": capture})


def snakemake(root: Path, target: str, configfile: str | None, extra: list[str] | None = None,
              log=None) -> int:
    """Run the ordinary workflow on this lake: the Snakefile, profile and config of the
    repository the command is run from (else of the installed package's)."""
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", target]
    if configfile:
        cmd += ["--configfile", str(Path(configfile).resolve())]
    cmd += ["--config", f"lake_root={root}", *(extra or [])]
    print("$ " + " ".join(cmd[2:]), file=log or sys.stdout, flush=True)
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    workdir = Path.cwd() if (Path.cwd() / "Snakefile").exists() else REPO
    return subprocess.run(cmd, cwd=workdir, env=env, stdout=log,
                          stderr=subprocess.STDOUT).returncode


def repair(root: str | Path, *, backup: str | None = None, refetch: bool = False,
           configfile: str | None = None, regsho: bool = True, out=sys.stdout) -> list[Problem]:
    """Heal the lake; returns what is still wrong afterwards (empty: the lake verifies)."""
    root = Path(root).absolute()
    folder = root / "quarantine" / time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    weeks: set[tuple[str, str]] = set()
    with lake.lake_lock(root):
        problems = verify(root, regsho)
        source = Backup(backup) if backup else None
        for p in problems:
            record = is_record(p.path)
            if p.kind == "orphan":  # the ledger no longer holds it: out of the lake, kept
                quarantine(root, p.path, folder, f"retracted: {p.detail}")
                print(f"retracted  {p.path}: {p.detail}", file=out)
            elif p.kind == "unrecorded" and p.path.startswith("raw/") and p.path.endswith(
                    ".payload.zip"):  # a lake from before payloads/: move the payload there
                parts = Path(p.path).parts
                target = lake.payload_path(root, parts[1], dict(
                    k.split("=", 1) for k in parts[2:-1]), parts[-1].removesuffix(".payload.zip"))
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(root / p.path, target)
                adopt(root, target.relative_to(root).as_posix())
                print(f"moved      {p.path} -> {target.relative_to(root)} (payloads live "
                      "outside raw/ now)", file=out)
            elif p.sound:
                adopt(root, p.path)
                print(f"recorded   {p.path} (it was not in the manifest; its content checks "
                      "out)", file=out)
            elif not record or (p.kind == "unrecorded" and not expected_path(p.path)):
                quarantine(root, p.path, folder, f"spine repair: {p.kind}")
                if not expected_path(p.path):
                    print(f"moved      {p.path}: not a file the project writes", file=out)
                    continue
                if p.path.startswith(REGSHO_CLEAN):
                    rebuild_regsho_clean(root, Path(p.path).parent.name.split("=", 1)[1])
                print(f"rebuild    {p.path} ({p.kind})", file=out)
            elif source is not None and source.has(p.path):
                quarantine(root, p.path, folder, f"spine repair: {p.kind}, restored from backup")
                source.get(p.path, root)
                print(f"restored   {p.path} from {backup}", file=out)
            elif refetch and p.path.startswith((f"raw/{DATASET_WEEKLY}/",
                                                f"payloads/{DATASET_WEEKLY}/")):
                quarantine(root, p.path, folder, f"spine repair --refetch: {p.kind}")
                keys = dict(part.split("=", 1) for part in Path(p.path).parts[2:4])
                weeks.add((keys["tier"], keys["week_start"]))
                print(f"refetch    {p.path} ({p.kind}): no backup, so FINRA is asked again",
                      file=out)
            else:
                print(f"cannot     {p.path} ({p.kind}): {p.fix}", file=out)
    for tier, week in sorted(weeks):
        # a re-fetch runs the ordinary ingest: the week's capture is stored again and decided
        # (an identical capture keeps its verdict), then what it touches is derived
        snakemake(root, "refetch", configfile, [f"weeks=[{week}]", f"tiers=[{tier}]"], log=out)
    code = snakemake(root, "reports", configfile, log=out)
    if code != 0:
        print(f"the derive run ended with exit code {code}; its log is above", file=out)
    return verify(root, regsho)


def retract(root: str | Path, regsho: bool, fingerprint: str | None = None,
            out=sys.stdout) -> dict[str, str]:
    """Move every derived file the ledger does not account for to quarantine (kept, with its
    reason in the manifest) and record the sweep (LAYOUT `retracted`, named by the
    fingerprint). Run by every snakemake run (rule `retract`, under the run's lake lock);
    `spine repair` moves the same files (verify's `orphan`). `fingerprint`: the state the run
    planned from; a ledger that changed since is an error, never a silent sweep."""
    root = Path(root).absolute()
    state = ledger.LakeState.read(root)
    now = held_fingerprint(state, regsho)
    if fingerprint is not None and fingerprint != now:
        raise RuntimeError(f"the ledger of {root} changed while this run held its lock "
                           f"(planned from {fingerprint}, now {now}); run the command again")
    moved = unaccounted(root, regsho, state)
    folder = root / "quarantine" / time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    for rel, why in sorted(moved.items()):
        quarantine(root, rel, folder, f"retracted: {why}")
        print(f"retracted  {rel}: {why}", file=out)
    record = {"fingerprint": now, "at": dt.datetime.now(dt.timezone.utc).isoformat(
        timespec="seconds"), "moved_to": folder.relative_to(root).as_posix() if moved else None,
              "moved": moved}
    lake.write_file_atomic(lake.path(root, "retracted", fingerprint=now),
                           json.dumps(record, indent=1).encode())
    return moved


def restore(src: str, root: str | Path, *, configfile: str | None = None,
            rebuild: bool = True, regsho: bool = True, out=sys.stdout) -> list[Problem]:
    """Bring the records back from a backup's latest snapshot (a lake file that differs is
    moved to quarantine first), then rebuild and verify like `repair`."""
    root = Path(root).absolute()
    source = Backup(src)
    snap = source.snapshot
    folder = root / "quarantine" / time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    restored = 0
    with lake.lake_lock(root, wait=600):
        for rel, want in sorted(snap.items()):
            path = root / rel
            if path.exists():
                if (path.stat().st_size == want["bytes"]
                        and lake.sha256_file(path) == want["sha256"]):
                    continue
                if rel.startswith(lake.MANIFEST + "/") and path.stat().st_size > want["bytes"]:
                    continue  # a manifest file that has grown since the backup: keep it
                quarantine(root, rel, folder, "spine restore: differs from the backup")
            source.get(rel, root)
            restored += 1
    print(f"restored {restored} of {len(snap)} files from {src}", file=out)
    if not rebuild:
        return verify(root, regsho)
    return repair(root, configfile=configfile, regsho=regsho, out=out)
