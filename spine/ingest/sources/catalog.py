"""Every source, by name, and which one serves a partition.

`SOURCES` lists the source classes by their `name` (the values of `source:` and
`regsho.source` in config); `get` makes one from the run config, and `for_partition` picks, for
a (tier, week), the first configured source that serves it.
"""

from __future__ import annotations

from spine.ingest.sources import Source, SourceError, configured
from spine.ingest.sources.finra_api import FinraApiSource
from spine.ingest.sources.finra_files import FinraFilesSource
from spine.ingest.sources.regsho import RegShoSource
from spine.ingest.sources.synthetic import SyntheticSource

SOURCES: dict[str, type[Source]] = {
    cls.name: cls for cls in (SyntheticSource, FinraApiSource, FinraFilesSource, RegShoSource)}


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
    if not isinstance(name, str):
        raise SourceError(f"config key 'source': {name!r} names several sources; the one that "
                          "serves a week is spine.ingest.sources.catalog.for_partition's")
    if name not in SOURCES:
        raise SourceError(f"config key 'source': unknown source {name!r}; "
                          f"registered sources: {', '.join(sorted(SOURCES))}")
    return SOURCES[name](config)
