"""HTTP for sources: retries with exponential backoff and jitter, Retry-After, a client-side
rate limit, and errors that name the request.

Retries are urllib3's `Retry` (429, 5xx, connection errors, read timeouts; `Retry-After` is
honoured), mounted on a `requests.Session`. The FINRA query POST is a read, so POST is retried.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from spine.ingest.sources import SourceError

RETRY_STATUSES = (429, 500, 502, 503, 504)


@dataclass
class HttpSettings:
    retries: int = 5
    backoff_seconds: float = 0.5  # 0.5, 1, 2, 4, ... plus jitter
    backoff_max_seconds: float = 30.0
    jitter_seconds: float = 0.25
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    requests_per_second: float = 5.0  # FINRA allows ~20/s per IP; stay well under

    @classmethod
    def from_config(cls, cfg: dict | None) -> "HttpSettings":
        known = {k: v for k, v in (cfg or {}).items() if k in cls.__dataclass_fields__}
        return cls(**known)


class RateLimiter:
    """At most `rate` requests per second from this process (one shared clock, thread-safe)."""

    def __init__(self, rate: float):
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            delay = self._next - now
            self._next = max(now, self._next) + self.interval
        if delay > 0:
            time.sleep(delay)


class Client:
    """A session with retries and a rate limit. `describe` strings name requests in errors."""

    def __init__(self, settings: HttpSettings | None = None):
        self.settings = settings or HttpSettings()
        s = self.settings
        retry = Retry(
            total=s.retries, connect=s.retries, read=s.retries, status=s.retries, other=s.retries,
            backoff_factor=s.backoff_seconds, backoff_max=s.backoff_max_seconds,
            backoff_jitter=s.jitter_seconds, status_forcelist=RETRY_STATUSES,
            allowed_methods=frozenset({"GET", "POST"}), respect_retry_after_header=True,
            raise_on_status=False,
        )
        self.session = requests.Session()
        adapter = HTTPAdapter(max_retries=retry)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.limiter = RateLimiter(s.requests_per_second)
        self.requests_sent = 0

    def request(self, method: str, url: str, *, describe: str, **kwargs) -> requests.Response:
        """Send with retries; a final failure raises SourceError naming `describe` and the URL.

        urllib3 retries what fails before the body (connections, timeouts, 429/5xx); a body cut
        off mid-transfer (fewer bytes than Content-Length, a broken chunk) is retried here, with
        the same backoff, since it is read after urllib3 has handed the response over."""
        timeout = (self.settings.connect_timeout, self.settings.read_timeout)
        for attempt in range(self.settings.retries + 1):
            self.limiter.wait()
            self.requests_sent += 1
            try:
                response = self.session.request(method, url, timeout=timeout, **kwargs)
            except (requests.exceptions.ChunkedEncodingError,
                    requests.exceptions.ContentDecodingError) as err:
                if attempt < self.settings.retries:
                    time.sleep(self.backoff(attempt))
                    continue
                raise SourceError(
                    f"{describe}: {method} {url}: the response body was cut off "
                    f"{self.settings.retries + 1} times ({type(err).__name__}). Rerun later; "
                    "nothing was stored for this request.") from None
            except requests.RequestException as err:
                reason = getattr(err, "args", [err])[0]
                raise SourceError(
                    f"{describe}: {method} {url} failed after {self.settings.retries} retries "
                    f"({type(err).__name__}: {reason}). Check the network or the service status "
                    "and rerun; nothing was stored for this request.") from None
            break
        if response.status_code in RETRY_STATUSES:
            raise SourceError(
                f"{describe}: {method} {url} still answered HTTP {response.status_code} after "
                f"{self.settings.retries} retries. Rerun later; nothing was stored.")
        return response

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before retry number `attempt` + 1 (exponential, capped, jittered)."""
        s = self.settings
        return (min(s.backoff_max_seconds, s.backoff_seconds * 2 ** attempt)
                + random.uniform(0, s.jitter_seconds))
