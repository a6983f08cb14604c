import os

import duckdb
import pandas as pd
import pytest

from spine import lake


def frame(n, value):
    return pd.DataFrame({"symbol": [f"S{i}" for i in range(n)], "shares": [value] * n,
                         "last_updated": pd.Timestamp("2025-06-23")})


def test_round_trip_with_hive_keys(tmp_path):
    for tier in ("T1", "T2"):
        lake.write_partition(frame(3, 1.5), tmp_path, "clean", "ds",
                             {"tier": tier, "week_start": "2025-06-02"})
    df = lake.read_dataset(tmp_path, "clean", "ds")
    assert sorted(df["tier"].unique()) == ["T1", "T2"] and len(df) == 6
    assert df["week_start"].dt.strftime("%Y-%m-%d").unique().tolist() == ["2025-06-02"]
    # partition keys live in the path only, and DuckDB reads the same table
    con = duckdb.connect()
    got = con.execute(f"select tier, week_start, count(*) n from read_parquet('{tmp_path}/clean/ds/**/*.parquet', "
                  "hive_partitioning=true) group by all order by tier").fetchall()
    assert [(t, str(w), n) for t, w, n in got] == [("T1", "2025-06-02", 3), ("T2", "2025-06-02", 3)]
    part = lake.partition_dir(tmp_path, "clean", "ds", tier="T1", week_start="2025-06-02")
    assert "tier" not in pd.read_parquet(part / lake.PART_FILE).columns


def test_a_failed_write_leaves_the_previous_file_and_no_temp(tmp_path, monkeypatch):
    keys = {"tier": "T1", "week_start": "2025-06-02"}
    path = lake.write_partition(frame(3, 1.0), tmp_path, "clean", "ds", keys)
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        lake.write_partition(frame(5, 2.0), tmp_path, "clean", "ds", keys)
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_raw_capture_is_never_overwritten(tmp_path):
    keys = {"tier": "T1", "week_start": "2025-06-02"}
    path = lake.write_partition(frame(3, 1.0), tmp_path, "raw", "ds", keys,
                                filename="abc.parquet", overwrite=False)
    before = path.read_bytes()
    lake.write_partition(frame(9, 9.0), tmp_path, "raw", "ds", keys,
                         filename="abc.parquet", overwrite=False)
    assert path.read_bytes() == before


def test_content_hash_ignores_row_order_but_not_values():
    df = frame(5, 1.0)
    assert lake.content_hash(df) == lake.content_hash(df.iloc[::-1])
    changed = df.copy()
    changed.loc[2, "shares"] = 1.0001
    assert lake.content_hash(df) != lake.content_hash(changed)
