"""The calc step: one calculation of `spine.derive.registry` for one held (tier, week).

Reads the calculation's inputs (clean, other calculations over the weeks of its window, the
week's Reg SHO), runs its function (`spine.derive.calcs.compute`, which checks its schema) and
writes calc/<name>/ with the version in the footer. The Snakefile runs it once per calculation,
tier and week, after its inputs, with the window's weeks from the plan.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from spine import calendar as cal
from spine import lake
from spine.derive import calcs, registry
from spine.derive.clean import read_clean
from spine.ingest.ledger import LakeState
from spine.schemas import RegShoDaily
from spine.vocabulary import DATASET_REGSHO


def make_calc(config: dict, name: str, tier: str, week_start: dt.date | str,
         windows: dict[str, list[str]] | None = None) -> pd.DataFrame:
    """One calculation of spine/derive/registry.py for one held (tier, week): read its inputs, run
    its function, check its schema, write calc/<name>/ with the version in the footer.
    `windows`: per windowed input, the weeks to read (the plan's; default: the weeks of the
    window the ledger holds, whose outputs must be there: the Snakefile makes them first)."""
    root = config["lake_root"]
    week = cal.check_week_start(week_start)
    entry = registry.get(name)
    if tier not in entry.tiers:
        raise ValueError(f"calculation {name} runs on tiers {', '.join(entry.tiers)}, not {tier}")
    if windows is None:  # by hand: the weeks of the window the ledger holds
        state = LakeState.read(root)
        windows = {i.name: [w.isoformat() for w in state.window(tier, week, i.weeks)]
                   for i in entry.inputs if i.name not in registry.SOURCES}
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
                         inputs=lake.made_from(root, *paths))
    return result


def read_calc(root: str, name: str, tier: str, week_start: dt.date | str) -> pd.DataFrame:
    week_start = cal.check_week_start(week_start)
    df = lake.read_partition(root, "calc", name, {"tier": tier, "week_start": week_start})
    return df[calcs.columns(name)]


def read_regsho_week(root: str, week_start: dt.date) -> tuple[pd.DataFrame, list[Path]]:
    """Reg SHO daily rows of a week's trading days (as its week summary lists them), and the
    files read."""
    summary = lake.read_json(lake.path(root, "regsho_week", week_start=week_start))
    paths = [lake.path(root, "regsho_clean", trade_date=d["trade_date"]) for d in summary["days"]]
    frames = [lake.read_partition(root, "clean", DATASET_REGSHO, {"trade_date": d["trade_date"]})
              for d in summary["days"]]
    columns = list(RegShoDaily.to_schema().columns)
    daily = pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(
        {c: pd.Series(dtype="datetime64[ns]" if c == "trade_date" else "object")
         for c in columns})
    return daily, paths
