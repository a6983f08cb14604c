import pytest

from spine import config, plan
from tests.helpers import run_snakemake


@pytest.mark.parametrize("override, key", [
    ({"as_of": "2025-02-30"}, "as_of"),
    ({"as_of": "last friday"}, "as_of"),
    ({"tiers": ["T1", "T4"]}, "tiers.1"),
    ({"start": "2025-06-30", "end": "2025-01-06"}, "end"),
    ({"revision_lookback_weeks": 0}, "revision_lookback_weeks"),
    ({"synthetic": {"size": "huge"}}, "synthetic.size"),
])
def test_bad_values_are_refused_naming_the_key(override, key):
    with pytest.raises(config.ConfigError, match=f"'{key}'|{key}="):
        config.load(**override)


def test_command_line_strings_are_read_as_the_schema_type():
    cfg = config.load(revision_lookback_weeks="3", synthetic={"seed": "11"})
    assert cfg["revision_lookback_weeks"] == 3 and cfg["synthetic"]["seed"] == 11


def test_as_of_defaults_to_today_eastern():
    from spine import calendar as cal

    assert config.load()["as_of"] == cal.today_eastern().isoformat()


def test_backfill_targets():
    cfg = config.load(as_of="2025-08-01", start="2025-06-01", end="2025-06-16", tiers=["T1", "OTCE"])
    parts = plan.backfill(cfg)
    assert [(t, w.isoformat()) for t, w in parts] == [
        ("T1", "2025-06-02"), ("T1", "2025-06-09"), ("T1", "2025-06-16"),
        ("OTCE", "2025-06-02"), ("OTCE", "2025-06-09"), ("OTCE", "2025-06-16")]


@pytest.mark.e2e
def test_snakemake_refuses_bad_config_before_any_job(tmp_path):
    lake_root = tmp_path / "lake"
    proc = run_snakemake(tmp_path, {"lake_root": str(lake_root), "as_of": "2025-06-31"}, "-n",
                         check=False)
    assert proc.returncode != 0
    assert "config key 'as_of'" in proc.stdout + proc.stderr
    assert not lake_root.exists()
    proc = run_snakemake(tmp_path, {"lake_root": str(lake_root)}, "-n", "backfill",
                         "--config", "tiers=[T1,T9]", check=False)
    assert proc.returncode != 0 and "config key 'tiers.1'" in proc.stdout + proc.stderr


def test_an_as_of_after_today_is_refused_by_the_config_the_run_and_status(tmp_path):
    """A date not yet lived would make the synthetic source invent weeks FINRA has not
    published and `spine status` call them published: refused, naming the key and today."""
    import datetime as dt
    import subprocess
    import sys

    from spine import calendar as cal

    tomorrow = (cal.today_eastern() + dt.timedelta(days=1)).isoformat()
    with pytest.raises(config.ConfigError, match=f"'as_of': {tomorrow} is after today"):
        config.load(as_of=tomorrow)
    assert config.load(as_of=cal.today_eastern().isoformat())["as_of"]  # today is fine
    status = subprocess.run([sys.executable, "-m", "spine.cli", "status", "--as-of", tomorrow,
                             "--lake-root", str(tmp_path / "lake")],
                            capture_output=True, text=True)
    assert status.returncode == 2 and "is after today" in status.stderr
    assert "Traceback" not in status.stderr
