"""The FINRA Query API client against the loopback emulator: paging, historic data, retries on
429 / 5xx / dropped connections / timeouts, the client-side rate limit and OAuth2."""

import math
import time

import pandas as pd
import pytest

from spine.emulator import Emulator, Faults
from spine.ingest.sources import SourceError, catalog, synthetic
from spine.ingest.sources.finra_api import HISTORIC, LIVE

AS_OF = "2025-08-01"
PART = {"tier": "T2", "week_start": "2025-06-02"}
FAST = {"backoff_seconds": 0.01, "jitter_seconds": 0.0, "requests_per_second": 20,
        "read_timeout": 5, "retries": 4}


@pytest.fixture
def emulator():
    with Emulator(as_of=AS_OF, size="small") as em:
        yield em


def api(em, **settings):
    config = {"as_of": AS_OF, "finra_api": {"base_url": em.base_url, **FAST, **settings}}
    return catalog.get("finra_api", config)


def expected(part=PART):
    return synthetic.weekly_rows(part["tier"], part["week_start"], AS_OF, size="small")


def test_pages_until_record_total_and_matches_the_synthetic_source(emulator):
    capture = api(emulator, page_limit=100).fetch("finra_otc_weekly", PART)
    rows = expected()
    assert len(capture.payload) == math.ceil(len(rows) / 100)
    assert capture.request["record_total"] == len(rows) and capture.request["dataset"] == LIVE
    pd.testing.assert_frame_equal(capture.table, rows)
    # the payload is kept exactly as received, page by page
    assert capture.payload[0][0] == "weeklySummary-offset-0000000.json"
    assert b'"issueSymbolIdentifier"' in capture.payload[0][1]


def test_old_weeks_come_from_the_historic_dataset(emulator):
    emulator.live_weeks = 4
    part = {"tier": "OTCE", "week_start": "2025-01-06"}
    capture = api(emulator).fetch("finra_otc_weekly", part)
    assert capture.request["dataset"] == HISTORIC
    pd.testing.assert_frame_equal(capture.table, expected(part))


def test_no_rows_is_an_empty_capture(emulator, monkeypatch):
    monkeypatch.setattr(emulator, "weekly", lambda tier, week: pd.DataFrame())
    capture = api(emulator).fetch("finra_otc_weekly", PART)
    assert capture.table.empty and capture.payload == []


def test_unpublished_week_is_a_clear_error(emulator):
    with pytest.raises(SourceError, match="no T2 week 2025-09-01.*not be published yet"):
        api(emulator).fetch("finra_otc_weekly", {"tier": "T2", "week_start": "2025-09-01"})


def test_retries_429_honouring_retry_after_500s_and_dropped_connections(emulator):
    emulator.faults = Faults(rate_limit=2, retry_after=1, server_errors=2, drop=1)
    start = time.monotonic()
    capture = api(emulator, page_limit=500, retries=6).fetch("finra_otc_weekly", PART)
    elapsed = time.monotonic() - start
    pd.testing.assert_frame_equal(capture.table, expected())
    assert emulator.counts["429"] == 2 and emulator.counts["500"] == 2
    assert emulator.counts["dropped"] == 1
    assert elapsed >= 1.9, "Retry-After: 1 was honoured twice"


def test_timeouts_are_retried_then_fail_naming_the_request(emulator):
    emulator.faults = Faults(slow_seconds=0.5)
    with pytest.raises(SourceError, match=r"FINRA partitions of weeklySummary.*failed after 1 retries"):
        api(emulator, read_timeout=0.1, retries=1).fetch("finra_otc_weekly", PART)


def test_persistent_server_errors_fail_naming_the_request(emulator):
    emulator.faults = Faults(server_errors=1000)
    with pytest.raises(SourceError, match="weeklySummary.*(500|retries)"):
        api(emulator, retries=2).fetch("finra_otc_weekly", PART)


def test_client_side_rate_limit(emulator):
    start = time.monotonic()
    capture = api(emulator, page_limit=100, requests_per_second=10).fetch("finra_otc_weekly", PART)
    requests = len(capture.payload) + 1  # pages + the partitions request
    assert time.monotonic() - start >= (requests - 1) / 10 * 0.95


def test_oauth2_token_is_fetched_cached_and_refreshed(emulator, monkeypatch):
    emulator.faults = Faults(require_token=True)
    with pytest.raises(SourceError, match="HTTP 401.*FINRA_CLIENT_ID"):
        api(emulator).fetch("finra_otc_weekly", PART)
    monkeypatch.setenv("FINRA_CLIENT_ID", emulator.faults.client_id)
    monkeypatch.setenv("FINRA_CLIENT_SECRET", emulator.faults.client_secret)
    source = api(emulator, page_limit=200, token_url=f"{emulator.base_url}/oauth2/token")
    capture = source.fetch("finra_otc_weekly", PART)
    assert emulator.counts["token"] == 1 and capture.request["auth"] == "oauth2"
    emulator.expire_tokens()  # revoked server-side: a 401, one refresh, and it goes on
    source.fetch("finra_otc_weekly", PART)
    assert emulator.counts["token"] == 2
    assert emulator.faults.client_secret not in repr(capture.request)


def test_wrong_credentials_are_refused_without_showing_them(emulator, monkeypatch):
    emulator.faults = Faults(require_token=True)
    monkeypatch.setenv("FINRA_CLIENT_ID", "someone")
    monkeypatch.setenv("FINRA_CLIENT_SECRET", "wrong-secret-value")
    with pytest.raises(SourceError) as err:
        api(emulator, token_url=f"{emulator.base_url}/oauth2/token").fetch("finra_otc_weekly", PART)
    assert "wrong-secret-value" not in str(err.value) and "HTTP 401" in str(err.value)


def test_a_bad_number_names_the_page_row_and_field(emulator, monkeypatch):
    rows = expected().astype({"totalWeeklyShareQuantity": object})
    rows.loc[5, "totalWeeklyShareQuantity"] = "12,5"
    monkeypatch.setattr(emulator, "weekly", lambda tier, week: rows)
    with pytest.raises(SourceError, match=r"offset 0: row 5: field totalWeeklyShareQuantity: '12,5'"):
        api(emulator).fetch("finra_otc_weekly", PART)


# -- a capture is whole or not at all (issue 8) -----------------------------------------------
@pytest.mark.parametrize("fault, counted", [("short_pages", "short"), ("cut_bodies", "cut"),
                                           ("bad_json", "bad_json")])
def test_a_204_a_cut_off_body_or_half_a_json_page_is_asked_for_again(emulator, fault, counted):
    """A 204 mid-paging, a body cut off mid-transfer, half a JSON document: asked for again,
    and the capture is whole."""
    emulator.faults = Faults(**{fault: 2})
    capture = api(emulator, page_limit=100).fetch("finra_otc_weekly", PART)
    pd.testing.assert_frame_equal(capture.table, expected())
    assert emulator.counts[counted] == 2


def test_a_capture_short_of_record_total_is_refused_naming_the_url(emulator):
    emulator.faults = Faults(short_pages=99)
    with pytest.raises(SourceError, match=r"offset 100.*/data/group/otcMarket/name/weeklySummary"
                       r".*no rows at offset 100 although Record-Total said \d+.*nothing was stored"):
        api(emulator, page_limit=100, retries=2).fetch("finra_otc_weekly", PART)


def test_a_body_cut_off_every_time_is_refused_naming_the_url(emulator):
    emulator.faults = Faults(cut_bodies=99)
    with pytest.raises(SourceError, match=r"POST http://127\.0\.0\.1:\d+/data/.*cut off 3 times"):
        api(emulator, page_limit=100, retries=2).fetch("finra_otc_weekly", PART)


def test_half_a_json_page_every_time_is_refused(emulator):
    emulator.faults = Faults(bad_json=99)
    with pytest.raises(SourceError, match=r"POST http://127\.0\.0\.1:\d+/data/.*not JSON.*3 times"):
        api(emulator, page_limit=100, retries=2).fetch("finra_otc_weekly", PART)


def test_html_from_the_partitions_endpoint_names_the_url(emulator):
    emulator.faults = Faults(html_partitions=1)
    with pytest.raises(SourceError, match=r"FINRA partitions of weeklySummary: GET http://127"
                       r".*/partitions/group/otcMarket/name/weeklySummary: the response is not "
                       r"JSON.*<html>"):
        api(emulator).fetch("finra_otc_weekly", PART)
