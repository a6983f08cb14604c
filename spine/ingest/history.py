"""The capture ledger's events as tables: record one, read them, and the lake as it was known.

`record` appends one event file (the layout `spine.ingest.ledger` describes; that module folds
the listing into what clean holds). `events` reads them as a table; `validity` turns them into
intervals per capture (valid_from, valid_to) with the fold's one rule
(`PartitionState.apply`), which makes "what did we know at ledger time T" a filter:
`as_known_at()` (also `spine.as_known_at`).
"""

from __future__ import annotations

import datetime as dt
import json
import warnings
from pathlib import Path

import pandas as pd

from spine import lake
from spine.ingest import convert
from spine.ingest.ledger import EVENTS, HOLDING, LETTING_GO, Event, PartitionState
from spine.schemas import CLEAN_COLUMNS, RegShoDaily
from spine.vocabulary import DATASET_REGSHO, DATASET_WEEKLY

COLUMNS = ["event", "capture_id", "recorded_at", "previous_capture", "source", "request", "rows",
           "max_last_updated", "content_hash", "payload_sha256", "raw_file", "run", "reason",
           "report"]


def now() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC")


def record(root: str | Path, dataset: str, partition: dict[str, str], event: str,
           capture_id: str, *, at: pd.Timestamp | None = None, **fields) -> dict:
    """Append one event. Unknown fields are refused so the ledger keeps one layout."""
    if event not in EVENTS:
        raise ValueError(f"unknown ledger event {event!r}; one of {EVENTS}")
    extra = set(fields) - set(COLUMNS)
    if extra:
        raise ValueError(f"unknown ledger fields {sorted(extra)}")
    at = (at or now()).tz_convert("UTC")
    row = {c: None for c in COLUMNS} | fields | {"event": event, "capture_id": capture_id,
                                                 "recorded_at": at}
    for col in ("request", "report"):
        if isinstance(row[col], dict):
            row[col] = json.dumps(row[col], sort_keys=True, default=str)
    df = pd.DataFrame([row])[COLUMNS]
    df["recorded_at"] = pd.to_datetime(df["recorded_at"], utc=True)
    df["rows"] = df["rows"].astype("Int64")
    for col in ("previous_capture", "source", "request", "max_last_updated", "content_hash",
                "payload_sha256", "raw_file", "run", "reason", "report"):
        df[col] = df[col].astype("string")
    name = f"{at:%Y%m%dT%H%M%S%f}-{event}-{capture_id}.parquet"
    lake.write_partition(df, root, "ledger", dataset, partition, filename=name, overwrite=False)
    return row | {"file": name}


def events(root: str | Path, dataset: str, **partition: str) -> pd.DataFrame:
    """Every ledger event of a dataset (optionally of one partition), oldest first."""
    base = Path(root) / "ledger" / dataset
    if partition:  # one partition: read its folder only (this runs in DAG evaluation)
        folder = lake.partition_dir(root, "ledger", dataset, **partition)
        files = sorted(folder.glob("*.parquet")) if folder.exists() else []
        if not files:
            return pd.DataFrame(columns=COLUMNS + list(partition))
        df = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
        for key, value in partition.items():
            df[key] = str(value)
    else:
        if not base.exists():
            return pd.DataFrame(columns=COLUMNS)
        df = lake.read_dataset(root, "ledger", dataset)
        for key in ("week_start", "trade_date"):
            if key in df.columns:
                df[key] = df[key].dt.strftime("%Y-%m-%d")
    return df.sort_values("recorded_at", kind="mergesort").reset_index(drop=True)


def validity(root: str | Path, dataset: str) -> pd.DataFrame:
    """One row per (partition, time clean started holding a capture): capture_id, the event
    that made it so, valid_from, valid_to (NaT = current).

    The ledger is the commit point of a decision; clean is derived from it. Each partition's
    events are folded in time order with the same rule as the plan (`PartitionState.apply`),
    and an interval starts whenever what clean holds changes.
    """
    ev = events(root, dataset)
    keys = [k for k in ("tier", "week_start", "trade_date") if k in ev.columns]
    columns = keys + ["capture_id", "event", "valid_from", "valid_to"]
    ev = ev[ev["event"].isin(HOLDING + LETTING_GO)] if len(ev) else ev
    if not len(ev):
        return pd.DataFrame(columns=columns)
    ev = ev.assign(recorded_at=pd.to_datetime(ev["recorded_at"], utc=True))
    rows = []
    for part, group in ev.sort_values("recorded_at", kind="mergesort").groupby(keys, sort=True):
        state, held = PartitionState(), None
        for r in group.itertuples(index=False):
            state.apply(Event("", f"{r.recorded_at:%Y%m%dT%H%M%S%f}", r.event, r.capture_id))
            if state.held != held:
                held = state.held
                rows.append(dict(zip(keys, part if isinstance(part, tuple) else (part,)))
                            | {"capture_id": held, "event": r.event,
                               "valid_from": r.recorded_at})
    out = pd.DataFrame(rows)
    out["valid_to"] = out.groupby(keys)["valid_from"].shift(-1)
    out = out[out["capture_id"].notna()]  # clean held nothing from then on
    return out[columns].reset_index(drop=True)


def _known_at(value) -> pd.Timestamp:
    ts = pd.Timestamp(value if value is not None else now())
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def current_captures(root: str | Path, dataset: str, known_at=None) -> pd.DataFrame:
    """Per partition, the capture clean held at `known_at` (naive = UTC; None = now)."""
    when = _known_at(known_at)
    v = validity(root, dataset)
    if v.empty:
        return v
    live = v[(v["valid_from"] <= when) & (v["valid_to"].isna() | (v["valid_to"] > when))]
    return live.reset_index(drop=True)


def as_known_at(dataset: str = DATASET_WEEKLY, known_at: str | dt.datetime | None = None, *,
                root: str | Path = "data") -> pd.DataFrame:
    """The clean table as it was known at `known_at` (a ledger time: the wall-clock UTC time
    of a run, not the `as_of` date it ran for): per partition, the capture current then.

    Chooses per partition, never per row: a row that a revision removed is gone after the
    revision, and back when asking about a time before it.
    """

    current = current_captures(root, dataset, known_at)
    if current.empty:
        accepted = validity(root, dataset)
        if len(accepted):
            warnings.warn(
                f"nothing in {root} was accepted by {_known_at(known_at)}: its first acceptance "
                f"was at {accepted['valid_from'].min()} (ledger times are the wall-clock UTC "
                "times of your runs, not the as_of dates they ran for)", stacklevel=2)
    frames = []
    for row in current.itertuples(index=False):
        keys = {k: getattr(row, k) for k in ("tier", "week_start", "trade_date")
                if hasattr(row, k)}
        raw_path = lake.partition_dir(root, "raw", dataset, **keys) / f"{row.capture_id}.parquet"
        try:
            raw = pd.read_parquet(raw_path)
        except (OSError, ValueError) as err:  # missing, truncated or corrupt
            raise OSError(f"{raw_path}: the capture the ledger says was current cannot be read "
                          f"({err}). Run `spine verify --lake-root {root}`; "
                          "workflows/incident/DATABASE_RECOVERY.md says how to repair it.") from None
        if dataset == DATASET_REGSHO:
            frames.append(convert.regsho_to_clean(raw, row.capture_id))
        else:
            frames.append(convert.to_clean(raw, row.capture_id)[0])
    columns = (CLEAN_COLUMNS if dataset != DATASET_REGSHO
               else list(RegShoDaily.to_schema().columns))
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]
