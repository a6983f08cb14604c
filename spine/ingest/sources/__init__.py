"""Data sources: one module per source, listed by name in `spine.ingest.sources.catalog`.

A source declares its datasets (name, partition keys, raw schema) and fetches one partition
into a `Capture`: the payload exactly as received, the parsed table, and metadata. The pipeline
stores captures; it never needs to know which source produced one, so switching `source:` in
the config changes no rule.

A source also says which weeks of the weekly dataset it can serve (`Source.serves`: FINRA's API
holds about 4 years, download files what was downloaded). `source:` names one source or several
in preference order (`configured`), and `catalog.for_partition` picks, for a (tier, week), the
first that serves it: the plan (`spine.plan.coverage`) and the fetch ask it the same question.

This module is what every source shares; the sources import it, and `catalog` imports them.
To add a source, see workflows/development/ADD_DATASOURCE.md.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pandas as pd
import pandera.pandas as pa

from spine.schemas import RawRegSho, RawWeekly
from spine.vocabulary import DATASET_REGSHO, DATASET_WEEKLY


# How to backfill the weeks a source cannot serve (FINRA's API keeps about 4 years)
HISTORY_RUNBOOK = "workflows/operational/BACKFILL_HISTORICAL.md"


class SourceError(RuntimeError):
    """A source could not deliver a partition; the message names the request and what to do."""


@dataclass(frozen=True)
class Dataset:
    name: str
    partition_keys: tuple[str, ...]
    raw_schema: type[pa.DataFrameModel]


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


# The datasets, their partition keys and raw layouts (the same for every source of a dataset).
WEEKLY = Dataset(DATASET_WEEKLY, ("tier", "week_start"), RawWeekly)
REGSHO = Dataset(DATASET_REGSHO, ("trade_date",), RawRegSho)


class Source:
    """Base class. Subclasses set `name` and `datasets` and implement `fetch`."""

    name: ClassVar[str]
    datasets: ClassVar[dict[str, Dataset]]

    def __init__(self, config: dict):
        self.config = config

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


def configured(config: dict) -> list[str]:
    """The sources of the weekly dataset, in preference order: `source:` is one name or a list."""
    names = config["source"]
    return [names] if isinstance(names, str) else list(names)
