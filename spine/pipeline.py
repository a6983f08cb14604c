"""The weekly steps the notebooks call: fetch, gate (and advance to clean), calc, report data.

Each step reads and writes the lake only through `spine.lake`, so the notebooks stay thin and
the same code runs from Snakemake, from JupyterLab and from tests.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd
import pandera.errors
import pyarrow as pa
import pyarrow.parquet as pq

from spine.ingest import ats, ledger, sources
from spine.derive import calcs, registry
from spine import lake, plan, warm
from spine import calendar as cal
from spine.derive import clean as clean_
from spine.ingest.gates import PASS, GateConfig, GateReport, Version, evaluate
from spine.schemas import CLEAN_COLUMNS, RegShoDaily
from spine.ingest.sources import REGSHO, WEEKLY, Capture, catalog, finra_files


class GateFailed(RuntimeError):
    pass


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
    source, why_not = catalog.for_partition(config, tier, week_start)
    if source is None:
        raise sources.SourceError(f"no configured source holds {tier} week {week_start}: "
                                  + "; ".join(why_not))
    capture = source.fetch(WEEKLY.name, {"tier": tier, "week_start": week_start.isoformat()})
    root = config["lake_root"]
    keys = {"tier": tier, "week_start": week_start, "fetch_key": fetch_key}
    run = lake.LAYOUT["run"].format(step="fetch", job=lake.job("fetch", **keys))
    return store_capture(root, capture, lake.path(root, "fetch", **keys), run=run)


def import_files(config: dict, paths: list[str | Path], tier: str, week_start: dt.date | str,
                 summary_type: str | None = None) -> tuple[dict, GateReport]:
    """`spine import-file`: files downloaded by hand become a capture, decided by the same gates
    as a fetch. A restated week is a revision like any other: recorded and gated here; clean,
    calculations and reports follow with `snakemake --cores 2 reports`."""
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
    return receipt, report


def read_capture(root: str, receipt: dict) -> pd.DataFrame:
    return pq.read_table(Path(root) / receipt["file"]).to_pandas()


def latest_receipt(root: str, tier: str, week_start: dt.date) -> dict:
    """The most recent fetch receipt of a partition (for hand runs)."""
    folder = lake.path(root, "fetch", tier=tier, week_start=week_start, fetch_key="x").parent
    receipts = [lake.read_json(p) for p in folder.glob("*.json")] if folder.exists() else []
    if not receipts:
        raise FileNotFoundError(f"{tier} week {week_start} has never been fetched into {root}")
    return max(receipts, key=lambda r: r["retrieved_at"])


def hand_receipts(config: dict, tier: str, week_start: dt.date | str) -> tuple[list[str], str]:
    """For the gate notebook by hand: the week fetched into the lake (if it never was), its
    latest receipt, and where the ingest record goes."""
    root, week = config["lake_root"], cal.check_week_start(week_start)
    ensure_upstream(config, tier, week, "gate")  # fetches the week if it never was
    folder = lake.path(root, "fetch", tier=tier, week_start=week, fetch_key="x").parent
    latest = max(folder.glob("*.json"), key=lambda p: lake.read_json(p)["retrieved_at"])
    return [str(latest)], str(lake.path(root, "ingest", run=f"hand-{tier}-{week}"))


def partition_state(root: str, tier: str, week_start: dt.date) -> plan.PartitionState:
    """A partition's ledger, folded (what clean holds, verdicts, revisions)."""
    files = plan.list_partition(root, tier, week_start)
    return plan.fold([plan.Event.parse(f) for f in files])


def verdict(root: str, tier: str, week_start: dt.date, capture_id: str) -> dict | None:
    """The gate report recorded with a capture's verdict, or None if it was never gated."""
    event = partition_state(root, tier, week_start).verdicts.get(capture_id)
    if event is None:
        return None
    return ledger.read_event(plan.ledger_dir(root, tier, week_start) / event.file)["report"]


def trailing_counts(root: str, tier: str, week_start: dt.date, band_weeks: int) -> pd.DataFrame:
    """Row and symbol counts of the trailing weeks' accepted versions, as their gate reports
    measured them (read from the ledger: no data file is opened)."""
    out = []
    for prior in plan.trailing_weeks(week_start, band_weeks):
        held = partition_state(root, tier, prior).held
        report = verdict(root, tier, prior, held) if held else None
        if report and "rows" in report:
            out.append({"week_start": prior, "rows": report["rows"],
                        "symbols": report["symbols"],
                        "shares_per_day": report.get("shares_per_day")})
    return pd.DataFrame(out, columns=["week_start", "rows", "symbols", "shares_per_day"])


def gate(config: dict, tier: str, week_start: dt.date | str, capture_id: str | None = None
         ) -> GateReport:
    """Decide one capture (default: the latest fetched): run the gates and record the verdict
    in the ledger, `accepted` (clean is to hold it) or `refused` (clean keeps what it held).
    The ledger event carries the whole gate report; `calc` materialises clean from it. A
    capture already decided is not decided again (an identical re-fetch changes nothing)."""
    root = config["lake_root"]
    week_start = cal.check_week_start(week_start)
    if capture_id is None:
        capture_id = latest_receipt(root, tier, week_start)["capture_id"]
    with lake.partition_lock(plan.ledger_dir(root, tier, week_start), ".decide.lock"):
        done = verdict(root, tier, week_start, capture_id)
        if done is not None:
            return GateReport.from_dict(done)
        return _decide(config, tier, week_start, capture_id,
                       partition_state(root, tier, week_start).held)


def _version(root: str, tier: str, week_start: dt.date, capture_id: str | None):
    if capture_id is None:
        return None
    raw = pq.read_table(lake.path(root, "capture", tier=tier, week_start=week_start,
                                  capture_id=capture_id)).to_pandas()
    return Version.of(clean_.to_clean(raw, capture_id)[0], capture_id)


def _decide(config: dict, tier: str, week_start: dt.date, capture_id: str,
            previous: str | None, regate: bool = False) -> GateReport:
    """Run the gates on a capture against `previous` (the version it would replace) and
    record the verdict. The caller holds the partition's decide lock."""
    root = config["lake_root"]
    keys = {"tier": tier, "week_start": week_start}
    raw = pq.read_table(lake.path(root, "capture", capture_id=capture_id, **keys)).to_pandas()
    clean, aggregates = clean_.to_clean(raw, capture_id)
    gcfg = GateConfig.from_config(config["gates"], tier)
    trailing = trailing_counts(root, tier, week_start, gcfg.band_weeks)
    report = evaluate(clean, dataset=lake.DATASET, tier=tier, week_start=week_start,
                      capture_id=capture_id, trailing=trailing, aggregate_rows=aggregates,
                      cfg=gcfg, previous=_version(root, tier, week_start, previous),
                      as_of=config.get("as_of"), ats_mpids=ats.mpids(), raw=raw)
    accepted = report.status == PASS
    payload = report.to_dict() | {
        "trailing_weeks": [w.isoformat() for w in trailing["week_start"]],
        "previous_capture": previous,
        "revision": previous is not None and previous != capture_id,
        "advanced_to_clean": accepted,
        "regate": regate,
    }
    ledger.record(root, lake.DATASET, {"tier": tier, "week_start": week_start.isoformat()},
                  "accepted" if accepted else "refused", capture_id,
                  previous_capture=previous, rows=report.measures["rows"], report=payload,
                  run="spine regate" if regate else None)
    return report


def regate(config: dict, tier: str, week_start: dt.date | str, capture_id: str | None = None
           ) -> tuple[str, GateReport]:
    """`spine regate`: decide a capture again under the current gate settings (default: the
    one clean holds, else the week's latest gated capture) and record the verdict, as any gate does. A refused capture that clean
    held is let go: clean goes back to the capture it held before (or to nothing). Returns
    (the capture clean holds afterwards, the report)."""
    root = config["lake_root"]
    week_start = cal.check_week_start(week_start)
    with lake.partition_lock(plan.ledger_dir(root, tier, week_start), ".decide.lock"):
        state = partition_state(root, tier, week_start)
        latest = max(state.verdicts.values(), key=lambda e: e.at).capture_id \
            if state.verdicts else None
        capture_id = capture_id or state.held or latest
        if capture_id is None or capture_id not in state.verdicts:
            raise ValueError(f"{tier} week {week_start} has no gated capture "
                             f"{capture_id or '(clean holds none)'}; spine status lists what "
                             "the lake holds")
        before = [c for c in state.holding if c != capture_id]
        previous = before[-1] if before else None
        report = _decide(config, tier, week_start, capture_id, previous, regate=True)
    return partition_state(root, tier, week_start).held, report


def override(config: dict, tier: str, week_start: dt.date | str, checks: list[str],
             reason: str, capture_id: str | None = None, revoke: bool = False) -> str | None:
    """`spine override`: let a refused capture through (default: the week's latest refused
    capture), recorded in the ledger with who, when, why and which failed checks; or, with
    `revoke`, take an override back. Returns what clean holds afterwards."""
    import getpass

    root = config["lake_root"]
    week_start = cal.check_week_start(week_start)
    part = {"tier": tier, "week_start": week_start.isoformat()}
    with lake.partition_lock(plan.ledger_dir(root, tier, week_start), ".decide.lock"):
        state = partition_state(root, tier, week_start)
        if revoke:
            capture_id = capture_id or (state.held if state.held in state.overrides else None)
            if capture_id not in state.overrides:
                raise ValueError(f"{tier} week {week_start} has no override "
                                 f"{'of ' + capture_id if capture_id else 'in force'} to revoke")
            ledger.record(root, lake.DATASET, part, "revoked", capture_id, reason=reason,
                          run="spine override --revoke")
        else:
            refused = [e for e in state.verdicts.values() if e.event == "refused"]
            if capture_id is None and refused:
                capture_id = max(refused, key=lambda e: e.at).capture_id
            event = state.verdicts.get(capture_id) if capture_id else None
            if event is None or event.event != "refused":
                raise ValueError(f"{tier} week {week_start}: capture "
                                 f"{capture_id or '(none)'} was not refused by a gate; only a "
                                 "refused capture can be overridden (spine status lists them)")
            report = ledger.read_event(plan.ledger_dir(root, tier, week_start) / event.file)[
                "report"]
            failed = sorted(c["check"] for c in report["checks"] if c["status"] == "FAIL")
            unknown = sorted(set(checks) - set(failed))
            if unknown or set(failed) - set(checks):
                raise ValueError(
                    f"{tier} week {week_start}, capture {capture_id} failed "
                    f"{', '.join(failed)}; --check must name exactly those"
                    + (f" ({', '.join(unknown)} did not fail)" if unknown else ""))
            ledger.record(root, lake.DATASET, part, "overridden", capture_id,
                          previous_capture=state.held, reason=reason, run="spine override",
                          report={"by": getpass.getuser(), "checks": failed,
                                  "gate_report": report})
    return partition_state(root, tier, week_start).held


def ingest(config: dict, receipts: list[str], output: str | Path) -> pd.DataFrame:
    """The gate step of a run: decide every capture the run fetched, oldest week first within
    each tier (a week's count band compares with the weeks before it, decided first), then
    write the run's ingest record: per partition, the capture fetched and its verdict, and the
    partition's ledger listing after the decision (the plan's input for the derive stage).
    Tiers are independent of each other, so each tier's weeks are decided in a process of its
    own, as many at once as this process may use CPUs."""
    fetched = [lake.read_json(p) for p in receipts]
    tiers: dict[str, list[dict]] = {}
    for r in sorted(fetched, key=lambda r: r["week_start"]):
        tiers.setdefault(r["tier"], []).append(r)
    rows, listing = [], {}
    for tier_rows, tier_listing in _each_forked(_ingest_tier, [(config, rs) for rs in
                                                               tiers.values()]):
        rows += tier_rows
        listing |= tier_listing
    rows.sort(key=lambda r: (r["week_start"], plan.TIERS.index(r["tier"])))
    lake.write_json(output, {"partitions": rows, "ledger": listing})
    return pd.DataFrame(rows)


def _ingest_tier(config: dict, fetched: list[dict]) -> tuple[list[dict], dict]:
    """Decide one tier's captures, oldest week first."""
    root = config["lake_root"]
    rows, listing = [], {}
    for r in fetched:
        report = gate(config, r["tier"], r["week_start"], r["capture_id"])
        files = plan.list_partition(root, r["tier"], r["week_start"])
        held = plan.fold([plan.Event.parse(f) for f in files]).held
        rows.append({"tier": r["tier"], "week_start": r["week_start"],
                     "capture_id": r["capture_id"], "new_capture": r["new_capture"],
                     "status": report.status, "clean_holds": held})
        listing[f"{r['tier']}/{r['week_start']}"] = files
    return rows, listing


def _each_forked(fn, args: list[tuple]) -> list:
    """fn(*a) for each a, in forked processes, as many at once as this process may use CPUs
    (its affinity: a cluster job's allocation). Forks only from a single thread (a thread pool
    does not survive a fork); otherwise, or with one CPU or one task, runs them here in order."""
    workers = min(len(args), len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                  else 1)
    if workers < 2 or warm.threads() != 1:
        return [fn(*a) for a in args]
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        return list(pool.map(fn, *zip(*args)))


def gate_reports(config: dict, tier: str, week_start: dt.date | str) -> list[Path]:
    """Write the gate report file of every capture of a partition that has a verdict (by hand;
    the Snakefile's `gate_report` rule writes them one by one)."""
    root, week = config["lake_root"], cal.check_week_start(week_start)
    out = []
    for capture, event in partition_state(root, tier, week).verdicts.items():
        path = lake.path(root, "gate", tier=tier, week_start=week, capture_id=capture)
        ledger.write_gate_report(plan.ledger_dir(root, tier, week) / event.file, path)
        out.append(path)
    return out


def pin(config: dict, tier: str, week_start: dt.date | str, capture_id: str, reason: str) -> str:
    """Pin clean to a stored capture (rollback, or undoing one): recorded in the ledger with
    the reason, and reversible by pinning again. The capture must have passed its gates. The
    next run (`snakemake --cores 2 reports`) materialises clean and what depends on it."""
    root = config["lake_root"]
    week_start = cal.check_week_start(week_start)
    with lake.partition_lock(plan.ledger_dir(root, tier, week_start), ".decide.lock"):
        report = verdict(root, tier, week_start, capture_id)
        if report is None or report["status"] != PASS:
            raise ValueError(f"capture {capture_id} of {tier} week {week_start} has no passing "
                             "gate verdict in the ledger; only a capture that passed can be "
                             "pinned (spine diff and the revision reports list the captures)")
        previous = partition_state(root, tier, week_start).held
        ledger.record(root, lake.DATASET, {"tier": tier, "week_start": week_start.isoformat()},
                      "pinned", capture_id, previous_capture=previous, reason=reason)
    return previous or ""


def current_capture(clean_path: Path) -> str | None:
    """The capture_id a clean partition file holds (its footer), or None if there is none."""
    if not clean_path.exists():
        return None
    return lake.file_metadata(clean_path).get("spine.capture_id")


def read_clean(root: str, tier: str, week_start: dt.date | str) -> pd.DataFrame:
    week_start = cal.check_week_start(week_start)
    df = lake.read_partition(root, "clean", lake.DATASET, {"tier": tier, "week_start": week_start})
    return df[CLEAN_COLUMNS]


def make_clean(config: dict, tier: str, week_start: dt.date | str,
               capture_id: str | None = None) -> pd.DataFrame:
    """Materialise clean from the capture it holds (default: what the ledger says). Clean is
    derived, like the calculations: the raw capture and the ledger's verdict are the record."""
    root = config["lake_root"]
    week_start = cal.check_week_start(week_start)
    if capture_id is None:
        capture_id = partition_state(root, tier, week_start).held
    if capture_id is None:
        raise GateFailed(f"{tier} week {week_start} has no accepted version (its captures "
                         f"failed their gates); see {root}/gates/")
    keys = {"tier": tier, "week_start": week_start}
    raw_path = lake.path(root, "capture", capture_id=capture_id, **keys)
    try:
        raw = pq.read_table(raw_path).to_pandas()
    except (OSError, pa.ArrowException) as err:
        raise GateFailed(f"{raw_path}: the raw capture clean is to hold cannot be read ({err}). "
                         "Run `spine verify` to see the damage and "
                         "workflows/incident/DATABASE_RECOVERY.md to repair it.") from None
    clean, _ = clean_.to_clean(raw, capture_id)
    lake.write_partition(clean, root, "clean", lake.DATASET, keys,
                         metadata={"spine.capture_id": capture_id},
                         inputs=_inputs(root, raw_path))
    return clean


def calc(config: dict, name: str, tier: str, week_start: dt.date | str,
         windows: dict[str, list[str]] | None = None) -> pd.DataFrame:
    """One calculation of spine/derive/registry.py for one held (tier, week): read its inputs, run
    its function, check its schema, write calc/<name>/ with the version in the footer.
    `windows`: per windowed input, the weeks to read (the plan's; default: the ledger's)."""
    root = config["lake_root"]
    week = cal.check_week_start(week_start)
    entry = registry.get(name)
    if tier not in entry.tiers:
        raise ValueError(f"calculation {name} runs on tiers {', '.join(entry.tiers)}, not {tier}")
    if windows is None:  # by hand: the ledger's window, deriving what it lacks first
        state = plan.LakeState.read(root)
        windows = {i.name: [w.isoformat() for w in state.window(tier, week, i.weeks)]
                   for i in entry.inputs if i.name not in registry.SOURCES}
        for i in entry.inputs:
            for w in windows.get(i.name, []):
                if not lake.path(root, "calc", calc=i.name, tier=tier, week_start=w).exists():
                    calc(config, i.name, tier, w)
        if any(i.name == "clean" for i in entry.inputs) and not lake.path(
                root, "clean", tier=tier, week_start=week).exists():
            make_clean(config, tier, week)
    inputs, paths, weeks = {}, [], {week}
    for i in entry.inputs:
        if i.name == "clean":
            paths.append(lake.path(root, "clean", tier=tier, week_start=week))
            inputs["clean"] = read_clean(root, tier, week)
        elif i.name == "regsho":
            inputs["regsho"], days = read_regsho_week(root, week)
            paths += days
        else:
            chosen = [cal.check_week_start(w) for w in windows[i.name]]
            weeks |= set(chosen)
            paths += [lake.path(root, "calc", calc=i.name, tier=tier, week_start=w)
                      for w in chosen]
            frames = [read_calc(root, i.name, tier, w) for w in chosen]
            inputs[i.name] = (pd.concat(frames, ignore_index=True) if frames
                              else calcs.empty(i.name))
    result = calcs.compute(name, inputs, tier=tier, week_start=pd.Timestamp(week),
                           trading_days={pd.Timestamp(w): cal.trading_days(w) for w in weeks})
    lake.write_partition(result, root, "calc", name, {"tier": tier, "week_start": week},
                         metadata={"spine.calc_version": str(entry.version)},
                         inputs=_inputs(root, *paths))
    return result


def derive(config: dict, tier: str, week_start: dt.date | str, capture_id: str | None = None
           ) -> dict[str, pd.DataFrame]:
    """Clean and every calculation of one held (tier, week), in registry order, as the DAG's
    jobs would make them; those reading Reg SHO when the lake has the week's Reg SHO. For
    notebooks by hand, tests and benchmarks (the Snakefile runs one job per calculation)."""
    root = config["lake_root"]
    week = cal.check_week_start(week_start)
    make_clean(config, tier, week, capture_id)
    regsho = lake.path(root, "regsho_week", week_start=week).exists()
    return {c.name: calc(config, c.name, tier, week) for c in registry.for_tier(tier, regsho)}


def _inputs(root: str, *paths: Path) -> dict[str, str]:
    """For the manifest: what a file was made from (lake-relative path -> SHA-256 now)."""
    base = Path(root).absolute()
    return {Path(p).absolute().relative_to(base).as_posix(): lake.sha256_file(p) for p in paths}


def read_calc(root: str, name: str, tier: str, week_start: dt.date | str) -> pd.DataFrame:
    week_start = cal.check_week_start(week_start)
    df = lake.read_partition(root, "calc", name, {"tier": tier, "week_start": week_start})
    return df[calcs.columns(name)]


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
            lake.write_partition(daily, root, "clean", REGSHO.name, {"trade_date": day},
                                 metadata={"spine.capture_id": receipt["capture_id"]})
        received.append({"trade_date": day.isoformat(), "capture_id": receipt["capture_id"],
                         "rows": receipt["rows"]})
    summary = {"dataset": REGSHO.name, "week_start": week_start.isoformat(),
               "source": config["regsho"]["source"], "days": received}
    lake.write_json(lake.path(root, "regsho_week", week_start=week_start), summary)
    return summary


def read_regsho_week(root: str, week_start: dt.date) -> tuple[pd.DataFrame, list[Path]]:
    """Reg SHO daily rows of a week's trading days (as its week summary lists them), and the
    files read."""
    summary = lake.read_json(lake.path(root, "regsho_week", week_start=week_start))
    paths = [lake.path(root, "regsho_clean", trade_date=d["trade_date"]) for d in summary["days"]]
    frames = [lake.read_partition(root, "clean", REGSHO.name, {"trade_date": d["trade_date"]})
              for d in summary["days"]]
    columns = list(RegShoDaily.to_schema().columns)
    daily = pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(
        {c: pd.Series(dtype="datetime64[ns]" if c == "trade_date" else "object")
         for c in columns})
    return daily, paths


def notebook_config(overrides: dict, step: str | None = None) -> dict:
    """The config a notebook runs with. The pipeline passes exactly the keys `step` reads
    (spine.notebooks.STEPS) and gets them as a StepConfig, which refuses any other key. By
    hand, the repository's config with `overrides`; without `lake_root` it is the embedded
    `small` source in a fresh temporary lake, so running a notebook in JupyterLab never writes
    into the repository."""
    from spine import config as config_
    from spine import notebooks

    overrides = dict(overrides)
    if step and set(overrides) == set(notebooks.STEPS[step]):
        return notebooks.StepConfig(step, overrides)
    by_hand = not overrides.get("lake_root")
    if by_hand:
        overrides["lake_root"] = tempfile.mkdtemp(prefix="market-spine-")
        overrides["synthetic"] = {"size": "small", **overrides.get("synthetic", {})}
    cfg = config_.load(**overrides) | {"by_hand": by_hand}
    if not by_hand:  # a lake named by hand (the real one, to look at): read, never written
        lake.LOOKING.add(Path(cfg["lake_root"]).absolute())
        print(f"Looking at {cfg['lake_root']}: this notebook reads it and writes nothing into "
              "it (the pipeline writes the lake; leave lake_root out to work in a scratch lake)")
    return cfg


def show_receipt(receipt: dict) -> pd.DataFrame:
    """A fetch receipt as a two-column table for a notebook."""
    flat = {k: v for k, v in receipt.items() if k != "request"}
    flat |= {f"request.{k}": v for k, v in receipt["request"].items()}
    return pd.DataFrame({"field": list(flat), "value": [str(v) for v in flat.values()]})


def ensure_upstream(config: dict, tier: str, week_start: dt.date | str, upto: str) -> None:
    """For hand runs in JupyterLab: produce the steps before `upto` (fetch, gate, clean, calc,
    report) whose outputs are missing. In a pipeline run it does nothing: Snakemake ran the
    steps before, and a missing input must fail loudly rather than be fetched behind the DAG's
    back."""
    if not config.get("by_hand"):
        return
    root, week = config["lake_root"], cal.check_week_start(week_start)
    keys = {"tier": tier, "week_start": week}
    before = ["fetch", "gate", "clean", "calc", "report"]
    before = before[:before.index(upto)]
    folder = lake.path(root, "fetch", fetch_key="x", **keys).parent
    if "fetch" in before and not (folder.exists() and any(folder.glob("*.json"))):
        fetch(config, tier, week)
    if "gate" in before:
        capture_id = latest_receipt(root, tier, week)["capture_id"]
        if verdict(root, tier, week, capture_id) is None:
            gate(config, tier, week, capture_id)
        gate_reports(config, tier, week)
    held = partition_state(root, tier, week).held
    if "clean" in before and held and current_capture(lake.path(root, "clean", **keys)) != held:
        make_clean(config, tier, week)
    if "clean" in before and held and config["regsho"]["enabled"] and (
            tier in registry.NMS_TIERS and not lake.path(root, "regsho_week", week_start=week).exists()):
        fetch_regsho(config, week)
    if "calc" in before and held:
        for c in registry.for_tier(tier, config["regsho"]["enabled"]):
            if not lake.path(root, "calc", calc=c.name, **keys).exists():
                calc(config, c.name, tier, week)
