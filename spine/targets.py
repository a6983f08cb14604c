"""Which (tier, week) partitions a run processes, and the files it must produce.

The Snakefile calls these; nothing else decides what a run covers.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

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


def trailing_gates(root: str, tier: str, week_start: dt.date, band_weeks: int,
                   partitions: list[tuple[str, dt.date]]) -> list[Path]:
    """Gate reports of the trailing weeks in this run: a week's count band is evaluated after
    the weeks before it have been accepted or refused, so a backfill is deterministic."""
    wanted = set(partitions)
    week_start = cal.check_week_start(week_start)
    out = []
    for i in range(1, band_weeks + 1):
        prior = week_start - dt.timedelta(days=7 * i)
        if (tier, prior) in wanted:
            out.append(lake.path(root, "gate", tier=tier, week_start=prior))
    return out


def outputs(root: str, partitions: list[tuple[str, dt.date]]) -> list[Path]:
    """Every gate report and weekly report for the partitions (calcs follow from the reports)."""
    files = [lake.path(root, "gate", tier=t, week_start=w) for t, w in partitions]
    files += [lake.path(root, "report", week_start=w) for w in weeks_by_start(partitions)]
    return files


def calc_files(root: str, tier: str, week_start: dt.date) -> list[Path]:
    return [lake.path(root, "calc", calc=name, tier=tier, week_start=week_start) for name in CALCS]
