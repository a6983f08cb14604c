import pytest

from spine import config
from tests.helpers import scenario_config


@pytest.fixture
def small_config(tmp_path):
    """A validated config on the `small` synthetic source (.test/config/small.yaml) in a
    temporary lake."""
    return config.load(**scenario_config(lake_root=str(tmp_path / "lake"), as_of="2025-08-01"))
