"""The clean step: clean materialised from the raw capture the ledger says it holds.

Clean is derived, like the calculations: the raw capture and the ledger's verdict are the
record, and `spine.ingest.convert` is the one conversion (the gates checked the same table).
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from spine import calendar as cal
from spine import lake
from spine.ingest import convert
from spine.ingest.ledger import LakeState
from spine.schemas import CLEAN_COLUMNS
from spine.vocabulary import DATASET_WEEKLY


class GateFailed(RuntimeError):
    """Clean cannot be made: the week has no accepted version, or its capture is unreadable."""


def read_clean(root: str, tier: str, week_start: dt.date | str) -> pd.DataFrame:
    week_start = cal.check_week_start(week_start)
    df = lake.read_partition(root, "clean", DATASET_WEEKLY, {"tier": tier, "week_start": week_start})
    return df[CLEAN_COLUMNS]


def make_clean(config: dict, tier: str, week_start: dt.date | str,
               capture_id: str | None = None) -> pd.DataFrame:
    """Materialise clean from the capture it holds (default: what the ledger says). Clean is
    derived, like the calculations: the raw capture and the ledger's verdict are the record."""
    root = config["lake_root"]
    week_start = cal.check_week_start(week_start)
    if capture_id is None:
        capture_id = LakeState.read(root).held(tier, week_start)
    if capture_id is None:
        raise GateFailed(f"{tier} week {week_start} has no accepted version (its captures "
                         f"failed their gates); see {root}/gates/")
    keys = {"tier": tier, "week_start": week_start}
    raw_path = lake.path(root, "capture", capture_id=capture_id, **keys)
    try:
        raw = pq.read_table(raw_path).to_pandas()
    except (OSError, pa.ArrowException) as err:
        raise GateFailed(f"{raw_path}: the raw capture clean is to hold cannot be read ({err}). "
                         "Run `spine verify` to see the damage and "
                         "workflows/incident/DATABASE_RECOVERY.md to repair it.") from None
    clean, _ = convert.to_clean(raw, capture_id)
    lake.write_partition(clean, root, "clean", DATASET_WEEKLY, keys,
                         metadata={"spine.capture_id": capture_id},
                         inputs=lake.made_from(root, raw_path))
    return clean
