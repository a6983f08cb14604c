"""Test helpers: running the real Snakefile and reading its job list, and builders for small,
hand-checkable clean tables."""

import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import yaml

from spine.schemas import CLEAN_COLUMNS

REPO = Path(__file__).resolve().parents[1]
TEST_CONFIGS = REPO / ".test" / "config"


def scenario_config(name: str = "small", **overrides) -> dict:
    """A configuration of .test/config/<name>.yaml with `overrides` (nested dicts merged), as
    `--configfile .test/config/<name>.yaml --config ...` would give it."""
    config = yaml.safe_load((TEST_CONFIGS / f"{name}.yaml").read_text())
    for key, value in overrides.items():
        config[key] = ({**config[key], **value} if isinstance(value, dict)
                       and isinstance(config.get(key), dict) else value)
    return config


def run_snakemake(tmp_path: Path, config: dict, *args: str, check: bool = True,
                  env: dict | None = None, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """Run the real Snakefile (and its default profile) with a config file in tmp_path."""
    configfile = tmp_path / "config.yaml"
    configfile.write_text(yaml.safe_dump(config))
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
               **(env or {}))
    cmd = [sys.executable, "-m", "snakemake", *args, "--configfile", str(configfile)]
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def alive(pid: int) -> bool:
    """Whether process `pid` runs (a zombie, exited but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def planned(proc_or_text) -> dict[str, int]:
    """The jobs Snakemake plans, per rule, from its `Job stats` table (a dry run); {} when it
    says there is nothing to be done."""
    text = _text(proc_or_text)
    if "Nothing to be done" in text:
        return {}
    table = text.split("Job stats:")[1].split("\n\n")[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)
            if m[1] != "total"}


def executed(proc_or_text) -> dict[str, int]:
    """The jobs Snakemake ran, per rule, from its log (`Finished jobid: 7 (Rule: calc)`)."""
    names = re.findall(r"^Finished jobid: \d+ \(Rule: (\w+)\)", _text(proc_or_text), re.M)
    return dict(Counter(names))


def _text(proc_or_text) -> str:
    if isinstance(proc_or_text, str):
        return proc_or_text
    return proc_or_text.stdout + proc_or_text.stderr


def clean_frame(rows, week_start="2025-06-02", tier="T1"):
    """rows: (symbol, summary_type 'ATS'|'OTC', mpid, shares, trades)."""
    records = []
    for symbol, kind, mpid, shares, trades in rows:
        records.append({
            "week_start": pd.Timestamp(week_start), "tier": tier,
            "summary_type": "ATS_W_SMBL_FIRM" if kind == "ATS" else "OTC_W_SMBL_FIRM",
            "symbol": symbol, "issue_name": f"{symbol} Inc", "mpid": mpid,
            "firm_crd": 1000 + sum(map(ord, mpid or "")), "participant_name": f"{mpid} LLC",
            "product_type": "UTP", "shares": float(shares), "trades": trades,
            "notional": float(shares) * 10, "initial_published": pd.Timestamp("2025-06-23"),
            "last_updated": pd.Timestamp("2025-06-23"), "capture_id": "c0ffee",
        })
    df = pd.DataFrame(records)[CLEAN_COLUMNS]
    df["firm_crd"] = df["firm_crd"].astype("Int64")
    df["trades"] = df["trades"].astype("Int64")
    for col in ("tier", "summary_type", "symbol", "issue_name", "mpid", "participant_name",
                "product_type", "capture_id"):
        df[col] = df[col].astype("str")
    return df


# -- readers during writes (tests/unit/test_integrity.py, tests/benchmarks/faults.py) ----------
def _replace_forever(root: str, stop) -> None:
    """Replace one partition over and over: 20k to 36k rows, a multiple of 4k."""
    import numpy as np

    from spine import lake

    i = 0
    while not stop.is_set():
        n = 20_000 + (i % 5) * 4_000
        df = pd.DataFrame({"a": np.arange(n) + i, "b": np.random.default_rng(i).random(n)})
        lake.write_partition(df, root, "clean", "x", {"tier": "T1", "week_start": "2025-06-02"})
        i += 1


def reads_during_replacements(root: str, seconds: float) -> tuple[dict[str, int], list[str]]:
    """pandas, pyarrow datasets, DuckDB and Polars read a partition's folder for `seconds`
    while another process replaces it in a loop. Returns reads that saw one whole version, per
    reader, and every failed read (an error, or a row count of no version ever written)."""
    import multiprocessing as mp
    import time

    import duckdb
    import polars as pl
    import pyarrow.dataset as ds

    from spine import lake

    lake.write_partition(pd.DataFrame({"a": [1], "b": [0.5]}), root, "clean", "x",
                         {"tier": "T1", "week_start": "2025-06-02"})
    folder = f"{root}/clean/x"
    readers = {
        "pandas": lambda: len(pd.read_parquet(folder)),
        "pyarrow": lambda: ds.dataset(folder, partitioning="hive").to_table().num_rows,
        "duckdb": lambda: duckdb.sql(f"select count(*) from read_parquet('{folder}/**/*.parquet'"
                                     ", hive_partitioning=true)").fetchall()[0][0],
        "polars": lambda: pl.scan_parquet(f"{folder}/**/*.parquet").select(pl.len())
        .collect().item(),
    }
    stop = mp.Event()
    writer = mp.get_context("fork").Process(target=_replace_forever, args=(root, stop))
    writer.start()
    reads, failures = {k: 0 for k in readers}, []
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for name, read in readers.items():
                try:
                    rows = read()
                except Exception as err:  # noqa: BLE001 - counted
                    failures.append(f"{name}: {err}")
                    continue
                if rows == 1 or (20_000 <= rows <= 36_000 and rows % 4_000 == 0):
                    reads[name] += 1
                else:
                    failures.append(f"{name}: {rows} rows, a version never written")
    finally:
        stop.set()
        writer.join()
    return reads, failures


def derive(config: dict, tier: str, week_start, capture_id: str | None = None) -> dict:
    """Clean and every calculation of one held (tier, week), in registry order, in this
    process: what the Snakefile's clean and calc jobs make for the week (its windows read the
    weeks the ledger holds, derived before). For tests and benchmarks that build a lake without
    starting Snakemake."""
    from spine import calendar as cal
    from spine import lake
    from spine.derive import registry
    from spine.derive.calc import make_calc
    from spine.derive.clean import make_clean

    week = cal.check_week_start(week_start)
    make_clean(config, tier, week, capture_id)
    regsho = lake.path(config["lake_root"], "regsho_week", week_start=week).exists()
    return {c.name: make_calc(config, c.name, tier, week) for c in registry.for_tier(tier, regsho)}


class S3Server:
    """moto's S3 server on loopback (a thread of this process), with the environment that points
    boto3, s3fs and pandas at it, counting the requests it answers by HTTP method."""

    def __init__(self, bucket: str):
        import logging
        import threading

        from moto.moto_server.threaded_moto_server import MotoRequestHandler
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # a line per request otherwise
        self.requests: Counter[str] = Counter()
        app = DomainDispatcherApplication(create_backend_app)

        def counting(environ, start_response):
            self.requests[environ["REQUEST_METHOD"]] += 1
            return app(environ, start_response)

        self.server = make_server("127.0.0.1", 0, counting, True,
                                  request_handler=MotoRequestHandler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": self.endpoint}
        import boto3

        boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                     aws_access_key_id="testing",
                     aws_secret_access_key="testing").create_bucket(Bucket=bucket)

    def count(self) -> int:
        return sum(self.requests.values())

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join()
