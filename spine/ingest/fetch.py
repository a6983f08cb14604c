"""The fetch step: a source's capture of one partition stored in raw, immutably, and recorded.

A capture is content-addressed (its capture_id is the hash of its parsed rows), so a re-fetch
of identical content stores nothing new and is recorded as `seen_again`. Each fetch writes a
receipt under fetches/ named by its fetch key. Reg SHO days are fetched here too; having no
gate, each day is validated and advances its clean partition at once.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pandera.errors
import pyarrow.parquet as pq

from spine import calendar as cal
from spine import lake
from spine.ingest import convert, history, sources
from spine.ingest.sources import catalog
from spine.ingest.sources import REGSHO, WEEKLY, Capture
from spine.schemas import RegShoDaily


def store_capture(root: str, capture: Capture, receipt_path: Path, run: str | None = None) -> dict:
    """Store a capture in raw, immutably, record it in the ledger and write the fetch receipt.

    The capture_id is derived from the parsed content (row order ignored), so a re-fetch of
    identical content finds its capture already stored, writes nothing new in raw and is
    recorded as `seen_again`. The payload parts exactly as received (API pages, files) are
    kept in a zip under payloads/ (outside the dataset folders, so every reader reads raw as
    a plain Parquet dataset). `run` names the executed notebook (or command) that
    fetched it.
    """
    dataset = capture.dataset
    content_hash = lake.content_hash(capture.table)
    capture_id = content_hash[:16]
    raw = capture.table.assign(capture_id=capture_id, retrieved_at=capture.retrieved_at)
    schema = {WEEKLY.name: WEEKLY, REGSHO.name: REGSHO}[dataset].raw_schema
    schema.validate(raw)
    raw_dir = lake.partition_dir(root, "raw", dataset, **capture.partition)
    filename = f"{capture_id}.parquet"
    is_new = not (raw_dir / filename).exists()
    if is_new:
        if capture.payload:
            lake.write_file_atomic(
                lake.payload_path(root, dataset, capture.partition, capture_id),
                lake.zip_parts(capture.payload), overwrite=False)
        lake.write_partition(raw, root, "raw", dataset, capture.partition, filename=filename,
                             overwrite=False)
    receipt = {
        "dataset": dataset, **capture.partition, "capture_id": capture_id,
        "content_hash": content_hash, "payload_sha256": capture.payload_sha256,
        "file": str((raw_dir / filename).relative_to(root)),
        "retrieved_at": capture.retrieved_at.isoformat(), "request": capture.request,
        "rows": len(capture.table), "new_capture": is_new, "run": run,
        "max_last_updated": (str(capture.table["lastUpdateDate"].max())
                             if dataset == WEEKLY.name and len(capture.table) else None),
    }
    history.record(root, dataset, capture.partition, "captured" if is_new else "seen_again",
                  capture_id, at=capture.retrieved_at, source=capture.request.get("source"),
                  request=capture.request, rows=len(capture.table),
                  max_last_updated=receipt["max_last_updated"], content_hash=content_hash,
                  payload_sha256=capture.payload_sha256, raw_file=receipt["file"], run=run)
    lake.write_json(receipt_path, receipt)
    return receipt


def _hand_fetch_key() -> str:
    return f"at-{pd.Timestamp.now(tz='UTC'):%Y%m%dT%H%M%S%f}"


def fetch(config: dict, tier: str, week_start: dt.date | str, fetch_key: str | None = None) -> dict:
    """Fetch one (tier, week) from the configured source into raw. Returns the receipt.

    `fetch_key` names this fetch (`asof-<date>` in the weekly update and backfills, `at-<time>`
    for re-fetches on demand); its receipt and executed notebook are kept under that name."""
    week_start = cal.check_week_start(week_start)
    fetch_key = fetch_key or _hand_fetch_key()
    source, why_not = catalog.for_partition(config, tier, week_start)
    if source is None:
        raise sources.SourceError(f"no configured source holds {tier} week {week_start}: "
                                  + "; ".join(why_not))
    capture = source.fetch(WEEKLY.name, {"tier": tier, "week_start": week_start.isoformat()})
    root = config["lake_root"]
    keys = {"tier": tier, "week_start": week_start, "fetch_key": fetch_key}
    run = lake.LAYOUT["executed"].format(step="fetch", job=lake.job("fetch", **keys))
    return store_capture(root, capture, lake.path(root, "fetch", **keys), run=run)


def read_capture(root: str, receipt: dict) -> pd.DataFrame:
    return pq.read_table(Path(root) / receipt["file"]).to_pandas()


def receipts(root: str, tier: str, week_start: dt.date | str) -> list[Path]:
    """A partition's fetch receipts, oldest fetch first."""
    folder = lake.path(root, "fetch", tier=tier, week_start=week_start, fetch_key="x").parent
    found = [(lake.read_json(p)["retrieved_at"], p) for p in folder.glob("*.json")] \
        if folder.exists() else []
    return [p for _, p in sorted(found)]


def latest_receipt(root: str, tier: str, week_start: dt.date | str) -> dict:
    """The most recent fetch receipt of a partition."""
    found = receipts(root, tier, week_start)
    if not found:
        raise FileNotFoundError(f"{tier} week {week_start} has never been fetched into {root}")
    return lake.read_json(found[-1])


def show_receipt(receipt: dict) -> pd.DataFrame:
    """A fetch receipt as a two-column table for a notebook."""
    flat = {k: v for k, v in receipt.items() if k != "request"}
    flat |= {f"request.{k}": v for k, v in receipt["request"].items()}
    return pd.DataFrame({"field": list(flat), "value": [str(v) for v in flat.values()]})


def fetch_regsho(config: dict, week_start: dt.date | str) -> dict:
    """Reg SHO for every trading day of a week (up to as_of): fetch each day's file into raw,
    validate it and advance clean. Writes and returns the week's receipt."""
    root = config["lake_root"]
    week_start = cal.check_week_start(week_start)
    source = catalog.get(config["regsho"]["source"], config)
    days = [d for d in cal.sessions_in_week(week_start) if d <= cal.to_date(config["as_of"])]
    received = []
    for day in days:
        capture = source.fetch(REGSHO.name, {"trade_date": day.isoformat()})
        receipt = store_capture(root, capture, lake.path(root, "regsho_fetch", trade_date=day))
        raw = read_capture(root, receipt)
        daily = convert.regsho_to_clean(raw, receipt["capture_id"])
        try:
            RegShoDaily.validate(daily, lazy=True)
        except pandera.errors.SchemaErrors as err:
            raise sources.SourceError(
                f"Reg SHO {day} (capture {receipt['capture_id']}, {receipt['file']}) fails its "
                f"schema: {err.failure_cases.head(5).to_dict('records')}; clean was not "
                "changed") from None
        clean_path = lake.path(root, "regsho_clean", trade_date=day)
        if lake.held_capture(clean_path) != receipt["capture_id"]:
            lake.write_partition(daily, root, "clean", REGSHO.name, {"trade_date": day},
                                 metadata={"spine.capture_id": receipt["capture_id"]})
        received.append({"trade_date": day.isoformat(), "capture_id": receipt["capture_id"],
                         "rows": receipt["rows"]})
    summary = {"dataset": REGSHO.name, "week_start": week_start.isoformat(),
               "source": config["regsho"]["source"], "days": received}
    lake.write_json(lake.path(root, "regsho_week", week_start=week_start), summary)
    return summary
