import datetime as dt

import pandas as pd
import pytest

from spine import clean, gates, pipeline
from spine.sources import synthetic

WEEK = dt.date(2025, 6, 2)
NO_TRAILING = pd.DataFrame(columns=["week_start", "rows", "symbols"])


def week(tier="T2"):
    raw = synthetic.weekly_rows(tier, WEEK, "2025-08-01", size="small")
    return clean.to_clean(raw, "cafe")[0]


def evaluate(df, tier="T2", trailing=NO_TRAILING, **cfg):
    return gates.evaluate(df, dataset="finra_otc_weekly", tier=tier, week_start=WEEK,
                          capture_id="cafe", trailing=trailing, cfg=gates.GateConfig(**cfg))


def failed(report):
    return {c.check for c in report.failures}


def test_a_good_week_passes():
    report = evaluate(week())
    assert report.status == gates.PASS, report.table()


def test_negative_shares_fail_the_schema_gate_and_name_the_row():
    df = week()
    df.loc[7, "shares"] = -5.0
    report = evaluate(df)
    assert report.status == gates.FAIL and failed(report) == {"schema"}
    assert "shares greater_than_or_equal_to(0) (e.g. -5.0): rows 7" in report.failures[0].message


def test_a_bad_number_becomes_a_named_null_not_a_dropped_row():
    raw = synthetic.weekly_rows("T2", WEEK, "2025-08-01", size="small").astype({"totalWeeklyTradeCount": object})
    raw.loc[3, "totalWeeklyTradeCount"] = "12x"
    df, _ = clean.to_clean(raw, "cafe")
    assert len(df) == len(raw)
    report = evaluate(df)
    assert "schema" in failed(report) and "trades" in report.failures[0].message


def test_wrong_tier_or_week_fails():
    df = week()
    df.loc[0, "tier"] = "T1"
    assert "tier_matches_request" in failed(evaluate(df))
    df = week()
    df.loc[0, "week_start"] = pd.Timestamp("2025-06-09")
    report = evaluate(df)
    assert "week_start_matches_request" in failed(report)


def test_duplicate_natural_key_fails():
    df = week()
    df = pd.concat([df, df.iloc[[0]]], ignore_index=True)
    assert "unique_natural_key" in failed(evaluate(df))


def test_empty_week_fails():
    assert "has_rows" in failed(evaluate(week().iloc[0:0]))


def test_row_count_band_against_trailing_weeks():
    df = week()
    trailing = pd.DataFrame({"week_start": [WEEK] * 4, "rows": [len(df) * 3] * 4,
                             "symbols": [df["symbol"].nunique()] * 4})
    report = evaluate(df, trailing=trailing)
    assert failed(report) == {"rows_in_band"}
    check = report.failures[0]
    assert check.measured == len(df) and check.limit == [len(df) * 1.5, len(df) * 4.5]
    # with too few trailing weeks the band is skipped, not passed
    skipped = evaluate(df, trailing=trailing.head(1))
    assert {c.check: c.status for c in skipped.checks}["rows_in_band"] == gates.SKIP


def test_a_week_whose_only_capture_fails_has_no_clean_and_no_calcs(small_config):
    cfg = dict(small_config, gates={**small_config["gates"], "band_min_weeks": 1,
                                    "rows_band": [5.0, 6.0]})
    prior = WEEK - dt.timedelta(days=7)
    pipeline.fetch(cfg, "T2", prior)
    assert pipeline.gate(cfg, "T2", prior).status == gates.PASS  # no trailing week: band skipped
    receipt = pipeline.fetch(cfg, "T2", WEEK)
    report = pipeline.gate(cfg, "T2", WEEK, receipt["capture_id"])
    assert report.status == gates.FAIL
    root = cfg["lake_root"]
    assert not pipeline.lake.path(root, "clean", tier="T2", week_start=WEEK).exists()
    verdict = pipeline.verdict(root, "T2", WEEK, receipt["capture_id"])
    assert verdict["status"] == "FAIL" and verdict["advanced_to_clean"] is False
    with pytest.raises(pipeline.GateFailed, match="no accepted version"):
        pipeline.calc(cfg, "T2", WEEK)
