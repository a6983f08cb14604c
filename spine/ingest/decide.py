"""The gate step and every decision of what clean holds: gate, regate, override, pin.

A decision runs the checks (`spine.ingest.gates`) on a capture in the clean layout against the
version clean holds and the trailing weeks' counts, and records the verdict in the ledger
(`accepted` or `refused`, carrying the gate report). It decides from the ledger's state it is
handed (`spine.ingest.ledger.LakeState`, read once per run or command) and adds its own event
to it; it never lists the ledger again. Each decision holds the partition's decide lock.
"""

from __future__ import annotations

import datetime as dt
import getpass
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from spine import calendar as cal
from spine import lake, warm
from spine.ingest import ats, convert, history
from spine.ingest.fetch import latest_receipt, store_capture
from spine.ingest.checks import PASS, Version
from spine.ingest.gates import GateConfig, GateReport, evaluate
from spine.ingest.ledger import LakeState, ledger_dir, read_event
from spine.ingest.sources import finra_files
from spine.plan import trailing_weeks
from spine.vocabulary import DATASET_WEEKLY, TIERS

DECIDE_LOCK = ".decide.lock"  # per partition, in its ledger folder


def _state(config: dict, state: LakeState | None) -> LakeState:
    return state if state is not None else LakeState.read(config["lake_root"])


def _record(state: LakeState, tier: str, week_start: dt.date, event: str, capture_id: str,
            **fields) -> None:
    """Record an event in the ledger and fold it into `state`."""
    row = history.record(state.root, DATASET_WEEKLY, {"tier": tier, "week_start": week_start.isoformat()},
                        event, capture_id, **fields)
    state.add(tier, week_start, row["file"])


def trailing_counts(state: LakeState, tier: str, week_start: dt.date, band_weeks: int
                    ) -> pd.DataFrame:
    """Row and symbol counts of the trailing weeks' accepted versions, as their gate reports
    measured them (from the ledger: no data file is opened)."""
    out = []
    for prior in trailing_weeks(week_start, band_weeks):
        held = state.held(tier, prior)
        report = state.report(tier, prior, held) if held else None
        if report and "rows" in report:
            out.append({"week_start": prior, "rows": report["rows"],
                        "symbols": report["symbols"],
                        "shares_per_day": report.get("shares_per_day")})
    return pd.DataFrame(out, columns=["week_start", "rows", "symbols", "shares_per_day"])


def gate(config: dict, tier: str, week_start: dt.date | str, capture_id: str | None = None,
         state: LakeState | None = None) -> GateReport:
    """Decide one capture (default: the latest fetched): run the gates and record the verdict
    in the ledger, `accepted` (clean is to hold it) or `refused` (clean keeps what it held).
    The ledger event carries the whole gate report; the clean step materialises clean from it.
    A capture already decided is not decided again (an identical re-fetch changes nothing).
    `state`: the ledger's state (read here when not handed one)."""
    root = config["lake_root"]
    week_start = cal.check_week_start(week_start)
    if capture_id is None:
        capture_id = latest_receipt(root, tier, week_start)["capture_id"]
    with lake.partition_lock(ledger_dir(root, tier, week_start), DECIDE_LOCK):
        state = _state(config, state)
        done = state.report(tier, week_start, capture_id)
        if done is not None:
            return GateReport.from_dict(done)
        return _decide(config, state, tier, week_start, capture_id,
                       state.held(tier, week_start))


def _version(root: str, tier: str, week_start: dt.date, capture_id: str | None):
    if capture_id is None:
        return None
    raw = pq.read_table(lake.path(root, "capture", tier=tier, week_start=week_start,
                                  capture_id=capture_id)).to_pandas()
    return Version.of(convert.to_clean(raw, capture_id)[0], capture_id)


def _decide(config: dict, state: LakeState, tier: str, week_start: dt.date, capture_id: str,
            previous: str | None, regate: bool = False) -> GateReport:
    """Run the gates on a capture against `previous` (the version it would replace) and
    record the verdict. The caller holds the partition's decide lock."""
    root = config["lake_root"]
    keys = {"tier": tier, "week_start": week_start}
    raw = pq.read_table(lake.path(root, "capture", capture_id=capture_id, **keys)).to_pandas()
    clean, aggregates = convert.to_clean(raw, capture_id)
    gcfg = GateConfig.from_config(config["gates"], tier)
    trailing = trailing_counts(state, tier, week_start, gcfg.band_weeks)
    report = evaluate(clean, dataset=DATASET_WEEKLY, tier=tier, week_start=week_start,
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
    _record(state, tier, week_start, "accepted" if accepted else "refused", capture_id,
            previous_capture=previous, rows=report.measures["rows"], report=payload,
            run="spine regate" if regate else None)
    return report


def regate(config: dict, tier: str, week_start: dt.date | str, capture_id: str | None = None
           ) -> tuple[str, GateReport]:
    """`spine regate`: decide a capture again under the current gate settings (default: the
    one clean holds, else the week's latest gated capture) and record the verdict, as any gate
    does. A refused capture that clean held is let go: clean goes back to the capture it held
    before (or to nothing). Returns (the capture clean holds afterwards, the report)."""
    root = config["lake_root"]
    week_start = cal.check_week_start(week_start)
    with lake.partition_lock(ledger_dir(root, tier, week_start), DECIDE_LOCK):
        state = LakeState.read(root)
        part = state.get(tier, week_start)
        latest = max(part.verdicts.values(), key=lambda e: e.at).capture_id \
            if part.verdicts else None
        capture_id = capture_id or part.held or latest
        if capture_id is None or capture_id not in part.verdicts:
            raise ValueError(f"{tier} week {week_start} has no gated capture "
                             f"{capture_id or '(clean holds none)'}; spine status lists what "
                             "the lake holds")
        before = [c for c in part.holding if c != capture_id]
        previous = before[-1] if before else None
        report = _decide(config, state, tier, week_start, capture_id, previous, regate=True)
    return state.held(tier, week_start), report


def override(config: dict, tier: str, week_start: dt.date | str, checks: list[str],
             reason: str, capture_id: str | None = None, revoke: bool = False) -> str | None:
    """`spine override`: let a refused capture through (default: the week's latest refused
    capture), recorded in the ledger with who, when, why and which failed checks; or, with
    `revoke`, take an override back. Returns what clean holds afterwards."""
    root = config["lake_root"]
    week_start = cal.check_week_start(week_start)
    with lake.partition_lock(ledger_dir(root, tier, week_start), DECIDE_LOCK):
        state = LakeState.read(root)
        part = state.get(tier, week_start)
        if revoke:
            capture_id = capture_id or (part.held if part.held in part.overrides else None)
            if capture_id not in part.overrides:
                raise ValueError(f"{tier} week {week_start} has no override "
                                 f"{'of ' + capture_id if capture_id else 'in force'} to revoke")
            _record(state, tier, week_start, "revoked", capture_id, reason=reason,
                    run="spine override --revoke")
        else:
            refused = [e for e in part.verdicts.values() if e.event == "refused"]
            if capture_id is None and refused:
                capture_id = max(refused, key=lambda e: e.at).capture_id
            event = part.verdicts.get(capture_id) if capture_id else None
            if event is None or event.event != "refused":
                raise ValueError(f"{tier} week {week_start}: capture "
                                 f"{capture_id or '(none)'} was not refused by a gate; only a "
                                 "refused capture can be overridden (spine status lists them)")
            report = state.report(tier, week_start, capture_id)
            failed = sorted(c["check"] for c in report["checks"] if c["status"] == "FAIL")
            unknown = sorted(set(checks) - set(failed))
            if unknown or set(failed) - set(checks):
                raise ValueError(
                    f"{tier} week {week_start}, capture {capture_id} failed "
                    f"{', '.join(failed)}; --check must name exactly those"
                    + (f" ({', '.join(unknown)} did not fail)" if unknown else ""))
            _record(state, tier, week_start, "overridden", capture_id,
                    previous_capture=part.held, reason=reason, run="spine override",
                    report={"by": getpass.getuser(), "checks": failed, "gate_report": report})
    return state.held(tier, week_start)


def pin(config: dict, tier: str, week_start: dt.date | str, capture_id: str, reason: str) -> str:
    """Pin clean to a stored capture (rollback, or undoing one): recorded in the ledger with
    the reason, and reversible by pinning again. The capture must have passed its gates. The
    next run (`snakemake --cores 2 reports`) materialises clean and what depends on it."""
    root = config["lake_root"]
    week_start = cal.check_week_start(week_start)
    with lake.partition_lock(ledger_dir(root, tier, week_start), DECIDE_LOCK):
        state = LakeState.read(root)
        report = state.report(tier, week_start, capture_id)
        if report is None or report["status"] != PASS:
            raise ValueError(f"capture {capture_id} of {tier} week {week_start} has no passing "
                             "gate verdict in the ledger; only a capture that passed can be "
                             "pinned (spine diff and the revision reports list the captures)")
        previous = state.held(tier, week_start)
        _record(state, tier, week_start, "pinned", capture_id, previous_capture=previous,
                reason=reason)
    return previous or ""


def run_gates(config: dict, receipts: list[str], output: str | Path) -> pd.DataFrame:
    """The gate step of a run: decide every capture the run fetched, oldest week first within
    each tier (a week's count band compares with the weeks before it, decided first), then
    write the run's ingest record: per partition, the capture fetched and its verdict, and the
    partition's ledger listing after the decision (the plan's input for the derive stage).
    The ledger is listed once; tiers are independent of each other, so each tier's weeks are
    decided in a process of its own, as many at once as this process may use CPUs."""
    fetched = [lake.read_json(p) for p in receipts]
    tiers: dict[str, list[dict]] = {}
    for r in sorted(fetched, key=lambda r: r["week_start"]):
        tiers.setdefault(r["tier"], []).append(r)
    state = LakeState.read(config["lake_root"])
    rows, listing = [], {}
    for tier_rows, tier_listing in _each_forked(_gate_tier, [(config, state, rs) for rs in
                                                             tiers.values()]):
        rows += tier_rows
        listing |= tier_listing
    rows.sort(key=lambda r: (r["week_start"], TIERS.index(r["tier"])))
    lake.write_json(output, {"partitions": rows, "ledger": listing})
    return pd.DataFrame(rows)


def _gate_tier(config: dict, state: LakeState, fetched: list[dict]) -> tuple[list[dict], dict]:
    """Decide one tier's captures, oldest week first."""
    rows, listing = [], {}
    for r in fetched:
        report = gate(config, r["tier"], r["week_start"], r["capture_id"], state=state)
        rows.append({"tier": r["tier"], "week_start": r["week_start"],
                     "capture_id": r["capture_id"], "new_capture": r["new_capture"],
                     "status": report.status, "clean_holds": state.held(r["tier"],
                                                                        r["week_start"])})
        listing[f"{r['tier']}/{r['week_start']}"] = state.listed(r["tier"], r["week_start"])
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


def write_gate_report(event_file: str | Path, output: str | Path) -> dict:
    """A capture's gate report file, from its verdict event (`accepted` or `refused`)."""
    report = read_event(event_file)["report"]
    lake.write_json(output, report)
    return report


def gate_reports(config: dict, tier: str, week_start: dt.date | str) -> list[Path]:
    """Write the gate report file of every capture of a partition that has a verdict (by hand;
    the Snakefile's `gate_report` rule writes them one by one)."""
    root, week = config["lake_root"], cal.check_week_start(week_start)
    out = []
    for capture, event in LakeState.read(root).get(tier, week).verdicts.items():
        path = lake.path(root, "gate", tier=tier, week_start=week, capture_id=capture)
        write_gate_report(ledger_dir(root, tier, week) / event.file, path)
        out.append(path)
    return out


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
