"""FINRA's ATS MPIDs: the reference list the gates and the download-file parser use.

FINRA requires each ATS to report under a single, unique MPID of its own (Rule 4552), so an MPID
says whether a row is ATS volume: a non-ATS row carrying a listed ATS MPID, or an ATS row with
an MPID FINRA never listed, is wrong data. The list is data in the repository,
`spine/ingest/reference/ats_mpids.csv` (`mpid`, `ats_name`, `operator`, `note`, `listed_by`), with
where and when it came from in `ats_mpids.source.json`. `spine ats-list --refresh` re-reads
FINRA's "ATS equity firms" page (every ATS that has reported, ceased ones included: old weeks
carry their MPIDs) and replaces the page's rows, keeping rows listed by other sources.

In FINRA's API data the summary type is FINRA's own word, and its `ATS_W_FIRM` rows list every
ATS of the week: the gates judge a capture's venues by them, and record an ATS the list lacks
in the week's gate report (`new_ats`); `learned(state)` collects those, each with the first
week it was seen (`spine ats-list --learned`). Download files carry no summary type, so their
type is inferred from this list.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from functools import lru_cache
from pathlib import Path

from bs4 import BeautifulSoup

from spine.ingest.sources import SourceError
from spine.ingest.sources.http import Client

LIST = Path(__file__).parent / "reference" / "ats_mpids.csv"
URL = "https://www.finra.org/filing-reporting/otc-transparency/ats-equity-firms"
FIELDS = ["mpid", "ats_name", "operator", "note", "listed_by"]
PAGE = "finra.org ATS equity firms page"


def read(path: str | Path = LIST) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@lru_cache(maxsize=4)
def mpids(path: str | Path = LIST) -> frozenset[str]:
    """Every MPID the list holds."""
    return frozenset(r["mpid"] for r in read(path))


def parse_page(html: str, url: str) -> list[dict]:
    """The ATS rows of FINRA's page: a table whose header names the ATS, its MPID and the
    firm (column order taken from the header, not assumed)."""
    rows = []
    for table in BeautifulSoup(html, "html.parser").find_all("table"):
        header = [c.get_text(" ", strip=True).lower() for c in table.find_all("th")]
        if not any("mpid" in h for h in header):
            continue
        col = {"mpid": next(i for i, h in enumerate(header) if "mpid" in h)}
        col["ats_name"] = next((i for i, h in enumerate(header) if "ats" in h and i != col["mpid"]), 0)
        col["operator"] = next((i for i, h in enumerate(header) if "firm" in h or "operat" in h), None)
        col["note"] = next((i for i, h in enumerate(header) if "note" in h or "comment" in h), None)
        for tr in table.find_all("tr"):
            cells = [td.get_text(" ", strip=True) for td in tr.find_all("td")]
            if len(cells) <= col["mpid"] or not cells[col["mpid"]]:
                continue
            rows.append({k: (cells[i] if i is not None and i < len(cells) else "")
                         for k, i in col.items()} | {"listed_by": PAGE})
    if len(rows) < 10:
        raise SourceError(f"{url}: found {len(rows)} ATS rows with an MPID (expected dozens); "
                          "the page's layout may have changed. The list was not changed.")
    return rows


def _ceased(row: dict) -> bool:
    return "ceased" in (row.get("note") or "").lower()


def refresh(url: str = URL, path: str | Path = LIST, client=None) -> dict:
    """Replace the page's rows of the list with the page as it is now; returns a summary."""
    client = client or Client()
    response = client.request("GET", url, describe="FINRA ATS list")
    if response.status_code != 200:
        raise SourceError(f"FINRA ATS list: HTTP {response.status_code} from {url}; the list "
                          "was not changed")
    page = parse_page(response.text, url)
    path = Path(path)
    old = read(path) if path.exists() else []
    kept = [r for r in old if r["listed_by"] != PAGE and r["mpid"] not in {p["mpid"] for p in page}]
    merged = {}
    for r in page + kept:
        # one row per MPID: its current operator, i.e. a row not marked ceased if the page has
        # one (it lists a ceased operator of the same MPID first at times: MLIX, Merrill Lynch
        # before BofA), else the page's first row
        old_row = merged.get(r["mpid"])
        if old_row is None or (_ceased(old_row) and not _ceased(r)):
            merged[r["mpid"]] = r
    out = io.StringIO()
    writer = csv.DictWriter(out, FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(merged[m] for m in sorted(merged))
    path.write_text(out.getvalue())
    source = {"list": path.name, "url": url,
              "retrieved_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
              "how": f"`spine ats-list --refresh`: rows listed_by '{PAGE}' are the page's table; "
                     "other rows are kept from before.", "rows_from_page": len(page)}
    path.with_name(path.stem + ".source.json").write_text(json.dumps(source, indent=2) + "\n")
    mpids.cache_clear()
    before = {r["mpid"] for r in old}
    return {"rows": len(merged), "from_page": len(page), "added": sorted(set(merged) - before),
            "kept": len(kept)}


def learned(state) -> list[dict]:
    """The ATSs FINRA listed in a lake's captures (`ATS_W_FIRM`) that the reference list lacked
    when they were gated, from the ledger's state (a spine.ingest.ledger.LakeState): mpid,
    name, the first (tier, week) it was seen, and how many weeks."""
    seen: dict[str, dict] = {}
    for tier, week in sorted(state.parts, key=lambda p: (p[1], p[0])):
        for capture in state.get(tier, week).verdicts:
            report = state.report(tier, week, capture)
            for mpid, name in (report.get("new_ats") or {}).items():
                row = seen.setdefault(mpid, {"mpid": mpid, "name": name, "tier": tier,
                                             "first_week": week.isoformat(), "weeks": set()})
                row["weeks"].add((tier, week))
    return [r | {"weeks": len(r["weeks"])} for r in seen.values()]
