"""FINRA's ATS MPIDs: the list in the repository, and `spine ats-list --refresh` against a page
in FINRA's layout served on loopback."""

import html
import http.server
import json
import re
import shutil
import subprocess
import sys
import threading

import pytest

from spine.ingest import ats
from spine.ingest.sources.synthetic_market import ATS_MPIDS

SHIPPED = 65  # rows of spine/ingest/reference/ats_mpids.csv as compiled on 2026-12-03

PAGE = """<html><body><h1>ATS Equity Firms</h1>
<table><thead><tr><th>ATS Name</th><th>MPID</th><th>Firm Name</th><th>Notes</th></tr></thead>
<tbody>
{rows}
</tbody></table></body></html>"""
ROWS = [("ABE ATS", "ABEX", "303 ALTERNATIVES LLC", ""),
        ("APOGEE", "APOG", "CITADEL SECURITIES LLC", "Ceased on April 2, 2015"),
        ("GCX", "MLCX", "BOFA SECURITIES, INC", ""),
        ("GCX", "MLCX", "MERRILL LYNCH, PIERCE, FENNER &amp; SMITH INCORPORATED", "Ceased on May 10, 2019"),
        ("INSTINCT X", "MLIX", "MERRILL LYNCH, PIERCE, FENNER &amp; SMITH INCORPORATED",
         "Ceased on May 10, 2019"),  # FINRA's page lists this ceased operator first
        ("INSTINCT X", "MLIX", "BOFA SECURITIES, INC", ""),
        ("NEW ATS", "NEWX", "NEW FIRM LLC", "")] + [
        (f"ATS {i}", f"AT{i:02d}", f"FIRM {i}", "") for i in range(10)]


@pytest.fixture
def page_server():
    body = PAGE.format(rows="\n".join(
        f"<tr><td>{a}</td><td>{m}</td><td>{f}</td><td>{n}</td></tr>" for a, m, f, n in ROWS))

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            data = body.encode() if self.path == "/ats" else b"<html>no table</html>"
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_the_list_has_its_source_and_the_real_mpids_the_domain_notes_name():
    known = ats.mpids()
    for mpid in ("OTCN", "OTCX", "ARCA", "PPEX", "SGMT", "INCR", "UBSA", "JPMX", "MLIX", "XSTM"):
        assert mpid in known
    assert "GSCO" not in known and "CDRG" not in known  # broker-dealers, not ATSs
    assert {r["listed_by"] for r in ats.read()} >= {"finra.org ATS equity firms page"}


def test_level_ats_is_listed_under_its_mpid():
    """LeveL ATS reports under EBXL (FINRA's download files, levelats.com's FAQ); LEVL, which
    FINRA_FACTS.md names, is LeveL ATS's MIC, not an MPID, so it is not a row of its own."""
    rows = {r["mpid"]: r for r in ats.read()}
    assert rows["EBXL"]["ats_name"] == "LEVEL ATS"
    assert "LEVL" in rows["EBXL"]["note"] and "LEVL" not in rows


def test_every_row_names_its_source_and_each_mpid_is_one_row():
    rows = ats.read()
    assert all(r["listed_by"].strip() for r in rows)
    mpids = [r["mpid"] for r in rows]
    assert len(mpids) == len(set(mpids)), "one row per MPID"
    assert mpids == sorted(mpids)
    assert all(re.fullmatch(r"[A-Z]{4}", m) for m in mpids)


def test_the_count_shipped_and_the_page_rows_the_source_file_records():
    rows = ats.read()
    assert len(rows) == SHIPPED
    source = json.loads(ats.LIST.with_name(ats.LIST.stem + ".source.json").read_text())
    assert source["rows_from_page"] == sum(r["listed_by"] == ats.PAGE for r in rows)
    assert source["retrieved_at"] and source["how"]


def test_every_ats_mpid_the_synthetic_source_uses_is_listed():
    used = {entry[0] for pool in ATS_MPIDS.values() for entry in pool}
    assert used <= ats.mpids()


def test_parse_page_reads_the_shipped_list_back():
    rows = ats.read()
    cols = ("ats_name", "mpid", "operator", "note")
    body = PAGE.format(rows="\n".join(
        "<tr>" + "".join(f"<td>{html.escape(r[k])}</td>" for k in cols) + "</tr>" for r in rows))
    parsed = ats.parse_page(body, "loopback")
    assert [(p["mpid"], p["ats_name"], p["operator"], p["note"]) for p in parsed] == [
        (r["mpid"], r["ats_name"], r["operator"], r["note"]) for r in rows]
    assert {p["listed_by"] for p in parsed} == {ats.PAGE}


def test_refresh_reads_the_page_and_keeps_other_rows(page_server, tmp_path):
    path = tmp_path / "ats_mpids.csv"
    shutil.copy(ats.LIST, path)
    cmd = [sys.executable, "-m", "spine.cli", "ats-list", "--refresh", "--url",
           f"{page_server}/ats", "--list", str(path)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "new: AT00, AT01" in proc.stdout and "NEWX" in proc.stdout
    rows = {r["mpid"]: r for r in ats.read(path)}
    assert rows["MLCX"]["operator"] == "BOFA SECURITIES, INC"  # the current operator first
    assert rows["MLIX"]["operator"] == "BOFA SECURITIES, INC"  # ... or listed after a ceased one
    assert rows["MLIX"]["note"] == ""
    assert rows["APOG"]["note"] == "Ceased on April 2, 2015"
    assert "SGMT" in rows and rows["SGMT"]["listed_by"] != "finra.org ATS equity firms page"
    assert (tmp_path / "ats_mpids.source.json").exists()
    shown = subprocess.run(cmd[:4] + ["--list", str(path)], capture_output=True, text=True)
    assert "ATS MPIDs, from" in shown.stdout and "NEWX" in shown.stdout


def test_a_page_without_the_table_changes_nothing(page_server, tmp_path):
    path = tmp_path / "ats_mpids.csv"
    shutil.copy(ats.LIST, path)
    before = path.read_text()
    proc = subprocess.run([sys.executable, "-m", "spine.cli", "ats-list", "--refresh", "--url",
                           f"{page_server}/moved", "--list", str(path)],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "layout may have changed" in proc.stderr
    assert "Traceback" not in proc.stderr and path.read_text() == before
