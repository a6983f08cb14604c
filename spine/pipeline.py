"""The weekly steps the notebooks call: fetch, gate (and advance to clean), calc, report data.

Each step reads and writes the lake only through `spine.lake`, so the notebooks stay thin and
the same code runs from Snakemake, from JupyterLab and from tests.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import pandas as pd
import pandera.errors
import pyarrow.parquet as pq

from spine import calcs, lake, ledger, sources
from spine import calendar as cal
from spine import clean as clean_
from spine.calcs import CALC_SCHEMAS, CALCS
from spine.gates import PASS, GateConfig, GateReport, evaluate
from spine.schemas import CLEAN_COLUMNS, RegShoDaily
from spine.sources import REGSHO, WEEKLY, Capture, finra_files


class GateFailed(RuntimeError):
    pass


def store_capture(root: str, capture: Capture, receipt_path: Path, run: str | None = None) -> dict:
    """Store a capture in raw, immutably, record it in the ledger and write the fetch receipt.

    The capture_id is derived from the parsed content (row order ignored), so a re-fetch of
    identical content finds its capture already stored, writes nothing new in raw and is
    recorded as `seen_again`. The payload parts exactly as received (API pages, files) are
    kept beside the capture in a zip. `run` names the executed notebook (or command) that
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
            lake.write_file_atomic(raw_dir / f"{capture_id}.payload.zip",
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
    ledger.record(root, dataset, capture.partition, "captured" if is_new else "seen_again",
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
    source = sources.get(config["source"], config)
    capture = source.fetch(WEEKLY.name, {"tier": tier, "week_start": week_start.isoformat()})
    root = config["lake_root"]
    keys = {"tier": tier, "week_start": week_start, "fetch_key": fetch_key}
    run = str(lake.path(root, "fetch_run", **keys).relative_to(root))
    return store_capture(root, capture, lake.path(root, "fetch", **keys), run=run)


def import_files(config: dict, paths: list[str | Path], tier: str, week_start: dt.date | str,
                 summary_type: str | None = None) -> tuple[dict, GateReport]:
    """`spine import-file`: files downloaded by hand become a capture, through the same gates
    (and calculations when they pass) as a fetch. A restated week is a revision like any
    other: recorded, gated, and reported by `snakemake --cores 2 reports`."""
    week_start = cal.check_week_start(week_start)
    capture = finra_files.capture_files([Path(p) for p in paths], tier=tier,
                                        week_start=week_start, summary_type=summary_type,
                                        source="import-file")
    root = config["lake_root"]
    key = f"import-{pd.Timestamp.now(tz='UTC'):%Y%m%dT%H%M%S%f}"
    receipt = store_capture(root, capture,
                            lake.path(root, "fetch", tier=tier, week_start=week_start,
                                      fetch_key=key), run="spine import-file")
    report = gate(config, tier, week_start, receipt["capture_id"])
    if lake.path(root, "clean", tier=tier, week_start=week_start).exists():
        calc(config, tier, week_start)
    return receipt, report


def read_capture(root: str, receipt: dict) -> pd.DataFrame:
    return pq.read_table(Path(root) / receipt["file"]).to_pandas()


def latest_receipt(root: str, tier: str, week_start: dt.date) -> dict:
    """The most recent fetch receipt of a partition (for hand runs and `spine diff`)."""
    folder = lake.path(root, "fetch", tier=tier, week_start=week_start, fetch_key="x").parent
    receipts = [lake.read_json(p) for p in folder.glob("*.json")] if folder.exists() else []
    if not receipts:
        raise FileNotFoundError(f"{tier} week {week_start} has never been fetched into {root}")
    return max(receipts, key=lambda r: r["retrieved_at"])


def trailing_counts(root: str, tier: str, week_start: dt.date, band_weeks: int) -> pd.DataFrame:
    """Row and symbol counts of the trailing weeks already accepted into clean."""
    out = []
    for i in range(1, band_weeks + 1):
        prior = week_start - dt.timedelta(days=7 * i)
        path = lake.path(root, "clean", tier=tier, week_start=prior)
        if path.exists():
            symbols = pq.read_table(path, columns=["symbol"]).column("symbol")
            out.append({"week_start": prior, "rows": len(symbols),
                        "symbols": len(symbols.unique())})
    return pd.DataFrame(out, columns=["week_start", "rows", "symbols"])


def current_capture(clean_path: Path) -> str | None:
    """The capture_id a clean partition holds, or None if there is none."""
    if not clean_path.exists():
        return None
    ids = pq.read_table(clean_path, columns=["capture_id"]).column("capture_id").unique()
    return ids[0].as_py() if len(ids) else None


def advance_clean(root: str, tier: str, week_start: dt.date, clean: pd.DataFrame,
                  capture_id: str, event: str, previous: str | None, reason: str | None = None
                  ) -> None:
    """Replace clean with `capture_id` (one atomic rename; the footer says which capture and
    when), then append the ledger event."""
    at = ledger.now()
    lake.write_partition(clean, root, "clean", lake.DATASET,
                         {"tier": tier, "week_start": week_start},
                         metadata={"spine.capture_id": capture_id,
                                   "spine.accepted_at": at.isoformat()})
    ledger.record(root, lake.DATASET, {"tier": tier, "week_start": week_start.isoformat()},
                  event, capture_id, at=at, previous_capture=previous, reason=reason)


def gate(config: dict, tier: str, week_start: dt.date | str, capture_id: str | None = None
         ) -> GateReport:
    """Gate one capture (default: the latest fetched); advance clean to it only if every check
    passes. The gate report is written either way; a failing capture leaves clean as it was.
    A capture that differs from what clean held is a revision: the report says from what."""
    root = config["lake_root"]
    week_start = cal.check_week_start(week_start)
    if capture_id is None:
        capture_id = latest_receipt(root, tier, week_start)["capture_id"]
    keys = {"tier": tier, "week_start": week_start}
    raw = pq.read_table(lake.path(root, "capture", capture_id=capture_id, **keys)).to_pandas()
    clean, aggregates = clean_.to_clean(raw, capture_id)
    gcfg = GateConfig.from_config(config.get("gates"))
    trailing = trailing_counts(root, tier, week_start, gcfg.band_weeks)
    report = evaluate(clean, dataset=lake.DATASET, tier=tier, week_start=week_start,
                      capture_id=capture_id, trailing=trailing, aggregate_rows=aggregates,
                      cfg=gcfg)
    previous = current_capture(lake.path(root, "clean", **keys))
    changed = previous != capture_id
    if changed and report.status == PASS:
        # Rewrite only on a new capture, so an unchanged week does not rerun its calcs.
        advance_clean(root, tier, week_start, clean, capture_id, "accepted", previous)
    elif changed:
        ledger.record(root, lake.DATASET, {"tier": tier, "week_start": week_start.isoformat()},
                      "refused", capture_id, previous_capture=previous)
    payload = report.to_dict() | {
        "trailing_weeks": [w.isoformat() for w in trailing["week_start"]],
        "previous_capture": previous,
        "revision": previous is not None and changed,
        "advanced_to_clean": report.status == PASS and changed,
    }
    lake.write_json(lake.path(root, "gate", capture_id=capture_id, **keys), payload)
    return report


def pin(config: dict, tier: str, week_start: dt.date | str, capture_id: str, reason: str) -> str:
    """Pin clean to a stored capture (rollback, or undoing one): recorded in the ledger with
    the reason, and reversible by pinning again. The capture must have passed its gate."""
    root = config["lake_root"]
    week_start = cal.check_week_start(week_start)
    keys = {"tier": tier, "week_start": week_start}
    verdict_path = lake.path(root, "gate", capture_id=capture_id, **keys)
    if not verdict_path.exists() or lake.read_json(verdict_path)["status"] != PASS:
        raise ValueError(f"capture {capture_id} of {tier} week {week_start} has no passing gate "
                         f"report ({verdict_path}); only a capture that passed can be pinned")
    previous = current_capture(lake.path(root, "clean", **keys))
    raw = pq.read_table(lake.path(root, "capture", capture_id=capture_id, **keys)).to_pandas()
    clean, _ = clean_.to_clean(raw, capture_id)
    advance_clean(root, tier, week_start, clean, capture_id, "pinned", previous, reason)
    return previous or ""


def read_clean(root: str, tier: str, week_start: dt.date | str) -> pd.DataFrame:
    week_start = cal.check_week_start(week_start)
    df = lake.read_partition(root, "clean", lake.DATASET, {"tier": tier, "week_start": week_start})
    return df[CLEAN_COLUMNS]


def calc(config: dict, tier: str, week_start: dt.date | str) -> dict[str, pd.DataFrame]:
    """Every calculation for one accepted (tier, week), written to data/calc/<name>/."""
    root = config["lake_root"]
    week_start = cal.check_week_start(week_start)
    if not lake.path(root, "clean", tier=tier, week_start=week_start).exists():
        raise GateFailed(f"{tier} week {week_start} has no accepted version in clean (its "
                         f"captures failed their gates); see {root}/gates/")
    clean = read_clean(root, tier, week_start)
    results = {}
    for name, func in CALCS.items():
        results[name] = func(clean)
        lake.write_partition(results[name], root, "calc", name,
                             {"tier": tier, "week_start": week_start})
    return results


def read_calc(root: str, name: str, tier: str, week_start: dt.date | str) -> pd.DataFrame:
    week_start = cal.check_week_start(week_start)
    df = lake.read_partition(root, "calc", name, {"tier": tier, "week_start": week_start})
    return df[list(CALC_SCHEMAS[name].to_schema().columns)]


def fetch_regsho(config: dict, week_start: dt.date | str) -> dict:
    """Reg SHO for every trading day of a week (up to as_of): fetch each day's file into raw,
    validate it and advance clean. Writes and returns the week's receipt."""
    root = config["lake_root"]
    week_start = cal.check_week_start(week_start)
    source = sources.get(config["regsho"]["source"], config)
    days = [d for d in cal.sessions_in_week(week_start) if d <= cal.to_date(config["as_of"])]
    received = []
    for day in days:
        capture = source.fetch(REGSHO.name, {"trade_date": day.isoformat()})
        receipt = store_capture(root, capture, lake.path(root, "regsho_fetch", trade_date=day))
        raw = read_capture(root, receipt)
        daily = clean_.regsho_to_clean(raw, receipt["capture_id"])
        try:
            RegShoDaily.validate(daily, lazy=True)
        except pandera.errors.SchemaErrors as err:
            raise sources.SourceError(
                f"Reg SHO {day} (capture {receipt['capture_id']}, {receipt['file']}) fails its "
                f"schema: {err.failure_cases.head(5).to_dict('records')}; clean was not "
                "changed") from None
        clean_path = lake.path(root, "regsho_clean", trade_date=day)
        if current_capture(clean_path) != receipt["capture_id"]:
            lake.write_partition(daily, root, "clean", REGSHO.name, {"trade_date": day})
        received.append({"trade_date": day.isoformat(), "capture_id": receipt["capture_id"],
                         "rows": receipt["rows"]})
    summary = {"dataset": REGSHO.name, "week_start": week_start.isoformat(),
               "source": config["regsho"]["source"], "days": received}
    lake.write_json(lake.path(root, "regsho_week", week_start=week_start), summary)
    return summary


def calc_short_volume(config: dict, tier: str, week_start: dt.date | str) -> pd.DataFrame:
    """The `short_volume` calculation for one accepted NMS (tier, week)."""
    root = config["lake_root"]
    week_start = cal.check_week_start(week_start)
    summary = lake.read_json(lake.path(root, "regsho_week", week_start=week_start))
    frames = [lake.read_partition(root, "clean", REGSHO.name, {"trade_date": d["trade_date"]})
              for d in summary["days"]]
    daily = (pd.concat(frames, ignore_index=True) if frames
             else pd.DataFrame(columns=list(RegShoDaily.to_schema().columns)))
    daily = daily[list(RegShoDaily.to_schema().columns)]
    result = calcs.short_volume(read_calc(root, "symbol_week", tier, week_start), daily,
                                cal.trading_days(week_start))
    lake.write_partition(result, root, "calc", "short_volume",
                         {"tier": tier, "week_start": week_start})
    return result


def rolling_window(root: str, tier: str, week_start: dt.date) -> list[dt.date]:
    """Weeks of the rolling window ending at `week_start` whose symbol_week exists or is due
    (this week always; earlier weeks when their clean partition exists)."""
    weeks = [week_start - dt.timedelta(days=7 * i) for i in range(calcs.ROLLING_WEEKS)]
    return [w for w in weeks
            if w == week_start or lake.path(root, "clean", tier=tier, week_start=w).exists()]


def calc_rolling(config: dict, tier: str, week_start: dt.date | str) -> pd.DataFrame:
    """The `symbol_rolling` calculation: a multi-week output, rerun when any week of its
    window changes."""
    root = config["lake_root"]
    week_start = cal.check_week_start(week_start)
    weeks = rolling_window(root, tier, week_start)
    window = pd.concat([read_calc(root, "symbol_week", tier, w) for w in weeks],
                       ignore_index=True)
    days = {pd.Timestamp(w): cal.trading_days(w) for w in weeks}
    result = calcs.symbol_rolling(window, days)
    lake.write_partition(result, root, "calc", "symbol_rolling",
                         {"tier": tier, "week_start": week_start})
    return result


def notebook_config(overrides: dict) -> dict:
    """The config a notebook runs with. The pipeline passes the full config (with `lake_root`);
    by hand, without `lake_root`, it is the embedded `small` source in a fresh temporary lake,
    so running a notebook in JupyterLab never writes into the repository."""
    from spine import config as config_

    overrides = dict(overrides)
    by_hand = not overrides.get("lake_root")
    if by_hand:
        overrides["lake_root"] = tempfile.mkdtemp(prefix="market-spine-")
        overrides["synthetic"] = {"size": "small", **overrides.get("synthetic", {})}
    return config_.load(**overrides) | {"by_hand": by_hand}


def show_receipt(receipt: dict) -> pd.DataFrame:
    """A fetch receipt as a two-column table for a notebook."""
    flat = {k: v for k, v in receipt.items() if k != "request"}
    flat |= {f"request.{k}": v for k, v in receipt["request"].items()}
    return pd.DataFrame({"field": list(flat), "value": [str(v) for v in flat.values()]})


def ensure_upstream(config: dict, tier: str, week_start: dt.date | str, upto: str) -> None:
    """For hand runs in JupyterLab: produce the steps before `upto` whose outputs are missing.
    In a pipeline run (a lake_root was given) it does nothing: Snakemake ran the steps before,
    and a missing input must fail loudly rather than be fetched behind the DAG's back."""
    if not config.get("by_hand"):
        return
    root, keys = config["lake_root"], {"tier": tier, "week_start": week_start}
    order = ["fetch", "gate", "calc", "report"]
    folder = lake.path(root, "fetch", fetch_key="x", **keys).parent
    if order.index(upto) > 0 and not (folder.exists() and any(folder.glob("*.json"))):
        fetch(config, tier, week_start)
    if order.index(upto) > 1:
        capture_id = latest_receipt(root, tier, cal.check_week_start(week_start))["capture_id"]
        if not lake.path(root, "gate", capture_id=capture_id, **keys).exists():
            gate(config, tier, week_start, capture_id)
    if (order.index(upto) > 2 and lake.path(root, "clean", **keys).exists()
            and not all(lake.path(root, "calc", calc=name, **keys).exists() for name in CALCS)):
        calc(config, tier, week_start)
