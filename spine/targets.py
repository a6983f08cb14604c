"""Which (tier, week) partitions a run processes, and the files it must produce.

The Snakefile calls these; nothing else decides what a run covers.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from spine import calendar as cal
from spine import lake
from spine.calcs import CALCS


def weekly(config: dict) -> list[tuple[str, dt.date]]:
    """The weekly update: every week first published within `revision_lookback_weeks`."""
    return [(tier, week) for tier in config["tiers"]
            for week in cal.recent_weeks(tier, config["as_of"], config["revision_lookback_weeks"])]


def backfill(config: dict) -> list[tuple[str, dt.date]]:
    """Every published week with week_start in [start, end]."""
    if not config.get("start"):
        raise ValueError("backfill needs config key 'start' (and usually 'end'): "
                         "snakemake --cores 2 backfill --config start=2025-01-06 end=2025-06-30")
    return [(tier, week) for tier in config["tiers"]
            for week in cal.published_weeks(tier, config["as_of"], config["start"],
                                            config.get("end") or None)]


def weeks_by_start(partitions: list[tuple[str, dt.date]]) -> dict[dt.date, list[str]]:
    out: dict[dt.date, list[str]] = {}
    for tier, week in sorted(partitions, key=lambda p: (p[1], cal.TIERS.index(p[0]))):
        out.setdefault(week, []).append(tier)
    return out


def calc_files(root: str, tier: str, week_start: dt.date) -> list[Path]:
    return [lake.path(root, "calc", calc=name, tier=tier, week_start=week_start) for name in CALCS]


def refetch(config: dict) -> list[tuple[str, dt.date]]:
    """`snakemake refetch --config weeks=[...]`: the named weeks, for the configured tiers that
    have published them."""
    weeks = [cal.check_week_start(w) for w in config.get("weeks") or []]
    return [(tier, week) for tier in config["tiers"] for week in weeks
            if cal.is_published(tier, week, config["as_of"])]


def fetch_key(config: dict, now: dt.datetime) -> str:
    """The name of this invocation's fetches: `asof-<date>` (one fetch per week and as_of, so a
    rerun the same day fetches nothing), or `at-<time>` for an on-demand re-fetch."""
    if config.get("weeks"):
        return f"at-{now:%Y%m%dT%H%M%S}"
    return f"asof-{config['as_of']}"


def gated_partitions(root: str) -> list[tuple[str, dt.date]]:
    """Every (tier, week) the lake has a gate report for (the `reports` target)."""
    base = Path(root) / "gates" / lake.DATASET
    out = set()
    for path in base.glob("tier=*/week_start=*/capture_id=*.json") if base.exists() else []:
        tier = path.parent.parent.name.split("=", 1)[1]
        week = dt.date.fromisoformat(path.parent.name.split("=", 1)[1])
        out.add((tier, week))
    return sorted(out, key=lambda p: (p[1], cal.TIERS.index(p[0])))


def latest_gated_capture(root: str, tier: str, week_start: dt.date) -> str:
    """The capture of a partition's most recent gate report."""
    folder = lake.path(root, "gate", tier=tier, week_start=week_start, capture_id="x").parent
    reports = [lake.read_json(p) for p in folder.glob("capture_id=*.json")]
    return max(reports, key=lambda r: r["evaluated_at"])["capture_id"]


def report_captures(root: str, tier: str, week_start: dt.date | str) -> list[str]:
    """The captures a weekly report shows for a partition: the one clean holds, then any
    refused since it was accepted (a revision waiting for an operator). Without an accepted
    version: the latest gated capture."""
    from spine import ledger

    week = cal.check_week_start(week_start)
    clean = lake.path(root, "clean", tier=tier, week_start=week)
    if not clean.exists():
        folder = lake.path(root, "gate", tier=tier, week_start=week, capture_id="x").parent
        gated = folder.exists() and any(folder.glob("capture_id=*.json"))
        return [latest_gated_capture(root, tier, week)] if gated else []
    meta = lake.file_metadata(clean)
    held, since = meta["spine.capture_id"], meta["spine.accepted_at"]
    ev = ledger.events(root, lake.DATASET, tier=tier, week_start=week.isoformat())
    later = ev[(ev["event"] == "refused")
               & (pd.to_datetime(ev["recorded_at"], utc=True) > pd.Timestamp(since))]
    return [held] + [c for c in dict.fromkeys(later["capture_id"]) if c != held]


def recorded_revisions(root: str) -> list[tuple[str, str, str, str]]:
    """(tier, week_start, old, new) for every revision in the ledger: a capture that was
    accepted or refused while clean held another. Reads only those events' files (their names
    say the event), since this runs whenever Snakemake re-evaluates the DAG."""
    base = Path(root) / "ledger" / lake.DATASET
    files = [f for pattern in ("*-accepted-*.parquet", "*-refused-*.parquet")
             for f in base.glob(f"tier=*/week_start=*/{pattern}")] if base.exists() else []
    out = set()
    for f in files:
        row = pd.read_parquet(f, columns=["capture_id", "previous_capture"]).iloc[0]
        if pd.notna(row["previous_capture"]) and row["previous_capture"] != row["capture_id"]:
            tier = f.parent.parent.name.split("=", 1)[1]
            week = f.parent.name.split("=", 1)[1]
            out.add((tier, week, row["previous_capture"], row["capture_id"]))
    return sorted(out)
