"""A local FINRA emulator on loopback, for tests and demos.

Serves the embedded synthetic data with the real services' semantics:
- Query API: `POST /data/group/otcMarket/name/weeklySummary` and `.../weeklySummaryHistoric`
  serve each week's detail rows and FINRA's aggregates of them (`ATS_W_SMBL`, `OTC_W_SMBL`,
  `ATS_W_FIRM`, `OTC_W_FIRM`, from the synthetic source): compareFilters on weekStartDate and
  tierIdentifier, domainFilters on summaryTypeCode in the live dataset only (the historic one
  filters only by week and tier, so it returns every type), `limit` up to 5000, `offset`;
  JSON (`Accept: application/json`) or delimited text, headers `Record-Total`,
  `Record-Offset`, `Record-Limit`, HTTP 204 when no rows, pages cut at the 3 MB cap, large
  notionals in E-notation; `GET /partitions/...` and `GET /metadata/...`. The live
  dataset keeps the most recent `live_weeks` weeks; older weeks are only in the historic one.
- OAuth2: `POST /oauth2/token` (HTTP Basic client credentials) issuing expiring bearer tokens.
- Reg SHO: `GET /regsho/CNMSshvolYYYYMMDD.txt` (header, rows, trailer) for trading days.
- Fault injection (`Faults`): 429 with Retry-After, 500s, slow responses, dropped connections,
  and a required bearer token.
- A disagreement between FINRA's aggregates and its detail rows (`Faults.reconcile`: a
  `"T2:2025-06-02"` key, tier and week_start, to one of the names of
  `spine.emulator_faults.RECONCILE_FAULTS`).

    spine emulator --port 8080 --as-of 2025-08-01      (then source=finra_api with
    'finra_api={"base_url": "http://127.0.0.1:8080"}')
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pandas as pd

from spine import calendar as cal
from spine.emulator_faults import RECONCILE_FAULTS
from spine.ingest.sources import regsho
from spine.ingest.sources.synthetic import parse_revisions, regsho_rows, weekly_rows
from spine.schemas import API_FIELDS
from spine.vocabulary import TIERS

PAGE_CAP_BYTES = 3 * 1024 * 1024
MAX_LIMIT = 5000


@dataclass
class Faults:
    """What to break, and how often. Counters count down as faults are served."""

    rate_limit: int = 0  # answer this many data requests with 429 and Retry-After
    retry_after: int = 1
    server_errors: int = 0  # answer this many data requests with HTTP 500
    drop: int = 0  # close this many data connections without answering
    slow_seconds: float = 0.0  # delay every data response
    short_pages: int = 0  # answer this many data requests past offset 0 with 204 (no rows)
    cut_bodies: int = 0  # send this many data pages cut off mid-body, then close the connection
    bad_json: int = 0  # send this many data pages as half a JSON document (Content-Length right)
    html_partitions: int = 0  # answer this many partitions requests with an HTML error page
    require_token: bool = False  # data requests need a valid bearer token
    client_id: str = "spine-test"
    client_secret: str = "s3cret-never-logged"
    token_ttl: float = 1800.0
    # "TIER:WEEK_START" -> a disagreement between aggregates and detail (RECONCILE_FAULTS)
    reconcile: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        for key, fault in self.reconcile.items():
            tier, _, week = str(key).partition(":")
            cal.check_tier(tier)
            cal.check_week_start(week)
            if fault not in RECONCILE_FAULTS:
                raise ValueError(f"Faults.reconcile[{key!r}] = {fault!r} is not a fault; use "
                                 f"one of {', '.join(RECONCILE_FAULTS)}")


@dataclass
class Emulator:
    as_of: str
    seed: int = 7
    size: str = "small"
    revisions: list[dict] = field(default_factory=list)
    restate: dict | None = None
    live_weeks: int = 26
    faults: Faults = field(default_factory=Faults)
    host: str = "127.0.0.1"
    port: int = 0

    def __post_init__(self):
        self.counts: dict[str, int] = {}
        self._tokens: dict[str, float] = {}
        self._cache: dict[tuple, pd.DataFrame] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- data ------------------------------------------------------------------------------
    def weekly(self, tier: str, week_start: str) -> pd.DataFrame:
        """The week as served: detail and aggregates, and the reconcile fault set for it."""
        fault = self.faults.reconcile.get(f"{tier}:{week_start}")
        key = (tier, week_start, fault)
        with self._lock:
            if key not in self._cache:
                try:
                    rows = weekly_rows(
                        tier, week_start, self.as_of, seed=self.seed, size=self.size,
                        revisions=parse_revisions(self.revisions), restate=self.restate)
                except (LookupError, ValueError):
                    rows = pd.DataFrame()
                self._cache[key] = RECONCILE_FAULTS[fault](rows) if fault and len(rows) else rows
            return self._cache[key]

    def partitions(self, historic: bool) -> list[tuple[str, str]]:
        out = []
        for tier in TIERS:
            latest = cal.latest_published_week(tier, self.as_of)
            for i in range(0, 3 * 52):
                week = latest - dt.timedelta(days=7 * i)
                if (i >= self.live_weeks) == historic:
                    out.append((tier, week.isoformat()))
        return out

    def is_live(self, tier: str, week_start: str) -> bool:
        return (tier, week_start) in set(self.partitions(historic=False))

    # -- auth ------------------------------------------------------------------------------
    def issue_token(self) -> dict:
        with self._lock:
            token = f"tok-{len(self._tokens) + 1}-{int(time.time() * 1000) % 100000}"
            self._tokens[token] = time.monotonic() + self.faults.token_ttl
        return {"access_token": token, "token_type": "Bearer",
                "expires_in": int(self.faults.token_ttl)}

    def token_ok(self, header: str | None) -> bool:
        if not header or not header.startswith("Bearer "):
            return False
        expiry = self._tokens.get(header.removeprefix("Bearer "))
        return expiry is not None and time.monotonic() < expiry

    def expire_tokens(self) -> None:
        with self._lock:
            self._tokens = {t: 0.0 for t in self._tokens}

    # -- server ----------------------------------------------------------------------------
    def count(self, kind: str) -> None:
        with self._lock:
            self.counts[kind] = self.counts.get(kind, 0) + 1

    def take_fault(self, name: str) -> bool:
        with self._lock:
            left = getattr(self.faults, name)
            if left > 0:
                setattr(self.faults, name, left - 1)
                return True
            return False

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() the emulator first"
        return f"http://{self.host}:{self._server.server_address[1]}"

    def start(self) -> "Emulator":
        handler = type("Handler", (_Handler,), {"emulator": self})
        self._server = ThreadingHTTPServer((self.host, self.port), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> "Emulator":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _json_records(df: pd.DataFrame) -> bytes:
    """JSON like FINRA's: nulls for missing values, large notionals in E-notation strings."""
    records = df.astype(object).where(df.notna(), None).to_dict("records")
    for rec in records:
        notional = rec.get("totalNotionalSum")
        if isinstance(notional, float) and notional >= 1e9:
            rec["totalNotionalSum"] = np.format_float_scientific(
                notional, unique=True, trim="-").upper().replace("E+", "E")
        for key in ("firmCRDNumber", "totalWeeklyTradeCount"):
            if rec.get(key) is not None:
                rec[key] = int(rec[key])
    return json.dumps(records, separators=(",", ":")).encode()


def _delimited(df: pd.DataFrame, delimiter: str, quote: bool) -> bytes:
    return df.to_csv(index=False, sep=delimiter, quoting=1 if quote else 3,
                     lineterminator="\n", escapechar="\\").encode()


class _Handler(BaseHTTPRequestHandler):
    emulator: Emulator
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # quiet: tests read counters, not logs
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None,
              content_type: str = "application/json") -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        if body:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _faulted(self, needs_token: bool = True) -> bool:
        em = self.emulator
        if em.faults.slow_seconds:
            time.sleep(em.faults.slow_seconds)
        if em.take_fault("drop"):
            em.count("dropped")
            self.close_connection = True
            self.connection.close()
            return True
        if em.take_fault("rate_limit"):
            em.count("429")
            self._send(429, b'{"error":"throttled"}', {"Retry-After": em.faults.retry_after})
            return True
        if em.take_fault("server_errors"):
            em.count("500")
            self._send(500, b'{"error":"internal"}')
            return True
        if (needs_token and em.faults.require_token
                and not em.token_ok(self.headers.get("Authorization"))):
            em.count("401")
            self._send(401, b'{"error":"invalid_token"}')
            return True
        return False

    def do_GET(self):  # noqa: N802
        em, path = self.emulator, self.path.split("?")[0]
        if path.startswith("/partitions/group/otcMarket/name/"):
            em.count("partitions")
            if self._faulted():
                return
            if em.take_fault("html_partitions"):
                em.count("html")
                return self._send(200, b"<html><body>Service Unavailable</body></html>",
                                  content_type="text/html")
            historic = path.endswith("Historic")
            parts = [{"partitions": [t, w]} for t, w in em.partitions(historic)]
            body = {"datasetGroup": "otcMarket", "partitionFields": ["tierIdentifier",
                                                                      "weekStartDate"],
                    "availablePartitions": parts}
            return self._send(200, json.dumps(body).encode())
        if path.startswith("/metadata/group/otcMarket/name/"):
            return self._send(200, json.dumps({"fields": [{"name": f} for f in API_FIELDS]}).encode())
        if path.startswith("/regsho/CNMSshvol"):
            em.count("regsho")
            if self._faulted(needs_token=False):  # Reg SHO files are public: no token
                return
            stamp = path.removeprefix("/regsho/CNMSshvol").removesuffix(".txt")
            try:
                day = dt.datetime.strptime(stamp, "%Y%m%d").date()
            except ValueError:
                return self._send(404, b"not found", content_type="text/plain")
            if day > cal.to_date(em.as_of) or day not in cal.sessions_in_week(cal.week_start_of(day)):
                return self._send(404, b"not found", content_type="text/plain")
            text = regsho.render(regsho_rows(day, seed=em.seed, size=em.size))
            return self._send(200, text.encode(), content_type="text/plain")
        self._send(404, b'{"error":"no such endpoint"}')

    def do_POST(self):  # noqa: N802
        em, path = self.emulator, self.path.split("?")[0]
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if path == "/oauth2/token":
            em.count("token")
            expected = base64.b64encode(
                f"{em.faults.client_id}:{em.faults.client_secret}".encode()).decode()
            if self.headers.get("Authorization") != f"Basic {expected}":
                return self._send(401, b'{"error":"invalid_client"}')
            return self._send(200, json.dumps(em.issue_token()).encode())
        if not path.startswith("/data/group/otcMarket/name/weeklySummary"):
            return self._send(404, b'{"error":"no such endpoint"}')
        em.count("data")
        if self._faulted():
            return
        historic = path.endswith("Historic")
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            return self._send(400, b'{"error":"body is not JSON"}')
        limit, offset = int(body.get("limit", 1000)), int(body.get("offset", 0))
        if limit > MAX_LIMIT or offset > 500_000:
            return self._send(400, b'{"error":"limit above 5000 or offset above 500000"}')
        equal = {f["fieldName"]: f["fieldValue"] for f in body.get("compareFilters", [])
                 if f.get("compareType", "EQUAL").upper() == "EQUAL"}
        tier, week = equal.get("tierIdentifier"), equal.get("weekStartDate")
        if historic and body.get("domainFilters"):
            return self._send(400, b'{"error":"historic data filters only by week and tier"}')
        rows = pd.DataFrame()
        if tier and week and em.is_live(tier, week) != historic:
            rows = em.weekly(tier, week)
        for f in body.get("domainFilters", []):
            if len(rows):
                rows = rows[rows[f["fieldName"]].isin(f["values"])]
        total = len(rows)
        page = rows.iloc[offset: offset + limit]
        headers = {"Record-Total": total, "Record-Offset": offset, "Record-Limit": limit}
        if offset > 0 and em.take_fault("short_pages"):
            em.count("short")
            return self._send(204, b"", headers)
        if not len(page):
            return self._send(204, b"", headers)
        if "application/json" in (self.headers.get("Accept") or ""):
            payload = _json_records(page)
            while len(payload) > PAGE_CAP_BYTES and len(page) > 1:
                page = page.iloc[: len(page) * 3 // 4]  # the 3 MB cap: fewer rows this page
                payload = _json_records(page)
            if em.take_fault("cut_bodies"):
                em.count("cut")
                self.send_response(200)
                for k, v in {**headers, "Content-Type": "application/json",
                             "Content-Length": len(payload)}.items():
                    self.send_header(k, str(v))
                self.end_headers()
                self.wfile.write(payload[: len(payload) // 2])
                self.close_connection = True
                self.connection.close()
                return
            if em.take_fault("bad_json"):
                em.count("bad_json")
                return self._send(200, payload[: len(payload) // 2], headers)
            return self._send(200, payload, headers)
        payload = _delimited(page, body.get("delimiter", ","), body.get("quoteValues", True))
        return self._send(200, payload, headers, content_type="text/plain")
