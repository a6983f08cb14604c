"""FINRA OTC Transparency publication calendar.

A week is identified by its Monday (`week_start`), even when that Monday is a market holiday.
T1 is first published on week_start + 21 days, T2 and OTCE on week_start + 35 days; when that
day is not an XNYS session (a market holiday) publication moves to the next session.
Holidays come from `exchange_calendars` (XNYS), never from a hand-written list.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo

import exchange_calendars as xc
import pandas as pd

from spine.vocabulary import TIERS

TIER_DESCRIPTIONS = {"T1": "NMS Tier 1", "T2": "NMS Tier 2", "OTCE": "OTC"}
PUBLICATION_LAG_DAYS = {"T1": 21, "T2": 35, "OTCE": 35}
EASTERN = ZoneInfo("America/New_York")

# exchange_calendars needs explicit bounds; FINRA OTC transparency data starts in 2014.
_CAL_START = "2012-01-01"


@lru_cache(maxsize=1)
def xnys():
    """The XNYS calendar, made once (it takes exchange_calendars a moment)."""
    return xc.get_calendar("XNYS", start=_CAL_START)


def calendar_range() -> tuple[dt.date, dt.date]:
    """The days the calendar knows, less a margin for the weeks around them (a week starts
    before its sessions; publication is up to 5 weeks later)."""
    x = xnys()
    return (x.first_session.date() + dt.timedelta(days=7),
            x.last_session.date() - dt.timedelta(days=42))


def to_date(value: str | dt.date | dt.datetime | pd.Timestamp, name: str = "date") -> dt.date:
    """Parse an ISO date (or date-like) and say which value was wrong if it is not a date."""
    if isinstance(value, pd.Timestamp):
        return value.date()
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise ValueError(f"{name}={value!r} is not a date; write it as YYYY-MM-DD") from None


def check_tier(tier: str) -> str:
    if tier not in TIERS:
        raise ValueError(f"tier={tier!r} is not a FINRA tier; use one of {', '.join(TIERS)}")
    return tier


def week_start_of(day: dt.date) -> dt.date:
    """The Monday of the week that contains `day`."""
    day = to_date(day)
    return day - dt.timedelta(days=day.weekday())


def check_week_start(week_start: dt.date | str) -> dt.date:
    week_start = to_date(week_start, "week_start")
    if week_start.weekday() != 0:
        raise ValueError(
            f"week_start={week_start} is a {week_start:%A}; FINRA weeks start on a Monday "
            f"(did you mean {week_start_of(week_start)}?)"
        )
    return week_start


def next_session_on_or_after(day: dt.date) -> dt.date:
    cal = xnys()
    ts = pd.Timestamp(day)
    if cal.is_session(ts):
        return day
    return cal.date_to_session(ts, direction="next").date()


def publication_date(tier: str, week_start: dt.date) -> dt.date:
    """First publication date of a (tier, week)."""
    check_tier(tier)
    week_start = check_week_start(week_start)
    nominal = week_start + dt.timedelta(days=PUBLICATION_LAG_DAYS[tier])
    return next_session_on_or_after(nominal)


def is_published(tier: str, week_start: dt.date, as_of: dt.date) -> bool:
    return publication_date(tier, week_start) <= to_date(as_of, "as_of")


def latest_published_week(tier: str, as_of: dt.date) -> dt.date:
    as_of = to_date(as_of, "as_of")
    week = week_start_of(as_of - dt.timedelta(days=PUBLICATION_LAG_DAYS[check_tier(tier)]))
    # A holiday can push publication past as_of: step back until the week is out.
    while not is_published(tier, week, as_of):
        week -= dt.timedelta(days=7)
    return week


def published_weeks(tier: str, as_of: dt.date, start: dt.date, end: dt.date | None = None
                    ) -> list[dt.date]:
    """Weeks of `tier` published by `as_of` whose week_start lies in [start, end], oldest first."""
    latest = latest_published_week(tier, as_of)
    last = latest if end is None else min(latest, week_start_of(to_date(end, "end")))
    first = to_date(start, "start")
    week = week_start_of(first)
    if week < first:
        week += dt.timedelta(days=7)
    weeks = []
    while week <= last:
        weeks.append(week)
        week += dt.timedelta(days=7)
    return weeks


def recent_weeks(tier: str, as_of: dt.date, lookback_weeks: int) -> list[dt.date]:
    """Weeks of `tier` first published in the `lookback_weeks` weeks up to `as_of`, oldest first."""
    as_of = to_date(as_of, "as_of")
    latest = latest_published_week(tier, as_of)
    weeks = [latest - dt.timedelta(days=7 * i) for i in range(lookback_weeks + 1)]
    horizon = as_of - dt.timedelta(days=7 * lookback_weeks)
    return sorted(w for w in weeks if publication_date(tier, w) > horizon)


def trading_days(week_start: dt.date) -> int:
    """XNYS sessions in the Monday-to-Friday week starting at `week_start`."""
    return len(sessions_in_week(week_start))


def sessions_in_week(week_start: dt.date | str) -> list[dt.date]:
    """The XNYS trading days of the week starting at `week_start`."""
    week_start = check_week_start(week_start)
    sessions = xnys().sessions_in_range(
        pd.Timestamp(week_start), pd.Timestamp(week_start + dt.timedelta(days=4)))
    return [s.date() for s in sessions]


def today_eastern() -> dt.date:
    return dt.datetime.now(EASTERN).date()
