import datetime as dt

import pandas as pd
import pytest

from spine.ingest import convert
from spine.ingest import checks, gates
from spine.derive.clean import GateFailed
from spine.ingest.ledger import LakeState
from spine.ingest import decide
from tests.helpers import derive
from spine.ingest import fetch
from spine import lake
from spine.ingest.sources import synthetic

WEEK = dt.date(2025, 6, 2)
NO_TRAILING = pd.DataFrame(columns=["week_start", "rows", "symbols"])


def week(tier="T2"):
    raw = synthetic.weekly_rows(tier, WEEK, "2025-08-01", size="small")
    return convert.to_clean(raw, "cafe")[0]


def evaluate(df, tier="T2", trailing=NO_TRAILING, **cfg):
    return gates.evaluate(df, dataset="finra_otc_weekly", tier=tier, week_start=WEEK,
                          capture_id="cafe", trailing=trailing, cfg=gates.GateConfig(**cfg))


def failed(report):
    return {c.check for c in report.failures}


def test_a_good_week_passes():
    report = evaluate(week())
    assert report.status == checks.PASS, report.table()


def test_negative_shares_fail_the_schema_gate_and_name_the_row():
    df = week()
    df.loc[7, "shares"] = -5.0
    report = evaluate(df)
    assert report.status == checks.FAIL and failed(report) == {"schema"}
    assert "shares greater_than_or_equal_to(0) (e.g. -5.0): rows 7" in report.failures[0].message


def test_a_bad_number_becomes_a_named_null_not_a_dropped_row():
    raw = synthetic.weekly_rows("T2", WEEK, "2025-08-01", size="small",
                                aggregates=False).astype({"totalWeeklyTradeCount": object})
    raw.loc[3, "totalWeeklyTradeCount"] = "12x"
    df, _ = convert.to_clean(raw, "cafe")
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
    assert {c.check: c.status for c in skipped.checks}["rows_in_band"] == checks.SKIP


def test_a_week_whose_only_capture_fails_has_no_clean_and_no_calcs(small_config):
    cfg = dict(small_config, gates={**small_config["gates"], "band_min_weeks": 1,
                                    "rows_band": [5.0, 6.0]})
    prior = WEEK - dt.timedelta(days=7)
    fetch.fetch(cfg, "T2", prior)
    assert decide.gate(cfg, "T2", prior).status == checks.PASS  # no trailing week: band skipped
    receipt = fetch.fetch(cfg, "T2", WEEK)
    report = decide.gate(cfg, "T2", WEEK, receipt["capture_id"])
    assert report.status == checks.FAIL
    root = cfg["lake_root"]
    assert not lake.path(root, "clean", tier="T2", week_start=WEEK).exists()
    verdict = LakeState.read(root).report("T2", WEEK, receipt["capture_id"])
    assert verdict["status"] == "FAIL" and verdict["advanced_to_clean"] is False
    with pytest.raises(GateFailed, match="no accepted version"):
        derive(cfg, "T2", WEEK)


# -- the domain checks (issue 9): each fails on a crafted bad week, passes on a good one -------
def held(df=None):
    return checks.Version.of(week() if df is None else df, "beef")


def run(df, previous=None, as_of="2025-08-01", ats=None, trailing=NO_TRAILING, **cfg):
    from spine.ingest import ats as ats_

    return gates.evaluate(df, dataset="finra_otc_weekly", tier="T2", week_start=WEEK,
                          capture_id="cafe", trailing=trailing, cfg=gates.GateConfig(**cfg),
                          previous=previous, as_of=as_of,
                          ats_mpids=ats_.mpids() if ats is None else ats)


def test_a_good_week_passes_every_domain_check_against_its_previous_version():
    report = run(week(), previous=held())
    assert report.status == checks.PASS, report.table()
    assert {c.check for c in report.checks} == set(gates.CHECKS)


@pytest.mark.parametrize("value, check", [(float("inf"), "values_finite"),
                                          (1e308, "values_finite"), (1.5e12, "values_finite"),
                                          (float("nan"), "schema")])
def test_impossible_share_counts_fail(value, check):
    df = week()
    df.loc[4, "shares"] = value
    report = run(df)
    assert check in failed(report)
    if check == "values_finite":
        message = next(c for c in report.checks if c.check == check).message
        shown = {1e308: "1.00 × 10^308", 1.5e12: "1,500,000,000,000"}.get(value, "inf")
        assert f"shares {shown} (row 4, {df.loc[4, 'symbol']} at" in message
        assert "e+" not in message  # never E-notation


def test_a_week_not_yet_published_fails():
    report = run(week(), as_of="2025-06-30")  # T2 week 2025-06-02 is published 2025-07-07
    assert failed(report) == {"week_published"}
    assert "2025-07-07" in report.failures[0].message


def test_a_tiny_restatement_of_a_full_week_is_held():
    full = week()
    tiny = full.iloc[:4]
    report = run(tiny, previous=held(full))
    assert {"rows_vs_previous", "symbols_vs_previous"} <= failed(report)
    third = full.iloc[: len(full) * 2 // 3]  # a restatement that removes a third of the week
    assert "rows_vs_previous" in failed(run(third, previous=held(full)))


def test_an_older_capture_cannot_replace_a_newer_version():
    newer = week().assign(last_updated=pd.Timestamp("2025-08-15"))
    older = week().assign(last_updated=pd.Timestamp("2025-07-07"))
    report = run(older, previous=held(newer))
    assert failed(report) == {"last_updated_forward"}
    assert "older than the version clean holds" in report.failures[0].message


def test_ats_rows_stored_as_non_ats_fail_on_their_venues():
    df = week()
    ats_rows = df["summary_type"] == "ATS_W_SMBL_FIRM"
    wrong = df.assign(summary_type="OTC_W_SMBL_FIRM")  # every row called non-ATS
    report = run(wrong)
    assert "summary_type_venues" in failed(report)
    assert f"{int(ats_rows.sum())} non-ATS rows carry ATS MPIDs" in report.failures[0].message
    unknown = df.copy()
    unknown.loc[ats_rows.idxmax(), "mpid"] = "ZZZZ"
    assert "summary_type_venues" in failed(run(unknown))


def test_a_holiday_week_is_compared_per_trading_day():
    df = week()  # 2025-06-02 has 5 sessions; trailing weeks as if a 4-day week were normal
    per_day = df["shares"].sum() / 5
    trailing = pd.DataFrame({"week_start": [0, 1, 2], "rows": [len(df)] * 3,
                             "symbols": [df["symbol"].nunique()] * 3,
                             "shares_per_day": [per_day] * 3})
    assert run(df, trailing=trailing).status == checks.PASS
    assert "shares_per_day_in_band" in failed(run(df.assign(shares=df["shares"] * 4),
                                                  trailing=trailing))


def test_severity_warn_lets_a_week_through_and_skip_does_not_run_the_check():
    df = week()
    df.loc[4, "shares"] = float("inf")
    warned = run(df, severity={"values_finite": "WARN"})
    assert warned.status == checks.PASS and [c.check for c in warned.warnings] == ["values_finite"]
    skipped = run(df, severity={"values_finite": "SKIP"})
    check = next(c for c in skipped.checks if c.check == "values_finite")
    assert check.status == checks.SKIP and "SKIP in config" in check.message


def test_per_tier_settings_override_the_defaults():
    cfg = gates.GateConfig.from_config(
        {"rows_band": [0.5, 1.5], "severity": {"rows_in_band": "WARN"},
         "tiers": {"OTCE": {"rows_band": [0.2, 3], "severity": {"symbols_in_band": "SKIP"}}}},
        "OTCE")
    assert cfg.rows_band == (0.2, 3.0)
    assert cfg.severity_of("rows_in_band") == "WARN" and cfg.severity_of("symbols_in_band") == "SKIP"
    assert gates.GateConfig.from_config({"tiers": {"OTCE": {"rows_band": [0, 9]}}}, "T2").rows_band \
        == (0.5, 1.5)


@pytest.mark.parametrize("override, message", [
    ({"gates": {"symbols_band": [1.5, 0.5]}}, r"'gates.symbols_band': \[1.5, 0.5\] is inverted"),
    ({"gates": {"tiers": {"OTCE": {"previous_band": [2, 1]}}}},
     r"'gates.tiers.OTCE.previous_band': \[2, 1\] is inverted"),
    ({"gates": {"severity": {"rows_in_band": "IGNORE"}}}, r"gates.severity.rows_in_band"),
    ({"start": "2011-01-03"}, r"'start': 2011-01-03 is outside the exchange calendar"),
])
def test_bad_gate_settings_are_refused_naming_the_key(override, message):
    from spine import config

    with pytest.raises(config.ConfigError, match=message):
        config.load(**override)
