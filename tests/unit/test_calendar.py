import datetime as dt

import pytest

from spine import calendar as cal

D = dt.date.fromisoformat


def test_publication_lags_by_tier():
    week = D("2025-06-02")
    assert cal.publication_date("T1", week) == D("2025-06-23")
    assert cal.publication_date("T2", week) == D("2025-07-07")
    assert cal.publication_date("OTCE", week) == D("2025-07-07")


def test_publication_on_a_holiday_monday_moves_to_next_session():
    # 2025-05-05 + 21 days = Memorial Day 2025-05-26
    assert cal.publication_date("T1", D("2025-05-05")) == D("2025-05-27")
    # 2025-07-28 + 35 days = Labor Day 2025-09-01
    assert cal.publication_date("T2", D("2025-07-28")) == D("2025-09-02")
    # 2024-12-09 + 21 days is 2024-12-30, a normal Monday at a year end
    assert cal.publication_date("T1", D("2024-12-09")) == D("2024-12-30")
    # 2017-12-11 + 21 days = New Year's Day 2018-01-01, a Monday: next year's first session
    assert cal.publication_date("T1", D("2017-12-11")) == D("2018-01-02")
    # 2017-11-27 + 35 days = 2018-01-01 as well, for T2 and OTCE
    assert cal.publication_date("OTCE", D("2017-11-27")) == D("2018-01-02")


def test_trading_days_in_holiday_weeks_and_year_ends():
    assert cal.trading_days(D("2025-06-02")) == 5
    assert cal.trading_days(D("2025-05-26")) == 4  # Memorial Day Monday
    assert cal.trading_days(D("2025-04-14")) == 4  # Good Friday
    assert cal.trading_days(D("2025-06-16")) == 4  # Juneteenth Thursday
    assert cal.trading_days(D("2024-11-25")) == 4  # Thanksgiving (the Friday half day counts)
    assert cal.trading_days(D("2024-12-30")) == 4  # New Year's Day, week spans two years
    assert cal.trading_days(D("2025-12-22")) == 4  # Christmas Thursday


def test_week_start_must_be_a_monday():
    with pytest.raises(ValueError, match="Monday.*2025-06-02"):
        cal.check_week_start(D("2025-06-04"))
    assert cal.week_start_of(D("2025-01-01")) == D("2024-12-30")


def test_published_as_of():
    assert cal.latest_published_week("T1", D("2025-06-23")) == D("2025-06-02")
    assert cal.latest_published_week("T1", D("2025-06-22")) == D("2025-05-26")
    # T1 week 2025-05-05 is published on Tuesday 2025-05-27, not on the Memorial Day Monday
    assert cal.latest_published_week("T1", D("2025-05-26")) == D("2025-04-28")
    assert cal.latest_published_week("T1", D("2025-05-27")) == D("2025-05-05")
    assert cal.is_published("T2", D("2025-06-02"), D("2025-07-07"))
    assert not cal.is_published("T2", D("2025-06-02"), D("2025-07-06"))


def test_published_weeks_in_range_and_recent_weeks():
    weeks = cal.published_weeks("T2", D("2025-08-01"), D("2025-06-01"), D("2025-06-30"))
    assert weeks == [D("2025-06-02"), D("2025-06-09"), D("2025-06-16"), D("2025-06-23")]
    # end is capped at the latest published week
    assert cal.published_weeks("T2", D("2025-07-10"), D("2025-06-01"), D("2025-12-31"))[-1] == D("2025-06-02")
    recent = cal.recent_weeks("T1", D("2025-08-01"), 3)
    assert recent == [D("2025-06-23"), D("2025-06-30"), D("2025-07-07")]
    assert all(cal.publication_date("T1", w) <= D("2025-08-01") for w in recent)


def test_bad_inputs_name_the_value():
    with pytest.raises(ValueError, match="tier='T3'"):
        cal.publication_date("T3", D("2025-06-02"))
    with pytest.raises(ValueError, match="as_of='2025-13-01' is not a date"):
        cal.to_date("2025-13-01", "as_of")
