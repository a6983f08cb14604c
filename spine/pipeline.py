"""The weekly steps the notebooks call: fetch, gate (and advance to clean), calc, report data.

Each step reads and writes the lake only through `spine.lake`, so the notebooks stay thin and
the same code runs from Snakemake, from JupyterLab and from tests.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from spine import calendar as cal
from spine import clean as clean_
from spine import lake, synthetic
from spine.calcs import CALC_SCHEMAS, CALCS
from spine.gates import FAIL, PASS, GateConfig, GateReport, evaluate
from spine.schemas import CLEAN_COLUMNS, RawWeekly


class GateFailed(RuntimeError):
    pass


def _source_rows(config: dict, tier: str, week_start: dt.date) -> tuple[pd.DataFrame, dict]:
    source = config["source"]
    if source == "synthetic":
        syn = config["synthetic"]
        rows = synthetic.weekly_rows(
            tier, week_start, config["as_of"], seed=syn["seed"], size=syn["size"],
            revisions=synthetic.parse_revisions(syn.get("revisions")))
        request = {"source": "synthetic", "tier": tier, "week_start": week_start.isoformat(),
                   "as_of": config["as_of"], "seed": syn["seed"], "size": syn["size"]}
        return rows, request
    raise ValueError(f"config key 'source': unknown source {source!r}")


def fetch(config: dict, tier: str, week_start: dt.date | str) -> dict:
    """Fetch one (tier, week) and store it in raw as an immutable capture.

    The capture_id is derived from the content, so a re-fetch of identical content finds its
    capture already stored and writes nothing new. Returns the fetch receipt (also written).
    """
    root = config["lake_root"]
    week_start = cal.check_week_start(week_start)
    retrieved_at = pd.Timestamp.now(tz="UTC").floor("s")
    rows, request = _source_rows(config, tier, week_start)
    content_hash = lake.content_hash(rows)
    capture_id = content_hash[:16]
    raw = rows.assign(capture_id=capture_id, retrieved_at=retrieved_at)
    RawWeekly.validate(raw)
    raw_dir = lake.path(root, "raw", tier=tier, week_start=week_start)
    filename = f"{capture_id}.parquet"
    is_new = not (raw_dir / filename).exists()
    if is_new:
        lake.write_partition(raw, root, "raw", lake.DATASET,
                             {"tier": tier, "week_start": week_start},
                             filename=filename, overwrite=False)
    receipt = {
        "dataset": lake.DATASET, "tier": tier, "week_start": week_start.isoformat(),
        "capture_id": capture_id, "content_hash": content_hash,
        "file": str((raw_dir / filename).relative_to(root)),
        "retrieved_at": retrieved_at.isoformat(), "request": request, "rows": len(rows),
        "max_last_updated": str(rows["lastUpdateDate"].max()) if len(rows) else None,
        "new_capture": is_new,
    }
    lake.write_json(lake.path(root, "fetch", tier=tier, week_start=week_start), receipt)
    return receipt


def read_capture(root: str, receipt: dict) -> pd.DataFrame:
    return pq.read_table(Path(root) / receipt["file"]).to_pandas()


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


def gate(config: dict, tier: str, week_start: dt.date | str) -> GateReport:
    """Gate the fetched capture; advance clean to it only if every check passes.

    The gate report is written either way. A failing week leaves clean as it was.
    """
    root = config["lake_root"]
    week_start = cal.check_week_start(week_start)
    receipt = lake.read_json(lake.path(root, "fetch", tier=tier, week_start=week_start))
    raw = read_capture(root, receipt)
    clean, aggregates = clean_.to_clean(raw, receipt["capture_id"])
    gcfg = GateConfig.from_config(config.get("gates"))
    trailing = trailing_counts(root, tier, week_start, gcfg.band_weeks)
    report = evaluate(clean, dataset=lake.DATASET, tier=tier, week_start=week_start,
                      capture_id=receipt["capture_id"], trailing=trailing,
                      aggregate_rows=aggregates, cfg=gcfg)
    clean_path = lake.path(root, "clean", tier=tier, week_start=week_start)
    if report.status == PASS and current_capture(clean_path) != receipt["capture_id"]:
        # Rewrite only on a new capture, so an unchanged week does not rerun its calcs.
        lake.write_partition(clean, root, "clean", lake.DATASET,
                             {"tier": tier, "week_start": week_start})
    payload = report.to_dict() | {"trailing_weeks": [w.isoformat() for w in trailing["week_start"]],
                                  "advanced_to_clean": report.status == PASS}
    lake.write_json(lake.path(root, "gate", tier=tier, week_start=week_start), payload)
    return report


def read_clean(root: str, tier: str, week_start: dt.date | str) -> pd.DataFrame:
    week_start = cal.check_week_start(week_start)
    df = lake.read_partition(root, "clean", lake.DATASET, {"tier": tier, "week_start": week_start})
    return df[CLEAN_COLUMNS]


def calc(config: dict, tier: str, week_start: dt.date | str) -> dict[str, pd.DataFrame]:
    """Every calculation for one accepted (tier, week), written to data/calc/<name>/."""
    root = config["lake_root"]
    week_start = cal.check_week_start(week_start)
    verdict = lake.read_json(lake.path(root, "gate", tier=tier, week_start=week_start))
    if verdict["status"] == FAIL:
        raise GateFailed(f"{tier} week {week_start} failed its gate; see "
                         f"{lake.path(root, 'gate', tier=tier, week_start=week_start)}")
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


def notebook_config(overrides: dict) -> dict:
    """The config a notebook runs with. The pipeline passes the full config (with `lake_root`);
    by hand, without `lake_root`, it is the embedded `small` source in a fresh temporary lake,
    so running a notebook in JupyterLab never writes into the repository."""
    from spine import config as config_

    overrides = dict(overrides)
    if not overrides.get("lake_root"):
        overrides["lake_root"] = tempfile.mkdtemp(prefix="market-spine-")
        overrides["synthetic"] = {"size": "small", **overrides.get("synthetic", {})}
    return config_.load(**overrides)


def show_receipt(receipt: dict) -> pd.DataFrame:
    """A fetch receipt as a two-column table for a notebook."""
    flat = {k: v for k, v in receipt.items() if k != "request"}
    flat |= {f"request.{k}": v for k, v in receipt["request"].items()}
    return pd.DataFrame({"field": list(flat), "value": [str(v) for v in flat.values()]})


def ensure_upstream(config: dict, tier: str, week_start: dt.date | str, upto: str) -> None:
    """For hand runs in JupyterLab: produce the steps before `upto` whose outputs are missing."""
    root, keys = config["lake_root"], {"tier": tier, "week_start": week_start}
    order = ["fetch", "gate", "calc", "report"]
    if order.index(upto) > 0 and not lake.path(root, "fetch", **keys).exists():
        fetch(config, tier, week_start)
    if order.index(upto) > 1 and not lake.path(root, "gate", **keys).exists():
        gate(config, tier, week_start)
    if (order.index(upto) > 2
            and lake.read_json(lake.path(root, "gate", **keys))["status"] != FAIL
            and not all(lake.path(root, "calc", calc=name, **keys).exists() for name in CALCS)):
        calc(config, tier, week_start)
