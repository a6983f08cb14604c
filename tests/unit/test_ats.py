"""FINRA's ATS MPIDs: the list in the repository, and `spine ats-list --refresh` against a page
in FINRA's layout served on loopback."""

import http.server
import shutil
import subprocess
import sys
import threading

import pytest

from spine import ats

PAGE = """<html><body><h1>ATS Equity Firms</h1>
<table><thead><tr><th>ATS Name</th><th>MPID</th><th>Firm Name</th><th>Notes</th></tr></thead>
<tbody>
{rows}
</tbody></table></body></html>"""
ROWS = [("ABE ATS", "ABEX", "303 ALTERNATIVES LLC", ""),
        ("APOGEE", "APOG", "CITADEL SECURITIES LLC", "Ceased on April 2, 2015"),
        ("GCX", "MLCX", "BOFA SECURITIES, INC", ""),
        ("GCX", "MLCX", "MERRILL LYNCH, PIERCE, FENNER &amp; SMITH INCORPORATED", "Ceased on May 10, 2019"),
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
