"""Data sources: one module per source, registered by name.

A source declares its datasets (name, partition keys, raw schema), says which partitions
should exist as of a date, and fetches one partition into a `Capture`: the payload exactly as
received, the parsed table, and metadata. The pipeline stores captures; it never needs to know
which source produced one, so switching `source:` in the config changes no rule.

A source also says which weeks of the weekly dataset it can serve (`Source.serves`: FINRA's API
holds about 4 years, download files what was downloaded). `source:` names one source or several
in preference order, and `for_partition` picks, for a (tier, week), the first that serves it:
the plan (`spine.plan.coverage`) and the fetch ask it the same question.

To add a source, see workflows/development/ADD_DATASOURCE.md.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

import pandas as pd
import pandera.pandas as pa

from spine.schemas import RawRegSho, RawWeekly


# How to backfill the weeks a source cannot serve (FINRA's API keeps about 4 years)
HISTORY_RUNBOOK = "workflows/operational/BACKFILL_HISTORICAL.md"


class SourceError(RuntimeError):
    """A source could not deliver a partition; the message names the request and what to do."""


@dataclass(frozen=True)
class Dataset:
    name: str
    partition_keys: tuple[str, ...]
    raw_schema: type[pa.DataFrameModel]
    expected: Callable[[dict, Any], list[dict[str, str]]]


@dataclass
class Capture:
    dataset: str
    partition: dict[str, str]
    table: pd.DataFrame  # parsed rows, in the dataset's raw layout
    payload: list[tuple[str, bytes]]  # the parts exactly as received (pages, files)
    request: dict[str, Any]  # what was asked, never a credential
    retrieved_at: pd.Timestamp = field(
        default_factory=lambda: pd.Timestamp.now(tz="UTC"))

    @property
    def payload_sha256(self) -> str:
        digest = hashlib.sha256()
        for name, body in self.payload:
            digest.update(name.encode() + b"\0" + body)
        return digest.hexdigest()


def _weekly_partitions(config: dict, as_of) -> list[dict[str, str]]:
    from spine import calendar as cal

    return [{"tier": t, "week_start": w.isoformat()} for t in config["tiers"]
            for w in cal.recent_weeks(t, as_of, config["revision_lookback_weeks"])]


def _daily_partitions(config: dict, as_of) -> list[dict[str, str]]:
    """Trade dates (XNYS sessions) of the weeks the weekly update covers, up to as_of."""
    from spine import calendar as cal

    weeks = {w for p in _weekly_partitions(config, as_of) for w in [p["week_start"]]}
    return [{"trade_date": d.isoformat()} for w in sorted(weeks)
            for d in cal.sessions_in_week(w) if d <= cal.to_date(as_of)]


# The datasets, their partition keys, raw layouts, and which partitions exist as of a date
# (from the publication calendar: the same for every source of a dataset).
WEEKLY = Dataset("finra_otc_weekly", ("tier", "week_start"), RawWeekly, _weekly_partitions)
REGSHO = Dataset("finra_regsho_daily", ("trade_date",), RawRegSho, _daily_partitions)


class Source:
    """Base class. Subclasses set `name` and `datasets` and implement `fetch`."""

    name: ClassVar[str]
    datasets: ClassVar[dict[str, Dataset]]

    def __init__(self, config: dict):
        self.config = config

    def expected_partitions(self, dataset: str, as_of) -> list[dict[str, str]]:
        """Which partitions of `dataset` should exist as of a date (the publication calendar)."""
        return self.dataset(dataset).expected(self.config, as_of)

    def fetch(self, dataset: str, partition: dict[str, str]) -> Capture:
        raise NotImplementedError

    def serves(self, tier: str, week_start, as_of) -> str | None:
        """Whether this source can serve the weekly dataset's (tier, week_start) as of `as_of`:
        None if it can, else one line naming the source, why not and what would serve it.
        By default a source serves every week."""
        return None

    def dataset(self, name: str) -> Dataset:
        if name not in self.datasets:
            raise SourceError(f"source {self.name!r} has no dataset {name!r}; "
                              f"it has {', '.join(self.datasets)}")
        return self.datasets[name]


SOURCES: dict[str, type[Source]] = {}


def register(cls: type[Source]) -> type[Source]:
    SOURCES[cls.name] = cls
    return cls


def configured(config: dict) -> list[str]:
    """The sources of the weekly dataset, in preference order: `source:` is one name or a list."""
    names = config["source"]
    return [names] if isinstance(names, str) else list(names)


def for_partition(config: dict, tier: str, week_start, as_of=None
                  ) -> tuple[Source | None, list[str]]:
    """The first configured source that serves (tier, week_start) as of `as_of` (default: the
    config's), with the reasons of the sources before it that do not; (None, every configured
    source's reason) when none does. What the plan (spine.plan.coverage), `spine status` and
    the fetch ask. `week_start` and `as_of`: dates or YYYY-MM-DD."""
    as_of = as_of or config["as_of"]
    reasons = []
    for name in configured(config):
        source = get(name, config)
        why = source.serves(tier, week_start, as_of)
        if why is None:
            return source, reasons
        reasons.append(why)
    return None, reasons


def get(name: str, config: dict) -> Source:
    """The source registered under `name`, configured from the run config."""
    from spine.ingest.sources import finra_api, finra_files, regsho, synthetic  # noqa: F401 (register)

    if not isinstance(name, str):
        raise SourceError(f"config key 'source': {name!r} names several sources; the one that "
                          "serves a week is spine.ingest.sources.for_partition's")
    if name not in SOURCES:
        raise SourceError(f"config key 'source': unknown source {name!r}; "
                          f"registered sources: {', '.join(sorted(SOURCES))}")
    return SOURCES[name](config)
