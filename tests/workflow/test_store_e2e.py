"""The lake in an object store (`lake_store`, spine/lake/store.py), on moto's S3 server on
loopback: the shared revision scenario (weekly update, restatement, identical re-fetch) with each
run in a fresh working copy, as on a new machine; the store's lake read back with pandas,
pyarrow, DuckDB and Polars; `spine status` and `spine verify` against the store; and the
requests a week costs."""

import base64
import os
import shutil
import subprocess
import sys

import pandas as pd
import pyarrow.dataset as ds
import pytest
import yaml

from spine import config as config_

from tests.helpers import REPO, S3Server, planned, run_snakemake
from tests.workflow.conftest import AS_OF
from tests.workflow.test_warm_e2e import parquet_data

pytestmark = pytest.mark.e2e

BUCKET, PREFIX = "spine-lake", "market-spine"
URL = f"s3://{BUCKET}/{PREFIX}"


@pytest.fixture(scope="module")
def s3():
    server = S3Server(BUCKET)
    yield server
    server.stop()


def spine(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "spine.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def forget_metadata(root) -> None:
    """Remove Snakemake's metadata records of the outputs under `root` (named by the URL-safe
    base64 of the output's path, long ones split into `@`-marked folders)."""
    folder = REPO / ".snakemake" / "metadata"
    for path in [p for p in folder.rglob("*") if p.is_file()]:
        key = "".join(part.removeprefix("@") for part in path.relative_to(folder).parts)
        name = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4)).decode(errors="replace")
        if name.startswith(f"{root}/"):
            path.unlink()


def test_the_scenario_with_the_lake_in_a_store(s3, revision_runs, tmp_path, monkeypatch):
    for key, value in s3.env.items():
        monkeypatch.setenv(key, value)
    config = dict(revision_runs.config, lake_store=URL)
    copies = iter(tmp_path / f"copy{n}" for n in range(10))  # each run on a "new machine"

    def snake(as_of: str, *args: str, root=None, **changes):
        root = root or next(copies)
        return root, run_snakemake(tmp_path, dict(config, lake_root=str(root), **changes),
                                   "--config", f"as_of={as_of}", *args)

    s3.requests.clear()
    first, proc = snake(AS_OF["initial"])
    weeks = len(list((first / "clean" / "finra_otc_weekly" / "tier=T2").iterdir()))
    asked = dict(s3.requests)
    per_week = sum(asked.values()) / weeks
    assert "lake store s3://spine-lake/market-spine: pushed" in proc.stderr
    # the run's summary stays its last lines: the push is said before it
    assert proc.stderr.index(": pushed ") < proc.stderr.index("Run summary"), proc.stderr[-800:]
    s3.requests.clear()
    _, dry = snake(AS_OF["initial"], "-n")  # a new working copy: pulled whole, nothing to do
    assert planned(dry) == {}, dry.stdout[-2000:]
    pulled = dict(s3.requests)
    later = {}
    for as_of in ("revised", "identical"):
        s3.requests.clear()
        last, proc = snake(AS_OF[as_of])
        later[as_of] = dict(s3.requests)
        assert "pulled" in proc.stderr
    before = s3.count()
    _, dry = snake(AS_OF["identical"], "-n", root=last)  # the same copy: one GET, two for the lock
    assert planned(dry) == {}
    lookup = s3.count() - before
    print(f"lake store: the weekly update of {weeks} weeks asked {asked} ({per_week:.1f} a "
          f"week); a dry run pulling a new working copy {pulled}; the next updates, each pulling "
          f"a new working copy, {later}; a dry run on a current one {lookup}", file=sys.stderr)
    assert lookup <= 3
    # a new machine with the same lake_root: no working copy, no Snakemake metadata here. A
    # changed param (the reports' top_n) reruns the reports, as on the machine that ran them
    shutil.rmtree(last)
    forget_metadata(last)
    _, dry = snake(AS_OF["identical"], "-n", root=last, report={"top_n": 16})
    assert planned(dry).get("weekly_report") == weeks, dry.stdout[-2000:]

    # every Parquet file's data as the local run's; spine status and verify on the store
    env = {**os.environ, **s3.env}
    cfg = tmp_path / "spine.yaml"  # the whole config: spine's commands read no other
    cfg.write_text(yaml.safe_dump(config_.load(**config)))
    checked = next(copies)
    status = spine("status", "--configfile", str(cfg), "--lake-root", str(checked),
                   "--as-of", AS_OF["identical"], env=env)
    assert status.returncode == 0, status.stderr
    assert "pulled" in status.stderr and "Nothing needs an operator" in status.stdout
    verify = spine("verify", "--configfile", str(cfg), "--lake-root", str(checked), env=env)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    local, stored = parquet_data(revision_runs.root), parquet_data(checked)
    assert sorted(stored) == sorted(local)
    for rel, data in local.items():
        assert stored[rel] == data, rel

    # the store is a plain lake: read back by pandas, pyarrow, DuckDB and Polars
    want = pd.read_parquet(revision_runs.root / "clean" / "finra_otc_weekly")
    clean = f"{URL}/clean/finra_otc_weekly"
    assert len(pd.read_parquet(clean, storage_options={
        "client_kwargs": {"endpoint_url": s3.endpoint}, "skip_instance_cache": True})) == len(want)
    from pyarrow import fs

    s3fs_ = fs.S3FileSystem(endpoint_override=s3.endpoint, scheme="http", access_key="testing",
                            secret_key="testing", region="us-east-1")
    table = ds.dataset(f"{BUCKET}/{PREFIX}/clean/finra_otc_weekly", filesystem=s3fs_,
                       partitioning="hive").to_table()
    assert table.num_rows == len(want) and "week_start" in table.column_names
    import duckdb
    import fsspec

    con = duckdb.connect()
    # httpfs, when installed, reads s3:// too (a new client: fsspec's cached one may hold
    # another test's endpoint)
    con.register_filesystem(fsspec.filesystem("s3", skip_instance_cache=True))
    rows = con.execute(f"select count(*), count(distinct week_start) from read_parquet("
                       f"'{clean}/*/*/*.parquet', hive_partitioning=true)").fetchone()
    assert rows == (len(want), weeks)
    import polars as pl

    frame = pl.read_parquet(f"{clean}/**/*.parquet", hive_partitioning=True, storage_options={
        "aws_endpoint_url": s3.endpoint, "aws_allow_http": "true", "aws_region": "us-east-1",
        "aws_access_key_id": "testing", "aws_secret_access_key": "testing"})
    assert frame.height == len(want) and "tier" in frame.columns
