"""FINRA download files and API text exports: exact parsing, errors that name file and line,
and `spine import-file` through the gates."""

import datetime as dt
import subprocess
import sys

import pandas as pd
import pytest

from spine import lake
from spine.ingest.ledger import LakeState
from spine.ingest.sources import SourceError, finra_files, synthetic

WEEK = "2025-06-02"
# The published download layout, verbatim (two spaces in an issue name are real).
SAMPLE = (
    "tierDescription|issueSymbolIdentifier|issueName|marketParticipantName|MPID|"
    "totalWeeklyShareQuantity|totalWeeklyTradeCount|lastUpdateDate\n"
    "OTC|AABB|Asia Broadband Inc Common Stock|OTCN OTC LINK NQB IDQS|OTCN|6753871|171|2025-12-15\n"
    "OTC|AABB|Asia Broadband Inc Common Stock|PPEX PURE X|PPEX|1200.5|3|2025-12-15\n"
    "OTC|ABCDF|Abcd  Mining Corp Ordinary Shares|OTCX OTC LINK ECN|OTCX|98|1|2025-12-15\n"
)


def parse(text, name="otce_ats.txt", tier="OTCE", **kw):
    return finra_files.parse(text.encode(), name, tier=tier, week_start=WEEK, **kw)


def test_download_layout_exactly():
    df = parse(SAMPLE)
    assert len(df) == 3
    first = df.iloc[0]
    assert first["marketParticipantName"] == "OTC LINK NQB IDQS" and first["MPID"] == "OTCN"
    assert first["totalWeeklyShareQuantity"] == 6753871 and first["totalWeeklyTradeCount"] == 171
    assert df.iloc[1]["totalWeeklyShareQuantity"] == 1200.5
    assert df.iloc[2]["issueName"] == "Abcd  Mining Corp Ordinary Shares"  # not trimmed
    assert set(df["summaryTypeCode"]) == {"ATS_W_SMBL_FIRM"}  # from its venues: ATS MPIDs
    assert set(df["weekStartDate"]) == {WEEK} and set(df["tierIdentifier"]) == {"OTCE"}
    assert df["firmCRDNumber"].isna().all() and df["totalNotionalSum"].isna().all()


@pytest.mark.parametrize("line, message", [
    ("OTC|AABB|Asia|OTCN X|OTCN|12x|1|2025-12-15", r"line 3: field totalWeeklyShareQuantity: '12x'"),
    ("OTC|AABB|Asia|OTCN X|OTCN|12|1.5|2025-12-15", r"line 3: field totalWeeklyTradeCount: '1.5'"),
    ("OTC|AABB|Asia|OTCN X|OTCN|12|1", r"line 3: a short row with 7 fields"),
    ("OTC|AABB|Asia|OTCN X|OTCN|12|1|2025-12-15|extra", r"line 3: a long row with 9 fields"),
    ("NMS Tier 2|AABB|Asia|OTCN X|OTCN|12|1|2025-12-15", r"line 3: tier 'NMS Tier 2', but the file was requested as OTCE"),
])
def test_bad_rows_name_file_and_line(line, message):
    text = SAMPLE.split("\n")[0] + "\n" + SAMPLE.split("\n")[1] + "\n" + line + "\n"
    with pytest.raises(SourceError, match=f"otce_ats.txt {message}"):
        parse(text)


def test_unknown_layout_and_unknown_summary_type_are_refused():
    with pytest.raises(SourceError, match="unknown column layout"):
        parse("Symbol|Volume\nAABB|12\n")
    mixed = SAMPLE + "OTC|AABB|Asia Broadband Inc Common Stock|CDRG CITADEL SECURITIES LLC|CDRG|5|1|2025-12-15\n"
    with pytest.raises(SourceError, match=r"download.txt: cannot tell ATS from non-ATS rows by "
                       r"content: 3 rows carry ATS MPIDs \(OTCN, OTCX, PPEX\) and 1 other firms "
                       r"\(CDRG\).*--summary-type"):
        parse(mixed, name="download.txt")
    assert len(parse(mixed, name="download.txt", summary_type="OTC_W_SMBL_FIRM")) == 4


def test_the_api_text_export():
    rows = synthetic.weekly_rows("T1", WEEK, "2025-08-01", size="small")
    text = rows.to_csv(index=False, quoting=1)  # the API's delimited export: quoted, comma
    df = parse(text, name="export.csv", tier="T1")
    pd.testing.assert_frame_equal(df, rows)
    with pytest.raises(SourceError, match="tier 'T1', but the file was requested as T2"):
        parse(text, name="export.csv", tier="T2")


def test_full_week_round_trip_through_download_files(tmp_path):
    rows = synthetic.weekly_rows("T2", WEEK, "2025-08-01", size="full", aggregates=False)
    for kind, stype in finra_files.KINDS.items():
        part = rows[rows["summaryTypeCode"] == stype]
        back = parse(finra_files.render_download(part), name=f"T2_{kind}.txt", tier="T2")
        assert len(back) == len(part)
        for col in ("issueSymbolIdentifier", "MPID", "marketParticipantName",
                    "totalWeeklyShareQuantity", "totalWeeklyTradeCount", "lastUpdateDate"):
            pd.testing.assert_series_equal(back[col].reset_index(drop=True),
                                           part[col].reset_index(drop=True), check_names=False)


def test_import_file_command(tmp_path):
    rows = synthetic.weekly_rows("OTCE", WEEK, "2025-08-01", size="small", aggregates=False)
    files = []
    for kind, stype in finra_files.KINDS.items():
        path = tmp_path / f"otce_{kind}_2025-06-02.txt"
        path.write_text(finra_files.render_download(rows[rows["summaryTypeCode"] == stype]))
        files.append(str(path))
    root = tmp_path / "lake"
    cmd = [sys.executable, "-m", "spine.cli", "import-file", *files, "--tier", "OTCE",
           "--week-start", WEEK, "--lake-root", str(root)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "gate: PASS" in proc.stdout and "snakemake --cores 2 reports" in proc.stdout
    # recorded as accepted in the ledger; clean and calculations are the derive stage's
    state = LakeState.read(str(root)).get("OTCE", dt.date.fromisoformat(WEEK))
    capture = pd.read_parquet(lake.path(root, "capture", tier="OTCE", week_start=WEEK,
                                        capture_id=state.held))
    assert len(capture) == len(rows)
    raw_dir = lake.path(root, "raw", tier="OTCE", week_start=WEEK)
    payload = lake.payload_path(root, "finra_otc_weekly", {"tier": "OTCE", "week_start": WEEK},
                                state.held)
    assert payload.exists() and not list(raw_dir.glob("*.zip"))  # the files as received
    # raw is a plain Parquet dataset: every reader reads it without glue
    assert len(pd.read_parquet(root / "raw" / "finra_otc_weekly")) == len(rows)

    # a damaged file: a clear error, exit 2, and nothing new stored
    bad = tmp_path / "otce_ats_bad.txt"
    bad.write_text(SAMPLE.replace("|171|", "|17x|"))
    before = sorted(p.name for p in raw_dir.iterdir())
    proc = subprocess.run([*cmd[:4], str(bad), *cmd[5 + len(files) - 1:]], capture_output=True,
                          text=True)
    assert proc.returncode == 2
    assert "otce_ats_bad.txt line 2: field totalWeeklyTradeCount: '17x'" in proc.stderr
    assert sorted(p.name for p in raw_dir.iterdir()) == before


# -- what an operator really meets: files re-saved, converted or damaged (issue 9) -------------
def test_cr_only_and_crlf_line_ends_read_like_lf():
    for end in ("\r", "\r\n"):
        assert parse(SAMPLE.replace("\n", end)).equals(parse(SAMPLE))


@pytest.mark.parametrize("data, message", [
    (SAMPLE.replace("Abcd", "Abcé").encode("latin-1"),
     r"otce_ats.txt line 4: byte 0xe9 at offset \d+ is not UTF-8 text: .*latin-1.*iconv"),
    (b"PK\x03\x04" + bytes(range(256)) * 4,
     r"otce_ats.txt line \d+: byte 0x\w+ at offset \d+ is not UTF-8 text: .*binary file"),
    (SAMPLE.replace("ABCDF", "ABC\x00F").encode(), r"otce_ats.txt line 4: a NUL byte"),
    (SAMPLE.replace("|", "\t").encode(), r"otce_ats.txt line 1: the header is tab-delimited"),
    (SAMPLE.replace("|", ",").encode(),
     r"otce_ats.txt line 1: a download file, but comma-delimited"),
    (SAMPLE.replace("171", "1" * 200_000).encode(),
     r"otce_ats.txt line 2: field larger than field limit"),
])
def test_damaged_or_converted_files_are_refused_naming_the_file_and_line(data, message):
    with pytest.raises(SourceError, match=message):
        finra_files.parse(data, "otce_ats.txt", tier="OTCE", week_start=WEEK)


def test_a_comma_delimited_line_in_a_pipe_file_says_so():
    text = SAMPLE + "OTC,AABB,Asia,OTCN X,OTCN,12,1,2025-12-15\n"
    with pytest.raises(SourceError, match=r"line 5: a short row with 1 fields.*comma characters"):
        parse(text)


@pytest.mark.parametrize("name", ["otce_otc_week.txt", "OTC-2025-06-02.txt", "otc_ats.txt",
                                  "weekly-otc.txt", "download.txt"])
def test_an_ats_file_is_told_by_its_venues_never_by_a_name_that_says_otc(name):
    """Real OTC-tier ATS files (OTC Link ECN, Global OTC, ...) are named for the tier."""
    df = parse(SAMPLE, name=name)
    assert set(df["summaryTypeCode"]) == {"ATS_W_SMBL_FIRM"}


def test_a_non_ats_file_is_told_by_its_venues_and_a_contradicting_name_is_refused():
    rows = [r for r in SAMPLE.splitlines()[:1]] + [
        "OTC|AABB|Asia Broadband Inc Common Stock|CDRG CITADEL SECURITIES LLC|CDRG|500|4|2025-12-15",
        "OTC|AABB|Asia Broadband Inc Common Stock|DE MINIMIS FIRM||12|1|2025-12-15"]
    text = "\n".join(rows) + "\n"
    assert set(parse(text, name="otce_week.txt")["summaryTypeCode"]) == {"OTC_W_SMBL_FIRM"}
    with pytest.raises(SourceError, match="name says ATS_W_SMBL_FIRM but the venues say "
                       "OTC_W_SMBL_FIRM"):
        parse(text, name="otce_ATS_W_SMBL_FIRM.txt")
    with pytest.raises(SourceError, match="name says OTC_W_SMBL_FIRM but the venues say "
                       "ATS_W_SMBL_FIRM"):
        parse(SAMPLE, name="otce_nonats.txt")
