"""Lake integrity, checked: `spine verify` and what it reads.

The lake has two kinds of files:
- **records**, which nothing can derive: raw captures and their payloads, the ledger, fetch
  receipts and ingest records, gate summaries and the manifest itself. They are backed up,
  restored, and re-fetched only as a last resort (spine/lake/backup.py, spine/lake/repair.py).
- **derived** files: clean, the calculations, gate reports and HTML reports. The ordinary
  `snakemake --cores 2 reports` rebuilds any that are missing, from raw and the ledger (Reg
  SHO's daily clean files, which its fetch step writes, `repair` rebuilds from their raw
  capture itself).

`verify` checks every file against the manifest (missing, truncated, corrupt, unrecorded),
clean against the ledger (the capture its footer names is the one the ledger holds), and every
file made from others against the inputs the manifest says it was made from (stale). It only
reads; spine/lake/repair.py moves what it finds out of the lake and rebuilds it.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from spine import lake
from spine.derive import registry
from spine.ingest import ledger
from spine.vocabulary import DATASET_WEEKLY, TIERS

RECORD_PREFIXES = ("raw/", "payloads/", "ledger/", "fetches/", "ingest/", "gates/summary/",
                   "manifest/")


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
    path = root / rel
    try:
        if rel.endswith(".parquet"):
            table = pq.read_table(path)
            if rel.startswith(f"raw/{DATASET_WEEKLY}/"):
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
# their own ledger (`repair.rebuild_regsho_clean`); executed notebooks, logs and benchmark
# records are a job's trace, not data.
DERIVED = ("clean", "calc", "gate", "weekly_report", "revision_report", "revision_index",
           "symbol_report", "report_index")


def derived_kind(rel: str) -> tuple[str, dict[str, str]] | None:
    """The LAYOUT kind and keys of a lake-relative path in a derived layer, or None."""
    for kind in DERIVED:
        m = _layout_patterns()[kind].match(rel)
        if m:
            return kind, m.groupdict()
    return None


def unaccounted_why(rel: str, state: ledger.LakeState, regsho: bool) -> str | None:
    """Why the ledger does not account for a derived file (None: it does). Clean and each
    calculation exist for a week clean holds (the calculations of spine.derive.registry for its
    tier), a gate report for a capture with a verdict, a weekly report for a week with one, a
    revision report for a revision on record, a symbol report for a tier clean holds."""
    found = derived_kind(rel)
    if found is None:
        return None
    kind, k = found
    if kind in ("revision_index", "report_index"):
        return None
    if kind == "weekly_report":
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
    if kind == "revision_report":
        return None if (k["tier"], dt.date.fromisoformat(k["week_start"]), k["old"], k["new"]) in \
            set(state.revisions()) else f"the ledger records no such revision of {where}"
    if s.held is None:
        return f"the ledger holds no accepted capture of {where}"
    if kind == "calc":
        if k["calc"] not in {c.name for c in registry.for_tier(k["tier"], regsho)}:
            return (f"{k['calc']} is not a calculation of tier {k['tier']}"
                    + ("" if regsho or k["calc"] not in registry.names()
                       else " while Reg SHO is off (config regsho.enabled)"))
    return None


def unaccounted(root: str | Path, regsho: bool, state: ledger.LakeState | None = None,
                disk: dict[str, int] | None = None) -> dict[str, str]:
    """Every derived file of the lake the ledger does not account for -> why."""
    state = state or ledger.LakeState.read(root)
    disk = files_on_disk(root) if disk is None else disk
    out = {}
    for rel in disk:
        why = unaccounted_why(rel, state, regsho)
        if why:
            out[rel] = why
    return out


def held_fingerprint(state: ledger.LakeState, regsho: bool) -> str:
    """What decides which derived files the ledger accounts for (`unaccounted_why`): per
    partition the capture clean holds and the event that decided it (so holding nothing again
    after an override is revoked is a new state, not the one before the override), the
    captures with a verdict and the revisions; the registry's calculations per tier (with Reg
    SHO on or off). It names a run's sweep record, so a sweep is due when it changes, and only
    then (an identical re-fetch changes nothing)."""
    parts = [[t, w.isoformat(), s.held, s.decided_by.file if s.decided_by else None,
              sorted(s.verdicts), [[o, n] for o, n, _ in s.revisions]]
             for (t, w), s in sorted(state.parts.items())]
    text = json.dumps([parts, {t: [c.name for c in registry.for_tier(t, regsho)]
                               for t in TIERS}])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _fix(rel: str, root: Path) -> str:
    if not is_record(rel):
        return f"spine repair --lake-root {root}"
    if rel.startswith((f"raw/{DATASET_WEEKLY}/", f"payloads/{DATASET_WEEKLY}/")):
        return (f"spine restore BACKUP --lake-root {root} (or spine repair --refetch "
                f"--lake-root {root}, which downloads the week again)")
    return f"spine restore BACKUP --lake-root {root}"


# -- verify -------------------------------------------------------------------------------------
def verify(root: str | Path, regsho: bool = True) -> list[Problem]:
    """Every problem of the lake at `root`, one per file. `regsho`: whether the config has Reg
    SHO on (the calculations that read it are then part of what the ledger accounts for)."""
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
    state = ledger.LakeState.read(root)
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
