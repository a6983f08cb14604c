"""Market Spine: FINRA OTC Transparency research pipeline (see README.md)."""


def asof(dataset: str = "finra_otc_weekly", known_at=None, *, root="data"):
    """The clean table as known at `known_at` (see spine.ingest.ledger.asof)."""
    from spine.ingest.ledger import asof as _asof

    return _asof(dataset, known_at, root=root)
