"""Market Spine: FINRA OTC Transparency research pipeline (see README.md and
docs/architecture.md, which draws the package's folders along the data's way)."""

from spine.vocabulary import DATASET_WEEKLY


def as_known_at(dataset: str = DATASET_WEEKLY, known_at=None, *, root="data"):
    """The clean table as it was known at ledger time `known_at` (the wall-clock UTC time of a
    run, not the `as_of` it ran for): spine.ingest.history.as_known_at. Imported when called, so
    that `import spine` loads no pandas: every job's thin client imports it (test_warm.py)."""
    from spine.ingest.history import as_known_at as _as_known_at

    return _as_known_at(dataset, known_at, root=root)


asof = as_known_at  # the earlier name, kept because notebooks and scripts of users call it
