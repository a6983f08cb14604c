"""The real Snakefile on the small synthetic source, checked with DuckDB."""

import duckdb
import pytest

from spine import lake
from spine.schemas import CLEAN_COLUMNS
from tests.helpers import run_snakemake, scenario_config

pytestmark = pytest.mark.e2e

WEEKS = ["2025-06-02", "2025-06-09", "2025-06-16"]
TIERS = ["T1", "OTCE"]


def base_config(tmp_path, **extra):
    return scenario_config(**{"lake_root": str(tmp_path / "lake"), "as_of": "2025-08-01",
                              "tiers": TIERS, "synthetic": {"seed": 7, "revisions": []}, **extra})


def test_backfill_three_weeks_two_tiers_then_nothing_to_do(tmp_path):
    config = base_config(tmp_path)
    root = config["lake_root"]
    run_snakemake(tmp_path, config, "backfill", "--config", f"start={WEEKS[0]}", f"end={WEEKS[-1]}")

    con = duckdb.connect()
    con.execute(f"create view clean as select * from read_parquet("
                f"'{root}/clean/finra_otc_weekly/**/*.parquet', hive_partitioning=true)")
    columns = [c[0] for c in con.execute("select * from clean limit 0").description]
    assert sorted(columns) == sorted(CLEAN_COLUMNS)
    counts = con.execute("select tier, cast(week_start as varchar) w, count(*) n, "
                     "count(distinct capture_id) c from clean group by all order by all").fetchall()
    assert [(t, w) for t, w, _, _ in counts] == [(t, w) for t in ("OTCE", "T1") for w in WEEKS]
    for tier, week, n, captures in counts:
        receipt = lake.read_json(lake.path(root, "fetch", tier=tier, week_start=week,
                                           fetch_key="asof-2025-08-01"))
        raw = lake.path(root, "capture", tier=tier, week_start=week,
                        capture_id=receipt["capture_id"])
        # clean holds the capture's detail rows; FINRA's aggregates stay in raw
        detail, everything = con.execute(
            f"select count(*) filter (where summaryTypeCode in ('ATS_W_SMBL_FIRM', "
            f"'OTC_W_SMBL_FIRM')), count(*) from read_parquet('{raw}')").fetchone()
        assert n == detail and everything == receipt["rows"] > detail and captures == 1
    assert con.execute("select typeof(week_start) from clean limit 1").fetchone()[0] == "DATE"
    for calc in ("symbol_week", "venue_share", "symbol_hhi"):
        n = con.execute(f"select count(distinct (tier, week_start)) from read_parquet("
                    f"'{root}/calc/{calc}/**/*.parquet', hive_partitioning=true)").fetchone()[0]
        assert n == 6, calc
    shares = con.execute("select sum(shares) from clean").fetchone()[0]
    calc_shares = con.execute(f"select sum(total_shares) from read_parquet('{root}/calc/symbol_week/"
                          "**/*.parquet', hive_partitioning=true)").fetchone()[0]
    assert calc_shares == pytest.approx(shares)
    raw = con.execute(f"select count(*) from read_parquet('{root}/raw/finra_otc_weekly/**/*.parquet', "
                  "hive_partitioning=true) where summaryTypeCode like '%_W_SMBL_FIRM'").fetchone()[0]
    assert raw == sum(n for *_, n, _ in counts)
    for week in WEEKS:
        html = lake.path(root, "weekly_report", week_start=week).read_text()
        assert "data:image/png;base64" in html and "OTCN" in html
        assert lake.path(root, "executed", step="weekly_report", job=f"week_start={week}").exists()
    assert lake.path(root, "executed", step="fetch", job=lake.job(
        "fetch", tier="T1", week_start=WEEKS[0], fetch_key="asof-2025-08-01")).exists()
    assert lake.path(root, "executed", step="clean", job=f"tier=T1/week_start={WEEKS[0]}").exists()
    assert list(lake.path(root, "executed", step="gate", job="x").parent.glob("*.ipynb"))
    # every layer is a dataset pandas, pyarrow and DuckDB read without glue
    import pandas as pd
    import pyarrow.dataset as pads
    for layer in ("raw/finra_otc_weekly", "clean/finra_otc_weekly", "calc/symbol_week",
                  "calc/symbol_trend", "ledger/finra_otc_weekly"):
        assert len(pd.read_parquet(f"{root}/{layer}")) > 0, layer
        assert pads.dataset(f"{root}/{layer}", partitioning="hive").count_rows() > 0, layer

    again = run_snakemake(tmp_path, config, "backfill", "--config", f"start={WEEKS[0]}",
                          f"end={WEEKS[-1]}", "--dry-run")
    assert "Nothing to be done" in again.stdout + again.stderr


def test_a_week_that_fails_its_gate_is_held_back_and_the_run_fails(tmp_path):
    # An impossible band: the second week's rows must be 1.5x to 2x the first week's.
    config = base_config(tmp_path, tiers=["OTCE"],
                         gates={"band_weeks": 4, "band_min_weeks": 1, "rows_band": [1.5, 2.0]})
    root = config["lake_root"]
    proc = run_snakemake(tmp_path, config, "backfill", "--config", f"start={WEEKS[0]}",
                         f"end={WEEKS[1]}", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "Gate summary: 1 passed, 1 failed" in out
    assert "rows_in_band: measured" in out
    assert "1 capture(s) refused by a gate" in out
    assert lake.path(root, "clean", tier="OTCE", week_start=WEEKS[0]).exists()
    assert not lake.path(root, "clean", tier="OTCE", week_start=WEEKS[1]).exists()
    assert not lake.path(root, "calc", calc="symbol_week", tier="OTCE", week_start=WEEKS[1]).exists()
    # both weekly reports still render; the failing one shows the failed check
    html = lake.path(root, "weekly_report", week_start=WEEKS[1]).read_text()
    assert "Refused by a gate: OTCE" in html and "rows_in_band" in html
    assert "Gate summary: 1 passed, 1 failed" in lake.path(
        root, "gate_summary", run_kind="backfill").read_text()
    assert lake.path(root, "weekly_report", week_start=WEEKS[0]).exists()
    # the run is complete: the verdict is kept, and a dry run has nothing to do
    again = run_snakemake(tmp_path, config, "backfill", "--config", f"start={WEEKS[0]}",
                          f"end={WEEKS[1]}", "-n")
    assert "Nothing to be done" in again.stdout + again.stderr
