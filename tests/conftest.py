import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def small_config(tmp_path):
    """A validated config on the `small` synthetic source in a temporary lake."""
    from spine import config

    return config.load(lake_root=str(tmp_path / "lake"), as_of="2025-08-01",
                       synthetic={"size": "small"})


def monday(text: str) -> dt.date:
    day = dt.date.fromisoformat(text)
    assert day.weekday() == 0, text
    return day
