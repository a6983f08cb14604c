"""Lake integrity: `spine verify`, `spine repair`, `spine backup` and `spine restore`.

The lake has two kinds of files:
- **records**, which nothing can derive: raw captures and their payloads, the ledger, fetch
  receipts and ingest records, gate summaries and the manifest itself. They are backed up, restored, and re-fetched only as a last
  resort.
- **derived** files: clean, the calculations, gate reports and HTML reports. The ordinary
  `snakemake --cores 2 reports` rebuilds any that are missing, from raw and the ledger (Reg
  SHO's daily clean files, which its fetch step writes, `repair` rebuilds from their raw
  capture itself).

`verify` checks every file against the manifest (missing, truncated, corrupt, unrecorded),
clean against the ledger (the capture its footer names is the one the ledger holds), and every
file made from others against the inputs the manifest says it was made from (stale). `repair`
moves damaged files to `<root>/quarantine/<time>/` (nothing is deleted), takes sound unrecorded
records into the manifest, puts back records from a backup or re-fetches a damaged raw capture
when asked, then runs the ordinary derive and verifies again.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from spine import lake, plan

RECORD_PREFIXES = ("raw/", "payloads/", "ledger/", "fetches/", "ingest/", "gates/summary/",
                   "manifest/")
REGSHO_CLEAN = "clean/finra_regsho_daily/"
REPO = Path(__file__).resolve().parents[2]  # the Snakefile, when not run from a repository
SNAPSHOTS = "snapshots"


def is_record(rel: str) -> bool:
    return rel.startswith(RECORD_PREFIXES)


@dataclass(frozen=True)
class Problem:
    kind: str  # missing, truncated, changed, corrupt, unrecorded, behind, orphan, stale
    path: str  # relative to the lake root
    detail: str
    fix: str
    sound: bool = False  # unrecorded, but its content checks out (repair records it)

    def line(self) -> str:
        return f"{self.kind:<10} {self.path}: {self.detail}. Fix: {self.fix}"


# -- reading the manifest and the lake -----------------------------------------------------------
def manifest(root: str | Path) -> dict[str, dict]:
    """The latest manifest record of every path (a torn last line of a killed writer is
    skipped: the file it would have recorded then shows as unrecorded)."""
    latest: dict[str, dict] = {}
    folder = Path(root) / lake.MANIFEST
    for file in sorted(folder.glob("*.jsonl")) if folder.exists() else []:
        for line in file.read_bytes().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            old = latest.get(rec.get("path"))
            if old is None or rec["at"] >= old["at"]:
                latest[rec["path"]] = rec
    return latest


def files_on_disk(root: str | Path) -> dict[str, int]:
    """Every lake file (lake-relative path -> bytes) in the layers; hidden files (locks,
    temporary files of a write in progress) are not lake files."""
    root = Path(root)
    out = {}
    for layer in lake.LAYERS:
        base = root / layer
        for folder, dirs, files in os.walk(base):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for name in files:
                if not name.startswith("."):
                    path = Path(folder) / name
                    out[path.relative_to(root).as_posix()] = path.stat().st_size
    return out


def _sound(root: Path, rel: str) -> str | None:
    """Why a file without a manifest record cannot be trusted, or None if it checks out by
    its own content (a raw capture's name is its content hash; Parquet and zip files read)."""
    import pyarrow.parquet as pq

    path = root / rel
    try:
        if rel.endswith(".parquet"):
            table = pq.read_table(path)
            if rel.startswith("raw/finra_otc_weekly/"):
                df = table.to_pandas().drop(columns=["capture_id", "retrieved_at"])
                if lake.content_hash(df)[:16] != path.stem:
                    return "its content does not hash to its name"
        elif rel.endswith(".zip"):
            with zipfile.ZipFile(path) as zf:
                bad = zf.testzip()
                if bad:
                    return f"zip member {bad} is corrupt"
        elif rel.endswith(".json"):
            json.loads(path.read_text())
    except Exception as err:  # noqa: BLE001 - any failure to read is the answer
        return f"it cannot be read ({type(err).__name__}: {str(err)[:120]})"
    return None


@functools.lru_cache(maxsize=1)
def _layout_patterns() -> dict[str, object]:
    """LAYOUT kind -> a regex of its paths, each key a named group (`{partition}` may span
    folders)."""
    import re

    out = {}
    for kind, template in lake.LAYOUT.items():
        parts = re.split(r"\{(\w+)\}", template)
        rx = "".join((f"(?P<{p}>.+)" if p == "partition" else f"(?P<{p}>[^/]+)") if i % 2
                     else re.escape(p) for i, p in enumerate(parts))
        out[kind] = re.compile(rx + "$")
    return out


def expected_path(rel: str) -> bool:
    """Whether a lake-relative path is one the project writes (spine.lake.LAYOUT)."""
    return any(p.match(rel) for p in _layout_patterns().values())


# -- what the ledger accounts for -----------------------------------------------------------------
# The derived layers of the weekly dataset, by LAYOUT kind. Reg SHO's daily clean files follow
# their own ledger (`rebuild_regsho_clean`); executed notebooks, logs and benchmark records are
# a job's trace, not data.
DERIVED = ("clean", "calc", "gate", "report", "revision", "revision_index", "symbol_report",
           "report_index")


def derived_kind(rel: str) -> tuple[str, dict[str, str]] | None:
    """The LAYOUT kind and keys of a lake-relative path in a derived layer, or None."""
    for kind in DERIVED:
        m = _layout_patterns()[kind].match(rel)
        if m:
            return kind, m.groupdict()
    return None


def unaccounted_why(rel: str, state: plan.LakeState, regsho: bool) -> str | None:
    """Why the ledger does not account for a derived file (None: it does). Clean and each
    calculation exist for a week clean holds (the calculations of spine.derive.registry for its tier),
    a gate report for a capture with a verdict, a weekly report for a week with one, a
    revision report for a revision on record, a symbol report for a tier clean holds."""
    found = derived_kind(rel)
    if found is None:
        return None
    kind, k = found
    if kind in ("revision_index", "report_index"):
        return None
    if kind == "report":
        weeks = {w.isoformat() for _, w in state.gated()}
        return None if k["week_start"] in weeks else (
            f"no tier of week {k['week_start']} has a gate verdict in the ledger")
    if kind == "symbol_report":
        return None if any(t == k["tier"] for t, _ in state.accepted()) else (
            f"clean holds no {k['tier']} week")
    s = state.get(k["tier"], k["week_start"])
    where = f"{k['tier']} week {k['week_start']}"
    if kind == "gate":
        return None if k["capture_id"] in s.verdicts else (
            f"the ledger holds no gate verdict of capture {k['capture_id']} of {where}")
    if kind == "revision":
        return None if (k["tier"], dt.date.fromisoformat(k["week_start"]), k["old"], k["new"]) in \
            set(state.revisions()) else f"the ledger records no such revision of {where}"
    if s.held is None:
        return f"the ledger holds no accepted capture of {where}"
    if kind == "calc":
        from spine.derive import registry

        if k["calc"] not in {c.name for c in registry.for_tier(k["tier"], regsho)}:
            return (f"{k['calc']} is not a calculation of tier {k['tier']}"
                    + ("" if regsho or k["calc"] not in registry.names()
                       else " while Reg SHO is off (config regsho.enabled)"))
    return None


def unaccounted(root: str | Path, regsho: bool, state: plan.LakeState | None = None,
                disk: dict[str, int] | None = None) -> dict[str, str]:
    """Every derived file of the lake the ledger does not account for -> why."""
    state = state or plan.LakeState.read(root)
    disk = files_on_disk(root) if disk is None else disk
    out = {}
    for rel in disk:
        why = unaccounted_why(rel, state, regsho)
        if why:
            out[rel] = why
    return out


def held_fingerprint(state: plan.LakeState, regsho: bool) -> str:
    """What decides which derived files the ledger accounts for (`unaccounted_why`): per
    partition the capture clean holds and the event that decided it (so holding nothing again
    after an override is revoked is a new state, not the one before the override), the
    captures with a verdict and the revisions; the registry's calculations per tier (with Reg
    SHO on or off). It names a run's sweep record, so a sweep is due when it changes, and only
    then (an identical re-fetch changes nothing)."""
    from spine.derive import registry

    parts = [[t, w.isoformat(), s.held, s.decided_by.file if s.decided_by else None,
              sorted(s.verdicts), [[o, n] for o, n, _ in s.revisions]]
             for (t, w), s in sorted(state.parts.items())]
    text = json.dumps([parts, {t: [c.name for c in registry.for_tier(t, regsho)]
                               for t in plan.TIERS}])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def retract(root: str | Path, regsho: bool, fingerprint: str | None = None,
            out=sys.stdout) -> dict[str, str]:
    """Move every derived file the ledger does not account for to quarantine (kept, with its
    reason in the manifest) and record the sweep (LAYOUT `retracted`, named by the
    fingerprint). Run by every snakemake run (rule `retract`, under the run's lake lock);
    `spine repair` moves the same files (verify's `orphan`). `fingerprint`: the state the run
    planned from; a ledger that changed since is an error, never a silent sweep."""
    root = Path(root).absolute()
    state = plan.LakeState.read(root)
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


def _fix(rel: str, root: Path) -> str:
    if not is_record(rel):
        return f"spine repair --lake-root {root}"
    if rel.startswith(("raw/finra_otc_weekly/", "payloads/finra_otc_weekly/")):
        return (f"spine restore BACKUP --lake-root {root} (or spine repair --refetch "
                f"--lake-root {root}, which downloads the week again)")
    return f"spine restore BACKUP --lake-root {root}"


# -- verify -------------------------------------------------------------------------------------
def verify(root: str | Path, regsho: bool = True) -> list[Problem]:
    """Every problem of the lake at `root`, one per file. `regsho`: whether the config has Reg
    SHO on (the calculations that read it are then part of what the ledger accounts for)."""
    import pyarrow.parquet as pq

    root = Path(root)
    everything = manifest(root)
    recs = {p: r for p, r in everything.items() if not r.get("removed")}
    gone = {p for p, r in everything.items() if r.get("removed")}
    disk = files_on_disk(root)
    problems: dict[str, Problem] = {}

    def add(kind: str, rel: str, detail: str, sound: bool = False) -> None:
        problems.setdefault(rel, Problem(kind, rel, detail, _fix(rel, root), sound))

    for rel, rec in recs.items():
        if rel.startswith(lake.MANIFEST + "/"):
            continue
        if rel not in disk:
            add("missing", rel, f"recorded {_when(rec)} by {rec['by']}, not on disk")
        elif disk[rel] != rec["bytes"]:
            kind = "truncated" if disk[rel] < rec["bytes"] else "changed"
            add(kind, rel, f"{disk[rel]:,} bytes where {rec['bytes']:,} were written")
        elif lake.sha256_file(root / rel) != rec["sha256"]:
            add("corrupt", rel, "its SHA-256 differs from the one recorded when written")
    for rel in disk:
        if rel not in recs:
            why = (_sound(root, rel) if expected_path(rel) else
                   "its path is not one the project writes (a reader of its folder would "
                   "read it as data)")
            add("unrecorded", rel, "no manifest record" + (f", and {why}" if why else
                                                             " (its content checks out)"),
                sound=why is None)
    # derived files the ledger does not account for (a week it stopped holding, ...)
    state = plan.LakeState.read(root)
    for rel, why in unaccounted(root, regsho, state, disk).items():
        problems.setdefault(rel, Problem("orphan", rel, why, f"spine repair --lake-root {root} "
                                         "(or the next snakemake run) moves it to quarantine"))
    # made from inputs that have changed or gone since
    for rel, rec in recs.items():
        for src, src_sha in (rec.get("inputs") or {}).items():
            now = recs.get(src)
            if rel not in disk:
                continue
            if now is None and src in gone:
                add("stale", rel, f"made from {src}, which the lake no longer holds")
            elif now is not None and now["sha256"] != src_sha:
                add("stale", rel, f"made from a version of {src} that is no longer there")
    # clean against the ledger
    for (tier, week), part in state.parts.items():
        clean = lake.path(root, "clean", tier=tier, week_start=week)
        rel = clean.relative_to(root).as_posix()
        if part.held is None:
            continue
        raw = lake.path(root, "capture", tier=tier, week_start=week, capture_id=part.held)
        raw_rel = raw.relative_to(root).as_posix()
        if raw_rel not in disk:
            add("missing", raw_rel, f"the capture the ledger holds for {tier} {week}")
        if rel in disk and rel not in problems:
            try:
                holds = (pq.read_schema(clean).metadata or {}).get(b"spine.capture_id", b"")
            except Exception:  # noqa: BLE001
                add("corrupt", rel, "its Parquet footer cannot be read")
                continue
            if holds.decode() != part.held:
                problems.setdefault(rel, Problem(
                    "behind", rel, f"holds capture {holds.decode() or '?'} while the ledger "
                    f"holds {part.held}", f"snakemake --cores 2 reports --config "
                    f"lake_root={root}"))
    return sorted(problems.values(), key=lambda p: (not is_record(p.path), p.path))


def _when(rec: dict) -> str:
    return dt.datetime.fromtimestamp(rec["at"] / 1e9, dt.timezone.utc).strftime(
        "%Y-%m-%d %H:%M UTC")


# -- repair -------------------------------------------------------------------------------------
class LakeBusy(RuntimeError):
    pass


class lake_lock:  # noqa: N801 - used as `with lake_lock(root):`
    """The lake's run lock (the Snakefile's `onstart` takes the same one): one writer of the
    whole lake at a time. Waits up to `wait` seconds."""

    def __init__(self, root: str | Path, wait: float = 0.0):
        self.path, self.wait = Path(root) / ".run.lock", wait

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = open(self.path, "w")
        deadline = time.monotonic() + self.wait
        while True:
            try:
                fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    self.handle.close()
                    raise LakeBusy(f"another run is using the lake {self.path.parent}; wait "
                                   "for it to finish and run this again") from None
                time.sleep(0.2)

    def __exit__(self, *exc):
        fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()


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
    import pandas as pd

    from spine.derive import clean as clean_
    from spine.ingest import ledger

    ev = ledger.events(root, "finra_regsho_daily", trade_date=trade_date)
    if not len(ev):
        return
    capture = ev["capture_id"].iloc[-1]
    keys = {"trade_date": trade_date}
    raw = pd.read_parquet(lake.partition_dir(root, "raw", "finra_regsho_daily", **keys)
                          / f"{capture}.parquet")
    lake.write_partition(clean_.regsho_to_clean(raw, capture), root, "clean",
                         "finra_regsho_daily", keys, metadata={"spine.capture_id": capture})


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
    return subprocess.run(cmd, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT).returncode


def repair(root: str | Path, *, backup: str | None = None, refetch: bool = False,
           configfile: str | None = None, regsho: bool = True, out=sys.stdout) -> list[Problem]:
    """Heal the lake; returns what is still wrong afterwards (empty: the lake verifies)."""
    root = Path(root).absolute()
    folder = root / "quarantine" / time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    weeks: set[tuple[str, str]] = set()
    with lake_lock(root):
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
            elif refetch and p.path.startswith(("raw/finra_otc_weekly/",
                                                "payloads/finra_otc_weekly/")):
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


# -- backup and restore -------------------------------------------------------------------------
class Backup:
    """A backup folder or object store URL (anything fsspec opens: a path, file://, s3://...).

    Layout: the lake's record files under their lake paths, and `snapshots/<time>.json`, each
    listing every file of one consistent backup with its bytes and SHA-256. A file's path never
    changes content in the lake (records are immutable or append-only), so a backup copies a
    file only when the destination does not have it with the same size."""

    def __init__(self, url: str):
        import fsspec

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
        protocols = self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        return "file" in protocols

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
    with lake_lock(root, wait=600):
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


def restore(src: str, root: str | Path, *, configfile: str | None = None,
            rebuild: bool = True, regsho: bool = True, out=sys.stdout) -> list[Problem]:
    """Bring the records back from a backup's latest snapshot (a lake file that differs is
    moved to quarantine first), then rebuild and verify like `repair`."""
    root = Path(root).absolute()
    source = Backup(src)
    snap = source.snapshot
    folder = root / "quarantine" / time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    restored = 0
    with lake_lock(root, wait=600):
        for rel, want in sorted(snap.items()):
            path = root / rel
            if path.exists():
                if path.stat().st_size == want["bytes"] and lake.sha256_file(path) == want["sha256"]:
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
