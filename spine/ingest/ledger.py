"""The capture ledger: an append-only record of every fetch and every change of what clean holds.

One small Parquet file per event under `<root>/ledger/<dataset>/<partition keys>/`, named by
time, event and capture, written once and never rewritten (so the ledger is append-only by
construction, and two writers never touch the same file). Events:

- `captured`    a fetch brought content not seen before: a new raw capture
- `seen_again`  a fetch brought content identical to a stored capture: nothing new stored
- `accepted`    a capture passed its gates and clean advanced to it (`previous_capture` says
                from what: a revision when there was one)
- `refused`     a capture failed its gates; clean stayed where it was
- `pinned`      an operator pinned clean to a capture (`spine pin`), with a reason
- `overridden`  an operator let a refused capture through (`spine override`): `reason`, and in
                `report` who, the checks overridden and the gate report they overrode
- `revoked`     an override taken back (`spine override --revoke`): clean goes back to the
                capture it held before

A capture's latest `accepted`/`refused` is its verdict: `spine regate` decides a capture again
under the current gate settings and records a new one. Refusing (or revoking) the capture clean
holds sends clean back to the capture it held before.

From the events, folded in time order (`spine.plan.PartitionState.apply`, the one rule), come
validity intervals per capture (valid_from, valid_to), which make "what did we know at time T"
a filter: `asof()`.

The ledger is the commit point: a gate verdict is an `accepted` or `refused` event carrying the
gate report; clean is derived from it (the `calc` step materialises the capture clean should
hold, from raw). `spine.plan` folds a partition's events, from their file names alone, into
what clean holds, which captures a report shows and which revisions happened.
"""

from __future__ import annotations

import datetime as dt
import json
import warnings
from pathlib import Path

import pandas as pd

from spine import lake

EVENTS = ("captured", "seen_again", "accepted", "refused", "pinned", "overridden", "revoked")
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


def read_event(path: str | Path) -> dict:
    """One event file as a dict (`report` and `request` decoded)."""
    row = pd.read_parquet(path).iloc[0].to_dict()
    for col in ("request", "report"):
        if isinstance(row.get(col), str):
            row[col] = json.loads(row[col])
    return row


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
    from spine import plan

    ev = events(root, dataset)
    keys = [k for k in ("tier", "week_start", "trade_date") if k in ev.columns]
    columns = keys + ["capture_id", "event", "valid_from", "valid_to"]
    ev = ev[ev["event"].isin(plan.HOLDING + plan.LETTING_GO)] if len(ev) else ev
    if not len(ev):
        return pd.DataFrame(columns=columns)
    ev = ev.assign(recorded_at=pd.to_datetime(ev["recorded_at"], utc=True))
    rows = []
    for part, group in ev.sort_values("recorded_at", kind="mergesort").groupby(keys, sort=True):
        state, held = plan.PartitionState(), None
        for r in group.itertuples(index=False):
            state.apply(plan.Event("", f"{r.recorded_at:%Y%m%dT%H%M%S%f}", r.event, r.capture_id))
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


def asof(dataset: str = "finra_otc_weekly", known_at: str | dt.datetime | None = None, *,
         root: str | Path = "data") -> pd.DataFrame:
    """The clean table as it was known at `known_at`: per partition, the capture current then.

    Chooses per partition, never per row: a row that a revision removed is gone after the
    revision, and back when asking about a time before it.
    """
    from spine.derive import clean as clean_
    from spine.schemas import CLEAN_COLUMNS, RegShoDaily

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
        if dataset == "finra_regsho_daily":
            frames.append(clean_.regsho_to_clean(raw, row.capture_id))
        else:
            frames.append(clean_.to_clean(raw, row.capture_id)[0])
    columns = (CLEAN_COLUMNS if dataset != "finra_regsho_daily"
               else list(RegShoDaily.to_schema().columns))
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]


def write_gate_report(event_file: str | Path, output: str | Path) -> dict:
    """A capture's gate report file, from its verdict event (`accepted` or `refused`)."""
    report = read_event(event_file)["report"]
    lake.write_json(output, report)
    return report
