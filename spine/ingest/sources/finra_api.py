"""FINRA Query API source (`source: finra_api`): weeklySummary / weeklySummaryHistoric.

One capture per (tier, week): every page of a POST query filtered on weekStartDate and
tierIdentifier, `limit` 5000 and `offset` until `Record-Total` rows have arrived (a page may hold
fewer rows than asked when it reaches the 3 MB cap; the offset advances by what arrived).
HTTP 204 or an empty body means no rows. The partitions endpoint says whether a week is in the
live dataset or only in weeklySummaryHistoric. Older weeks are in neither: `serves` says which
weeks FINRA keeps (`finra_api.history_weeks` back from the latest published week of the tier).

Credentials are optional: with FINRA_CLIENT_ID and FINRA_CLIENT_SECRET in the environment the
client gets an OAuth2 client-credentials token, caches it and refreshes it on expiry or on a
401. The secret and the token are only ever in request headers: never in a capture, a receipt,
a log line or an error message.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time

import pandas as pd

from spine import calendar as cal
from spine.ingest.sources import HISTORY_RUNBOOK, WEEKLY, Capture, Source, SourceError
from spine.ingest.sources.http import Client, HttpSettings
from spine.schemas import ParseError, normalise_weekly
from spine.vocabulary import SUMMARY_TYPES

LIVE, HISTORIC = "weeklySummary", "weeklySummaryHistoric"
PAGE_LIMIT = 5000  # FINRA's maximum
DEFAULT_BASE_URL = "https://api.finra.org"
DEFAULT_TOKEN_URL = "https://ews.fip.finra.org/fip/rest/ews/oauth2/access_token"
# weeklySummaryHistoric holds about 4 years (weeklySummary about 12 months); older weeks exist
# only as download files (FINRA technical notice, 2021)
HISTORY_WEEKS = 208


class OAuth:
    """OAuth2 client credentials: POST with HTTP Basic auth, cache the bearer token."""

    def __init__(self, client: Client, token_url: str, client_id: str, client_secret: str):
        self.client, self.token_url = client, token_url
        self._id, self._secret = client_id, client_secret
        self._token: str | None = None
        self._expires = 0.0

    def header(self) -> dict[str, str]:
        if self._token is None or time.monotonic() >= self._expires:
            self._refresh()
        return {"Authorization": f"Bearer {self._token}"}

    def invalidate(self) -> None:
        self._token = None

    def _refresh(self) -> None:
        response = self.client.request(
            "POST", self.token_url, describe="FINRA OAuth2 token request",
            auth=(self._id, self._secret), data={"grant_type": "client_credentials"},
            params={"grant_type": "client_credentials"})
        if response.status_code != 200:
            raise SourceError(
                f"FINRA OAuth2 token request: HTTP {response.status_code} from {self.token_url}. "
                "Check FINRA_CLIENT_ID / FINRA_CLIENT_SECRET (the values are not shown).")
        body = response.json()
        self._token = body["access_token"]
        # Refresh a little early so a token never expires mid-request.
        self._expires = time.monotonic() + max(1.0, float(body.get("expires_in", 1800)) - 30)


def credentials_from_env() -> tuple[str, str] | None:
    client_id, secret = os.environ.get("FINRA_CLIENT_ID"), os.environ.get("FINRA_CLIENT_SECRET")
    if bool(client_id) != bool(secret):
        raise SourceError("set both FINRA_CLIENT_ID and FINRA_CLIENT_SECRET, or neither "
                          "(the market transparency datasets also answer without credentials)")
    return (client_id, secret) if client_id else None


class FinraApiSource(Source):
    name = "finra_api"
    datasets = {WEEKLY.name: WEEKLY}

    def __init__(self, config: dict):
        super().__init__(config)
        cfg = config.get("finra_api") or {}
        self.base_url = str(cfg.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
        self.page_limit = int(cfg.get("page_limit") or PAGE_LIMIT)
        self.client = Client(HttpSettings.from_config(cfg))
        creds = credentials_from_env()
        self.auth = (OAuth(self.client, cfg.get("token_url") or DEFAULT_TOKEN_URL, *creds)
                     if creds else None)
        self._partitions: dict[str, set[tuple[str, str]]] = {}

    def serves(self, tier: str, week_start, as_of) -> str | None:
        """The weeks FINRA's datasets hold: the `finra_api.history_weeks` weeks up to the latest
        week of the tier published by `as_of` (and any later one, once published)."""
        weeks = int((self.config.get("finra_api") or {}).get("history_weeks") or HISTORY_WEEKS)
        oldest = cal.latest_published_week(tier, as_of) - dt.timedelta(weeks=weeks - 1)
        if cal.check_week_start(week_start) >= oldest:
            return None
        return (f"{self.name}: older than FINRA's {HISTORIC} (~4 years; it holds {tier} from "
                f"{oldest}, finra_api.history_weeks: {weeks}): download files hold it "
                f"({HISTORY_RUNBOOK})")

    def _url(self, kind: str, name: str) -> str:
        return f"{self.base_url}/{kind}/group/otcMarket/name/{name}"

    def _send(self, method: str, url: str, describe: str, **kwargs):
        headers = {"Accept": "application/json", **kwargs.pop("headers", {})}
        for attempt in (1, 2):
            auth = self.auth.header() if self.auth else {}
            response = self.client.request(method, url, describe=describe,
                                           headers={**headers, **auth}, **kwargs)
            if response.status_code == 401 and self.auth and attempt == 1:
                self.auth.invalidate()  # expired or revoked token: fetch a new one once
                continue
            break
        if response.status_code == 401:
            hint = ("the credentials were refused" if self.auth else
                    "this endpoint needs credentials: set FINRA_CLIENT_ID and FINRA_CLIENT_SECRET")
            raise SourceError(f"{describe}: HTTP 401 from {url}; {hint}")
        if response.status_code >= 400:
            raise SourceError(f"{describe}: HTTP {response.status_code} from {url}: "
                              f"{response.text[:300]!r}")
        return response

    def _page(self, url: str, describe: str, body: dict, due: bool) -> tuple:
        """One page: (response, records), or (response, None) for HTTP 204 / an empty page.
        A body that is not a JSON list (cut off, an HTML error page) is asked for again, then
        refused naming the URL; a page that is empty while rows are `due` (Record-Total says
        more) is asked for again too: a 204 mid-paging is how a short capture starts."""
        tries = self.client.settings.retries + 1
        for attempt in range(tries):
            response = self._send("POST", url, describe, json=body)
            raw = response.content
            if response.status_code == 204 or not raw.strip():
                records, problem = None, None
            else:
                try:
                    records = json.loads(raw)
                    problem = None if isinstance(records, list) else "not a JSON list of rows"
                except (json.JSONDecodeError, UnicodeDecodeError) as err:
                    records, problem = None, f"not JSON ({err}; {len(raw)} bytes)"
            empty_but_due = due and records is None and problem is None
            if (problem is None and not empty_but_due) or attempt == tries - 1:
                break
            time.sleep(self.client.backoff(attempt))
        if problem:
            raise SourceError(f"{describe}: POST {url}: the response is {problem}, {tries} "
                              "times. Nothing was stored; rerun later.")
        return response, (records or None)

    def _json(self, url: str, describe: str):
        response = self._send("GET", url, describe)
        try:
            return response.json()
        except ValueError as err:
            raise SourceError(f"{describe}: GET {url}: the response is not JSON ({err}); "
                              f"it starts {response.text[:80]!r}. Rerun later.") from None

    def available(self, name: str) -> set[tuple[str, str]]:
        """(tier, week_start) partitions the dataset `name` holds, from the partitions endpoint."""
        if name not in self._partitions:
            url = self._url("partitions", name)
            describe = f"FINRA partitions of {name}"
            body = self._json(url, describe)
            try:
                fields = body.get("partitionFields", ["tierIdentifier", "weekStartDate"])
                tier_i, week_i = fields.index("tierIdentifier"), fields.index("weekStartDate")
                self._partitions[name] = {(p["partitions"][tier_i], p["partitions"][week_i])
                                          for p in body.get("availablePartitions", [])}
            except (AttributeError, KeyError, IndexError, TypeError, ValueError) as err:
                raise SourceError(f"{describe}: GET {url}: unexpected layout "
                                  f"({type(err).__name__}: {err}). Rerun later.") from None
        return self._partitions[name]

    def fetch(self, dataset: str, partition: dict[str, str]) -> Capture:
        self.dataset(dataset)
        tier, week = partition["tier"], partition["week_start"]
        if (tier, week) in self.available(LIVE):
            name = LIVE
        elif (tier, week) in self.available(HISTORIC):
            name = HISTORIC
        else:
            raise SourceError(
                f"FINRA has no {tier} week {week} in {LIVE} or {HISTORIC} (partitions endpoint). "
                "It may not be published yet: check the publication calendar and as_of.")
        url = self._url("data", name)
        filters = [
            {"compareType": "EQUAL", "fieldName": "weekStartDate", "fieldValue": week},
            {"compareType": "EQUAL", "fieldName": "tierIdentifier", "fieldValue": tier},
        ]
        query: dict = {"compareFilters": filters, "limit": self.page_limit}
        if name == LIVE:  # the historic dataset filters only by week and tier
            # the detail rows and FINRA's aggregates of them, which the gates reconcile the
            # detail with (spine.ingest.reconcile); both are one capture, so a revision of either is one
            query["domainFilters"] = [{"fieldName": "summaryTypeCode",
                                       "values": list(SUMMARY_TYPES)}]
        # `counted`: FINRA sent Record-Total, so the capture must hold exactly that many rows
        pages, frames, offset, total, counted = [], [], 0, None, False
        while total is None or offset < total:
            describe = f"FINRA {name} {tier} week {week} offset {offset}"
            response, records = self._page(url, describe, {**query, "offset": offset},
                                           due=counted)
            if records is None:  # HTTP 204 or an empty page: no more rows
                if counted and offset < total:
                    raise SourceError(
                        f"{describe}: POST {url} returned no rows at offset {offset} although "
                        f"Record-Total said {total} ({self.client.settings.retries + 1} tries). "
                        "The capture would be partial, so nothing was stored; rerun later.")
                break
            pages.append((f"{name}-offset-{offset:07d}.json", response.content))
            page = pd.DataFrame.from_records(records)
            try:
                frames.append(normalise_weekly(page))
            except ParseError as err:
                raise SourceError(f"{describe}: row {offset + err.row}: {err}") from None
            header = response.headers.get("Record-Total")
            if header is not None and not header.strip().isdigit():
                raise SourceError(f"{describe}: POST {url}: Record-Total {header!r} is not a "
                                  "row count; nothing was stored.")
            counted = header is not None
            offset += len(records)
            total = int(header) if counted else offset + 1  # without it: until an empty page
        if counted and offset > total:
            raise SourceError(
                f"FINRA {name} {tier} week {week}: POST {url} sent {offset} rows although "
                f"Record-Total said {total}; nothing was stored. Rerun later.")
        table = (pd.concat(frames, ignore_index=True) if frames
                 else normalise_weekly(pd.DataFrame(columns=[])))
        request = {"source": self.name, "url": url, "dataset": name, "tier": tier,
                   "week_start": week, "page_limit": self.page_limit, "pages": len(pages),
                   "record_total": offset, "auth": "oauth2" if self.auth else "none"}
        return Capture(dataset, dict(partition), table, pages, request)
