"""The lake: hive-partitioned Parquet under one root, written atomically.

Layout (the public data contract, see docs/data-contract.md):
    <root>/<layer>/<dataset>/<key>=<value>/.../<file>.parquet
Partition keys live in the path only, never inside the files, so DuckDB's
`read_parquet(..., hive_partitioning=true)` and pyarrow datasets read them the same way.

Writes go to a temporary file in the partition directory, are fsynced and then renamed over the
target, under an exclusive lock per partition: a reader sees the old file or the new one, never a
half-written one, and two writers never interleave. Raw captures are written with
`overwrite=False`: a capture file, once there, is never replaced.

Every file written under a lake is recorded in its manifest (`<root>/manifest/*.jsonl`, one
append-only file per writing process): path, bytes, SHA-256, when, by which step, from which
inputs, what made it (`made`: spine/lake/stamp.py). `spine verify` checks the lake against it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import io
import json
import os
import sys
import tempfile
import time
import uuid
import zipfile
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from spine.lake import stamp
from spine.vocabulary import DATASET_REGSHO, DATASET_WEEKLY

PART_FILE = "part-0.parquet"
RUN_LOCK = ".run.lock"  # the lake's run lock (`lake_lock`), a file under its root
_UMASK = os.umask(0)
os.umask(_UMASK)
DATE_COLUMNS = ("week_start", "initial_published", "last_updated", "trade_date")
PARTITION_TYPES = {"tier": pa.string(), "week_start": pa.date32(), "trade_date": pa.date32()}


def key_value(value: object) -> str:
    if isinstance(value, (dt.date, pd.Timestamp)):
        return pd.Timestamp(value).date().isoformat()
    return str(value)


def partition_dir(root: str | Path, layer: str, dataset: str, **keys: object) -> Path:
    path = Path(root) / layer / dataset
    for k, v in keys.items():
        path = path / f"{k}={key_value(v)}"
    return path


# Lakes this process only looks at: a notebook run by hand on a lake it did not create
# (spine.steps.notebook_config) computes and shows, and writes nothing into it.
LOOKING: set[Path] = set()


def looking_at(path: str | Path) -> bool:
    """Whether `path` lies in a lake this process only looks at (see LOOKING)."""
    root = root_of(path) if LOOKING else None
    return root is not None and root in LOOKING


@contextlib.contextmanager
def partition_lock(directory: Path, name: str = ".lock") -> Iterator[None]:
    """Exclusive advisory lock on a partition directory (one writer per partition). `name`
    tells locks of different purposes apart: a process holding one can take another."""
    directory = Path(directory)
    if looking_at(directory / name):
        yield  # nothing is written there, so there is nothing to lock
        return
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / name, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class LakeBusy(RuntimeError):
    """Another run holds the lake's lock (`lake_lock`)."""


@contextlib.contextmanager
def lake_lock(root: str | Path, wait: float = 0.0) -> Iterator[None]:
    """The lake's run lock (rules/common.smk's `onstart` takes the same one): one writer of the
    whole lake at a time. Waits up to `wait` seconds, then raises LakeBusy."""
    path = Path(root) / RUN_LOCK
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LakeBusy(f"another run is using the lake {path.parent}; wait "
                                   "for it to finish and run this again") from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _to_table(df: pd.DataFrame, drop: list[str]) -> pa.Table:
    df = df.drop(columns=[c for c in drop if c in df.columns])
    table = pa.Table.from_pandas(df, preserve_index=False)
    for name in DATE_COLUMNS:
        if name in table.column_names and pa.types.is_timestamp(table.schema.field(name).type):
            table = table.set_column(
                table.schema.get_field_index(name), name, table[name].cast(pa.date32()))
    return table


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file_atomic(path: Path, data: bytes, *, overwrite: bool = True,
                      inputs: dict[str, str] | None = None) -> bool:
    """Write bytes to `path` atomically and record it in the lake's manifest (`inputs`: the
    files it was made from, lake-relative path -> SHA-256). With overwrite=False an existing
    file is kept and False is returned; in a lake this process only looks at, nothing is
    written and False is returned."""
    path = Path(path)
    if looking_at(path):
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; lake files are as readable as any
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # fails if the target exists: never clobbers
            except FileExistsError:
                return False
            finally:
                os.unlink(tmp)
        _fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    root = root_of(path)
    if root is not None:
        record(root, path, {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                            "inputs": stamp.inputs_now() if inputs is None else inputs})
    return True


# -- the manifest -------------------------------------------------------------------------------
# The top folders of a lake. A written file's lake root is the parent of the nearest of these
# above it (no dataset or partition folder is named like one).
LAYERS = ("raw", "payloads", "ledger", "fetches", "ingest", "gates", "clean", "calc", "reports")
MANIFEST = "manifest"
_manifests: dict[tuple[str, int], int] = {}  # (root, pid) -> this process's manifest file


def root_of(path: str | Path) -> Path | None:
    """The lake root a file lies in, or None when it is not under a lake layer."""
    path = Path(path).absolute()
    for parent in path.parents:
        if parent.name in LAYERS or parent.name == MANIFEST:
            return parent.parent
    return None


def producer() -> str:
    """What is writing: the step and job (set by spine.notebooks) or the command line."""
    if os.environ.get("SPINE_PRODUCER"):
        return os.environ["SPINE_PRODUCER"]
    return " ".join([Path(sys.argv[0]).name] + sys.argv[1:2]) if sys.argv else "python"


def record(root: str | Path, path: str | Path, entry: dict) -> None:
    """Append one record to this process's manifest file of the lake at `root` (one line,
    one write, fsynced). `entry` holds bytes/sha256/inputs, or `removed` with a reason."""
    root = Path(root).absolute()
    key = (str(root), os.getpid())
    fd = _manifests.get(key)
    if fd is not None and os.fstat(fd).st_nlink == 0:  # its file was deleted: start a new one
        os.close(fd)
        fd = None
    if fd is None:
        folder = root / MANIFEST
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
        fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666 & ~_UMASK)
        _manifests[key] = fd
    line = {"path": Path(path).absolute().relative_to(root).as_posix(), "at": time.time_ns(),
            "by": producer(), **entry}
    line["made"] = stamp.made(line)  # and kept: what this process wrote (spine.notebooks)
    os.write(fd, (json.dumps(line, sort_keys=True) + "\n").encode())
    os.fsync(fd)


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_partition(df: pd.DataFrame, root: str | Path, layer: str, dataset: str,
                    keys: dict[str, object], *, filename: str = PART_FILE,
                    overwrite: bool = True, metadata: dict[str, str] | None = None,
                    inputs: dict[str, str] | None = None) -> Path:
    """Write one partition file atomically; returns its path. `metadata` goes into the
    Parquet footer (key-value), so it changes in the same rename as the data; `inputs` go
    into the manifest (what it was made from)."""
    directory = partition_dir(root, layer, dataset, **keys)
    path = directory / filename
    table = _to_table(df, drop=list(keys))
    if metadata:
        merged = dict(table.schema.metadata or {})
        merged.update({k.encode(): str(v).encode() for k, v in metadata.items()})
        table = table.replace_schema_metadata(merged)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    with partition_lock(directory):
        write_file_atomic(path, sink.getvalue().to_pybytes(), overwrite=overwrite,
                          inputs=inputs)
    return path


def zip_parts(parts: list[tuple[str, bytes]]) -> bytes:
    """Payload parts (name, bytes) as one deflate-compressed zip, in order, byte for byte."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for name, body in parts:
            zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), body,
                        compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def write_json(path: str | Path, payload: dict, inputs: dict[str, str] | None = None) -> Path:
    path = Path(path)
    text = json.dumps(payload, indent=2, sort_keys=True, default=key_value) + "\n"
    write_file_atomic(path, text.encode(), inputs=inputs)
    return path


def file_metadata(path: str | Path) -> dict[str, str]:
    """The key-value metadata of a Parquet file's footer (without the pandas entry)."""
    meta = pq.read_schema(path).metadata or {}
    return {k.decode(): v.decode() for k, v in meta.items() if k != b"pandas"}


def made_from(root: str | Path, *paths: str | Path) -> dict[str, str]:
    """For the manifest: what a file was made from (lake-relative path -> SHA-256 now)."""
    base = Path(root).absolute()
    return {Path(p).absolute().relative_to(base).as_posix(): sha256_file(p) for p in paths}


def held_capture(path: str | Path) -> str | None:
    """The capture_id a clean partition file holds (its footer), or None if there is none."""
    return file_metadata(path).get("spine.capture_id") if Path(path).exists() else None


def read_json(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())


def _date_columns_to_timestamps(df: pd.DataFrame) -> pd.DataFrame:
    for name in DATE_COLUMNS:
        if name in df.columns:
            df[name] = pd.to_datetime(df[name]).astype("datetime64[ns]")
    return df


def read_dataset(root: str | Path, layer: str, dataset: str, *, columns: list[str] | None = None,
                 filter: ds.Expression | None = None) -> pd.DataFrame:
    """Read a whole dataset (all partitions) with its hive keys as columns."""
    base = Path(root) / layer / dataset
    if not base.exists():
        raise FileNotFoundError(f"no dataset at {base}; run the pipeline that writes it first")
    files = sorted(str(p) for p in base.rglob("*.parquet") if not p.name.startswith("."))
    if not files:
        raise FileNotFoundError(f"dataset {base} has no Parquet files yet")
    keys = [part.split("=", 1)[0] for part in Path(files[0]).relative_to(base).parts[:-1]]
    partitioning = ds.partitioning(
        pa.schema([(k, PARTITION_TYPES.get(k, pa.string())) for k in keys]), flavor="hive")
    dataset_ = ds.dataset(files, format="parquet", partitioning=partitioning,
                          partition_base_dir=str(base))
    table = dataset_.to_table(columns=columns, filter=filter)
    return _date_columns_to_timestamps(table.to_pandas())


def read_partition(root: str | Path, layer: str, dataset: str, keys: dict[str, object], *,
                   filename: str = PART_FILE, columns: list[str] | None = None) -> pd.DataFrame:
    """Read one partition file and put its keys back as columns."""
    path = partition_dir(root, layer, dataset, **keys) / filename
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    try:
        df = pq.read_table(path, columns=columns).to_pandas()
    except (OSError, pa.ArrowException) as err:  # truncated or corrupt
        raise OSError(f"{path} cannot be read ({err}). Run `spine verify`; "
                      "workflows/incident/DATABASE_RECOVERY.md says how to repair it.") from None
    for k, v in keys.items():
        df.insert(0, k, pd.Timestamp(v) if k in DATE_COLUMNS else v)
    df = df[list(keys) + [c for c in df.columns if c not in keys]]
    return _date_columns_to_timestamps(df)


def content_hash(df: pd.DataFrame) -> str:
    """Order-independent SHA-256 of a table's content (the API returns rows unsorted): a 64-bit
    hash per row (pandas' hash_pandas_object, every value at full precision), sorted, hashed
    together with the column names and dtypes. Vectorised: ~0.1 s for a 174k-row week, where
    sorting and writing the rows as CSV took 2.6 s."""
    rows = pd.util.hash_pandas_object(df, index=False).to_numpy()
    digest = hashlib.sha256()
    digest.update(json.dumps([[c, str(t)] for c, t in df.dtypes.items()]).encode())
    digest.update(np.sort(rows).tobytes())
    return digest.hexdigest()


# Where each step puts its files, relative to the lake root. The Snakefile and the notebooks
# both build paths from these, so the layout is written down once.
_WEEK = DATASET_WEEKLY + "/tier={tier}/week_start={week_start}"  # a tier's week
_DAY = DATASET_REGSHO + "/trade_date={trade_date}"  # a Reg SHO trade date
LAYOUT = {
    "raw": "raw/" + _WEEK,
    "fetch": "fetches/" + _WEEK + "/{fetch_key}.json",
    "capture": "raw/" + _WEEK + "/{capture_id}.parquet",
    # the payload exactly as received (API pages, download files), outside the dataset folders
    "payload": "payloads/{dataset}/{partition}/{capture_id}.zip",
    "ledger_event": "ledger/" + _WEEK + "/{event_file}",
    "ingest": "ingest/{run_key}.json",
    "gate": "gates/" + _WEEK + "/capture_id={capture_id}.json",
    "clean": "clean/" + _WEEK + "/" + PART_FILE,
    "calc": "calc/{calc}/tier={tier}/week_start={week_start}/" + PART_FILE,
    "weekly_report": "reports/weekly/week_start={week_start}.html",
    "revision_report": "reports/revisions/tier={tier}/week_start={week_start}/{old}_to_{new}.html",
    "revision_index": "reports/revisions/index.html",
    "symbol_report": "reports/symbols/tier={tier}/symbol={symbol}.html",
    "report_index": "reports/index.html",
    "regsho_capture": "raw/" + _DAY + "/{capture_id}.parquet",
    "regsho_event": "ledger/" + _DAY + "/{event_file}",
    "regsho_fetch": "fetches/" + _DAY + "/fetch.json",
    "regsho_clean": "clean/" + _DAY + "/" + PART_FILE,
    "regsho_week": "fetches/" + DATASET_REGSHO + "/weeks/week_start={week_start}.json",
    "gate_summary": "gates/summary/{run_kind}.txt",
    # each sweep of derived files the ledger no longer accounts for (spine.lake.repair.retract),
    # named by the fingerprint of what the ledger held: a new one is due when that changes
    "retracted": "quarantine/sweeps/{fingerprint}.json",
    # executed notebooks, logs and Snakemake benchmark records, per job
    "executed": "runs/{step}/{job}.ipynb",
    "log": "logs/{step}/{job}.log",
    "bench": "benchmarks/{step}/{job}.tsv",
}


def job(step: str, **keys: object) -> str:
    """The name of one job of a step, for its executed notebook, log and benchmark record:
    its partition keys as `key=value` folders (a fetch key, capture, run key or capture pair as
    the file)."""
    parts = [f"{k}={key_value(v)}" for k, v in keys.items()
             if k in ("calc", "symbol", "tier", "week_start", "trade_date")]
    parts += [key_value(keys[k]) for k in ("fetch_key", "capture_id", "run_key") if k in keys]
    if "old" in keys:
        parts.append(f"{keys['old']}_to_{keys['new']}")
    return "/".join(parts) or step


def payload_path(root: str | Path, dataset: str, partition: dict[str, object],
                 capture_id: str) -> Path:
    folder = "/".join(f"{k}={key_value(v)}" for k, v in partition.items())
    return path(root, "payload", dataset=dataset, partition=folder, capture_id=capture_id)


def path(root: str | Path, kind: str, **keys: object) -> Path:
    return Path(root) / LAYOUT[kind].format(**{k: key_value(v) for k, v in keys.items()})
