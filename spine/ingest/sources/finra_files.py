"""FINRA OTC Transparency files (`source: finra_files`, and `spine import-file`).

Two layouts are recognised by their header row:
- the download file of otctransparency.finra.org: pipe-delimited, unquoted, 8 columns
  `tierDescription|issueSymbolIdentifier|issueName|marketParticipantName|MPID|
  totalWeeklyShareQuantity|totalWeeklyTradeCount|lastUpdateDate`. It has no week column and no
  summary type: the week and tier come from the caller (or the configured file-name pattern),
  and ATS vs non-ATS from the caller or, failing that, from the venues the file lists (FINRA's
  ATS MPIDs, `spine.ingest.ats`), checked against the name when the name says it without doubt. `marketParticipantName` starts with the
  MPID ("OTCN OTC LINK NQB IDQS"); the prefix is removed so names match the API's.
- the Query API's delimited text export: a header of API field names, `|` or `,` delimited,
  values optionally quoted.

Both become the API's raw layout. Every row's tier must be the requested tier; an unknown
layout, a short or long row or a bad number is an error naming the file and line. No row is
ever dropped.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pandas as pd

from spine import calendar as cal
from spine.ingest import ats
from spine.ingest.sources import WEEKLY, Capture, Source, SourceError, configured
from spine.schemas import API_FIELDS, ParseError, normalise_weekly
from spine.vocabulary import ATS, NON_ATS

DOWNLOAD_COLUMNS = [
    "tierDescription", "issueSymbolIdentifier", "issueName", "marketParticipantName", "MPID",
    "totalWeeklyShareQuantity", "totalWeeklyTradeCount", "lastUpdateDate",
]
TIER_BY_DESCRIPTION = {v: k for k, v in cal.TIER_DESCRIPTIONS.items()}
KINDS = {"ats": ATS, "otc": NON_ATS}  # {kind} in finra_files.pattern; `all`: an API export
DEFAULT_DIR, DEFAULT_PATTERN = "downloads", "{tier}_{week_start}_{kind}.txt"


def summary_type_from_name(name: str) -> str | None:
    """What a download file's name says without doubt: FINRA's own codes, or "non-ATS".
    Anything else says nothing: an OTC-tier file's name says `otc` for the tier, and an ATS
    file may be named anything."""
    lower = Path(name).name.lower()
    if "otc_w_smbl" in lower or re.search(r"non[-_ ]?ats", lower):
        return NON_ATS
    if "ats_w_smbl" in lower:
        return ATS
    return None


def summary_type_from_content(mpids: pd.Series, name: str) -> str:
    """ATS or non-ATS from the venues a download file lists: FINRA's ATS MPIDs
    (spine/ingest/reference/ats_mpids.csv) on every row is an ATS file, none a non-ATS file (whose
    firms may have no MPID at all). A mix is refused: only the operator can say."""
    given = mpids.fillna("").astype(str).str.strip()
    is_ats = given.isin(ats.mpids())
    if is_ats.all() and len(given):
        return ATS
    if not is_ats.any():
        return NON_ATS
    firms = sorted(set(given[~is_ats].replace("", "(no MPID)")))
    raise SourceError(
        f"{name}: cannot tell ATS from non-ATS rows by content: {int(is_ats.sum())} rows carry "
        f"ATS MPIDs ({', '.join(sorted(set(given[is_ats]))[:5])}) and {int((~is_ats).sum())} "
        f"other firms ({', '.join(firms[:5])}). A download file holds one or the other: check "
        "the file, then pass --summary-type ATS_W_SMBL_FIRM or OTC_W_SMBL_FIRM (or refresh the "
        "ATS list: spine ats-list --refresh)")


def _decode(data: bytes, name: str) -> str:
    """The file's text: UTF-8 (a BOM allowed), any line ends (LF, CRLF, CR). Anything else is
    refused naming the file, where and what to do."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        binary = data[:4] in (b"PK\x03\x04", b"\xd0\xcf\x11\xe0") or b"\x00" in data[:1024]
        hint = ("it looks like a binary file (a zip or an Excel workbook?); use the .txt file "
                "as downloaded" if binary else
                "it is not UTF-8 (latin-1 or cp1252, re-saved by a spreadsheet?); use the file "
                "as downloaded, or convert it: iconv -f latin1 -t utf-8")
        raise SourceError(f"{name} line {line}: byte 0x{data[err.start]:02x} at offset "
                          f"{err.start} is not UTF-8 text: {hint}") from None
    nul = text.find("\x00")
    if nul >= 0:
        raise SourceError(f"{name} line {text[:nul].count(chr(10)) + 1}: a NUL byte; the file is "
                          "damaged or binary, download it again")
    return text.replace("\r\n", "\n").replace("\r", "\n")


DELIMITERS = {"|": "pipe", ",": "comma", "\t": "tab", ";": "semicolon"}


def _rows(text: str, name: str) -> tuple[list[str], list[list[str]], str]:
    first = text.split("\n", 1)[0]
    counts = {d: first.count(d) for d in DELIMITERS}
    delimiter = max(counts, key=counts.get) if any(counts.values()) else "|"
    if delimiter not in ("|", ","):
        raise SourceError(
            f"{name} line 1: the header is {DELIMITERS[delimiter]}-delimited; FINRA's download "
            "files are pipe-delimited (|) and the Query API's text export pipe- or "
            "comma-delimited. Use the file as published")
    reader = csv.reader(io.StringIO(text), delimiter=delimiter,
                        quoting=csv.QUOTE_NONE if delimiter == "|" else csv.QUOTE_MINIMAL)
    try:
        header = [h.strip().strip('"') for h in next(reader)]
        if header == DOWNLOAD_COLUMNS and delimiter != "|":
            raise SourceError(
                f"{name} line 1: a download file, but {DELIMITERS[delimiter]}-delimited: the "
                "published download layout is pipe-delimited (a spreadsheet may have re-saved "
                "it and changed its numbers); use the file as downloaded")
        rows = []
        for row in reader:
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            rows.append(row)
            if len(row) != len(header):
                kind = "short" if len(row) < len(header) else "long"
                other = [DELIMITERS[d] for d in DELIMITERS
                         if d != delimiter and d in delimiter.join(row)]
                hint = (f" (it contains {other[0]} characters: a differently delimited line?)"
                        if other and kind == "short" else "")
                raise SourceError(f"{name} line {reader.line_num}: a {kind} row with {len(row)} "
                                  f"fields, the header has {len(header)}{hint}; the file is "
                                  "damaged or not in the published format")
    except StopIteration:
        raise SourceError(f"{name}: the file is empty") from None
    except csv.Error as err:
        raise SourceError(f"{name} line {reader.line_num}: {err}; the file is damaged or not "
                          "in the published format") from None
    return header, rows, delimiter


def parse(data: bytes, name: str, *, tier: str, week_start, summary_type: str | None = None
          ) -> pd.DataFrame:
    """Parse one file into the API's raw layout for (tier, week_start)."""
    tier = cal.check_tier(tier)
    week = cal.check_week_start(week_start).isoformat()
    text = _decode(data, name)
    header, rows, _ = _rows(text, name)
    frame = pd.DataFrame(rows, columns=header, dtype=object)
    if header == DOWNLOAD_COLUMNS:
        if summary_type is None:
            by_name = summary_type_from_name(name)
            by_content = summary_type_from_content(frame["MPID"], name)
            if by_name and by_name != by_content:
                raise SourceError(
                    f"{name}: the name says {by_name} but the venues say {by_content} (by "
                    "FINRA's ATS MPIDs, spine/ingest/reference/ats_mpids.csv); check the file, then "
                    "pass --summary-type")
            summary_type = by_content
        tiers = frame["tierDescription"].map(TIER_BY_DESCRIPTION)
        prefix = frame["MPID"].fillna("") + " "
        names = frame["marketParticipantName"]
        frame["marketParticipantName"] = [
            n[len(p):] if p.strip() and isinstance(n, str) and n.startswith(p) else n
            for n, p in zip(names, prefix)]
        frame["tierIdentifier"] = tiers
        frame["summaryTypeCode"] = summary_type
        frame["weekStartDate"] = week
        frame["summaryStartDate"] = week
        for empty in ("MPID",):
            frame[empty] = frame[empty].where(frame[empty].str.strip() != "", None)
    elif set(header) <= set(API_FIELDS) and {"tierIdentifier", "totalWeeklyShareQuantity",
                                             "issueSymbolIdentifier"} <= set(header):
        frame = frame.replace({"": None})
        tiers = frame["tierIdentifier"]
        if "weekStartDate" in frame and (frame["weekStartDate"].dropna() != week).any():
            line = int((frame["weekStartDate"] != week).to_numpy().nonzero()[0][0]) + 2
            raise SourceError(f"{name} line {line}: weekStartDate is "
                              f"{frame['weekStartDate'].iloc[line - 2]}, expected {week}")
    else:
        raise SourceError(
            f"{name}: unknown column layout {header[:9]}. Expected the FINRA download layout "
            f"({'|'.join(DOWNLOAD_COLUMNS)}) or the Query API's text export (API field names)")
    wrong = tiers != tier
    if wrong.any():
        i = int(wrong.to_numpy().nonzero()[0][0])
        column = "tierDescription" if header == DOWNLOAD_COLUMNS else "tierIdentifier"
        found = frame.iloc[i][column]
        raise SourceError(f"{name} line {i + 2}: tier {found!r}, but the file was requested as "
                          f"{tier} ({cal.TIER_DESCRIPTIONS[tier]})")
    try:
        return normalise_weekly(frame)
    except ParseError as err:
        raise SourceError(f"{name} line {err.row + 2}: {err}") from None


def render_download(df: pd.DataFrame) -> str:
    """API-layout rows of one summary type in the download file layout (for tests and the
    emulator). Inverse of `parse` for the fields the download layout carries."""
    def number(x) -> str:
        return str(int(x)) if float(x).is_integer() else repr(float(x))

    lines = ["|".join(DOWNLOAD_COLUMNS)]
    for r in df.itertuples(index=False):
        mpid = "" if pd.isna(r.MPID) else r.MPID
        participant = f"{mpid} {r.marketParticipantName}" if mpid else r.marketParticipantName
        lines.append("|".join([r.tierDescription, r.issueSymbolIdentifier, r.issueName,
                               participant, mpid, number(r.totalWeeklyShareQuantity),
                               str(int(r.totalWeeklyTradeCount)), r.lastUpdateDate]))
    return "\n".join(lines) + "\n"


def capture_files(paths: list[Path], *, tier: str, week_start, summary_type: str | None = None,
                  source: str = "finra_files") -> Capture:
    """One capture from one or more files of the same (tier, week), e.g. the ATS and the
    non-ATS download files."""
    if not paths:
        raise SourceError("no files given")
    frames, payload = [], []
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise SourceError(f"{path}: no such file")
        data = path.read_bytes()
        frames.append(parse(data, str(path), tier=tier, week_start=week_start,
                            summary_type=summary_type))
        payload.append((path.name, data))
    week = cal.check_week_start(week_start).isoformat()
    request = {"source": source, "files": [str(Path(p)) for p in paths], "tier": tier,
               "week_start": week}
    return Capture(WEEKLY.name, {"tier": tier, "week_start": week},
                   pd.concat(frames, ignore_index=True), payload, request)


def remedy(config: dict) -> str:
    """What lets a configured source serve weeks none does: FINRA's download files of them,
    named as finra_files looks for them, and finra_files among the configured sources (the
    how-to: spine.ingest.sources.HISTORY_RUNBOOK)."""
    cfg, names = config.get("finra_files") or {}, configured(config)
    pattern = cfg.get("pattern") or DEFAULT_PATTERN
    kinds = f" ({{kind}}: {', '.join(KINDS)})" if "{kind}" in pattern else ""
    add = ("" if "finra_files" in names else
           f" and add finra_files to `source:` (source: [{', '.join([*names, 'finra_files'])}])")
    return (f"download FINRA's files of those weeks from otctransparency.finra.org as "
            f"{Path(cfg.get('dir') or DEFAULT_DIR) / pattern}{kinds}{add}")


class FinraFilesSource(Source):
    """Reads downloaded files from `finra_files.dir`, named by `finra_files.pattern` with the
    placeholders {tier}, {week_start} and {kind} (`ats`, `otc`, or `all` for an API export)."""

    name = "finra_files"
    datasets = {WEEKLY.name: WEEKLY}

    def files(self, tier: str, week_start) -> dict[str, Path]:
        """kind -> the file of (tier, week_start) that `finra_files.dir` and `.pattern` name (a
        pattern without {kind} names one file, of either kind or an API export: `all`)."""
        cfg = self.config.get("finra_files") or {}
        directory = Path(cfg.get("dir") or DEFAULT_DIR)
        pattern = cfg.get("pattern") or DEFAULT_PATTERN
        week = cal.check_week_start(week_start).isoformat()
        kinds = (*KINDS, "all") if "{kind}" in pattern else ("all",)
        return {kind: directory / pattern.format(kind=kind, tier=tier, week_start=week)
                for kind in kinds}

    def serves(self, tier: str, week_start, as_of) -> str | None:
        """The weeks with a file in `finra_files.dir` (any kind: the fetch reads what is there)."""
        files = self.files(tier, week_start)
        if any(p.is_file() for p in files.values()):
            return None
        *first, last = map(str, files.values())
        return f"{self.name}: no file {', '.join(first) + ' or ' if first else ''}{last}"

    def fetch(self, dataset: str, partition: dict[str, str]) -> Capture:
        self.dataset(dataset)
        candidates = self.files(partition["tier"], partition["week_start"])
        found = {k: p for k, p in candidates.items() if p.is_file()}
        if not found:
            raise SourceError(
                f"no file for {partition['tier']} week {partition['week_start']}: looked for "
                f"{', '.join(map(str, candidates.values()))} "
                "(finra_files.dir and finra_files.pattern in config)")
        frames, payload = [], []
        for kind, path in found.items():
            capture = capture_files([path], tier=partition["tier"],
                                    week_start=partition["week_start"],
                                    summary_type=KINDS.get(kind))
            frames.append(capture.table)
            payload += capture.payload
        request = {"source": self.name, "files": [str(p) for p in found.values()], **partition}
        return Capture(dataset, dict(partition), pd.concat(frames, ignore_index=True), payload,
                       request)
