"""FINRA Reg SHO daily short-sale volume (`regsho.source: finra_regsho`).

One file per trade date: `{base_url}/CNMSshvolYYYYMMDD.txt`, the consolidated NMS file.
Layout: a header `Date|Symbol|ShortVolume|ShortExemptVolume|TotalVolume|Market`, one row per
symbol, and a trailer row holding the record count, which is verified. Volumes can be
fractional; Market can list several facility codes (`B,Q,N`). It is short *volume* reported to
FINRA facilities, not short interest.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from spine import calendar as cal
from spine.schemas import REGSHO_FIELDS, ParseError, normalise_regsho
from spine.ingest.sources import REGSHO, Capture, Source, SourceError
from spine.ingest.sources.http import Client, HttpSettings

DEFAULT_BASE_URL = "https://cdn.finra.org/equity/regsho/daily"
HEADER = "|".join(REGSHO_FIELDS)


def file_name(trade_date: dt.date) -> str:
    return f"CNMSshvol{trade_date:%Y%m%d}.txt"


def parse(text: str, name: str) -> pd.DataFrame:
    """Parse a Reg SHO daily file; every problem names the file and line."""
    lines = text.replace("\r\n", "\n").split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines or lines[0].strip() != HEADER:
        found = lines[0][:80] if lines else "an empty file"
        raise SourceError(f"{name} line 1: expected the header {HEADER!r}, found {found!r}")
    if len(lines) < 2 or "|" in lines[-1] or not lines[-1].strip().isdigit():
        raise SourceError(f"{name} line {len(lines)}: expected a trailer with the record count, "
                          f"found {lines[-1][:80]!r}; the file may be truncated, fetch it again")
    declared = int(lines[-1].strip())
    body = lines[1:-1]
    if declared != len(body):
        raise SourceError(f"{name}: the trailer declares {declared} records but the file has "
                          f"{len(body)}; the file is incomplete or damaged, fetch it again")
    rows = []
    for number, line in enumerate(body, start=2):
        fields = line.split("|")
        if len(fields) != len(REGSHO_FIELDS):
            raise SourceError(f"{name} line {number}: {len(fields)} fields, expected "
                              f"{len(REGSHO_FIELDS)} ({HEADER})")
        rows.append(fields)
    df = pd.DataFrame(rows, columns=REGSHO_FIELDS)
    try:
        return normalise_regsho(df)
    except ParseError as err:
        raise SourceError(f"{name} line {err.row + 2}: {err}") from None


def render(df: pd.DataFrame) -> str:
    """A table in the published file layout (header, rows, trailer): the emulator serves this."""
    def number(x: float) -> str:
        return str(int(x)) if float(x).is_integer() else repr(float(x))

    lines = [HEADER]
    for row in df.itertuples(index=False):
        lines.append("|".join([row.Date, row.Symbol, number(row.ShortVolume),
                               number(row.ShortExemptVolume), number(row.TotalVolume),
                               row.Market]))
    lines.append(str(len(df)))
    return "\n".join(lines) + "\n"


class RegShoSource(Source):
    name = "finra_regsho"
    datasets = {REGSHO.name: REGSHO}

    def __init__(self, config: dict):
        super().__init__(config)
        cfg = config.get("regsho") or {}
        self.base_url = str(cfg.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
        self.client = Client(HttpSettings.from_config(cfg))

    def fetch(self, dataset: str, partition: dict[str, str]) -> Capture:
        self.dataset(dataset)
        day = cal.to_date(partition["trade_date"], "trade_date")
        name = file_name(day)
        url = f"{self.base_url}/{name}"
        response = self.client.request("GET", url, describe=f"Reg SHO {day}")
        if response.status_code == 404:
            raise SourceError(f"Reg SHO {day}: {url} is not there (HTTP 404). Files appear around "
                              "18:00 US/Eastern on each trading day; check the date.")
        if response.status_code >= 400:
            raise SourceError(f"Reg SHO {day}: HTTP {response.status_code} from {url}")
        table = parse(response.content.decode("utf-8"), name)
        dates = set(table["Date"])
        if dates - {day.strftime("%Y%m%d")}:
            raise SourceError(f"{name}: rows dated {sorted(dates)}, expected {day:%Y%m%d}")
        request = {"source": self.name, "url": url, "trade_date": day.isoformat()}
        return Capture(dataset, dict(partition), table, [(name, response.content)], request)
