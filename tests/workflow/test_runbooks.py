"""Every runbook is executed as written: each ```bash block, in order, in one shell, in a scratch
copy of the repository (so `data/` is the copy's), with the project's environment on PATH.

The copy's config/config.yaml is the repository's with a smaller synthetic source (`small`,
OTCE only, a 1-week lookback) so that the weekly update and backfills fit in the test suite;
the commands themselves are not changed. Commands that name their own tiers or lake_root keep
them."""

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.helpers import REPO

pytestmark = pytest.mark.e2e
RUNBOOKS = REPO / "workflows"


def runbooks() -> list[Path]:
    """The runbooks: workflows/<kind>/*.md (workflows/examples/ holds the files they use)."""
    return sorted(p for p in RUNBOOKS.glob("*/*.md") if p.parent.name != "examples")


def bash_blocks(markdown: Path) -> list[str]:
    """The ```bash blocks, as a reader copies them from the rendered page: without the
    indentation of the list item they sit in (a heredoc's end marker must start its line)."""
    return [textwrap.dedent(b) for b in re.findall(r"```bash\n(.*?)```", markdown.read_text(),
                                                   re.S)]


def scratch_repo(tmp_path: Path) -> Path:
    work = tmp_path / "repo"
    ignore = shutil.ignore_patterns(".git", ".venv", "data", ".snakemake", "__pycache__")
    shutil.copytree(REPO, work, ignore=ignore)
    config = yaml.safe_load((work / "config" / "config.yaml").read_text())
    config.update(tiers=["OTCE"], revision_lookback_weeks=1)
    config["synthetic"]["size"] = "small"
    (work / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return work


def run_runbook(path: Path, tmp_path: Path, blocks: list[str] | None = None) -> str:
    """Run `blocks` (default: every bash block of `path`) in one shell in a scratch repo.
    `BACKUP` (where the runbooks' `spine backup` writes) is a folder of the test's."""
    blocks = blocks if blocks is not None else bash_blocks(path)
    assert blocks, f"{path} has no bash block"
    work = scratch_repo(tmp_path)
    # `set -x` echoes each command so a failure shows which one; demonstration lakes under
    # /tmp/market-spine-* are the runbooks' own, removed before and after
    script = "set -euxo pipefail\n" + "\n".join(blocks)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
               BACKUP=str(tmp_path / "backup"))
    for demo in Path("/tmp").glob("market-spine-*demo"):
        shutil.rmtree(demo)
    try:
        proc = subprocess.run(["bash", "-c", script], cwd=work, env=env, capture_output=True,
                              text=True, timeout=1200)
    finally:
        for demo in Path("/tmp").glob("market-spine-*demo"):
            shutil.rmtree(demo, ignore_errors=True)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{path.name} failed:\n{out[-6000:]}"
    assert "Traceback" not in out, out[-6000:]
    return out


def test_every_runbook_is_tested():
    tested = {"WEEKLY_DATA_UPDATE.md", "BACKFILL_HISTORICAL.md", "HANDLE_REVISION.md",
              "ADD_DATASOURCE.md", "ADD_CALCULATION.md", "DATABASE_RECOVERY.md",
              "RESOLVE_QUALITY_GATE.md", "DEBUG_MISSING_DATA.md"}
    have = {p.name for p in runbooks()}
    assert have == tested, "a runbook without a test (add it here and below)"


def test_weekly_data_update_runbook(tmp_path):
    out = run_runbook(RUNBOOKS / "operational" / "WEEKLY_DATA_UPDATE.md", tmp_path)
    assert "Gate summary: " in out and " 0 failed" in out
    assert out.count("Nothing to be done") >= 2  # after the run and after the repair
    repair = out.split("rm ")[-1]
    assert "calc" in repair and "(Rule: fetch)" not in repair  # rebuilt, never re-fetched


def test_backfill_runbook(tmp_path):
    out = run_runbook(RUNBOOKS / "operational" / "BACKFILL_HISTORICAL.md", tmp_path)
    assert "Gate summary: 3 passed, 0 failed" in out and "Nothing to be done" in out
    assert re.search(r"OTCE\s*│\s*3", out), "DuckDB counts three weeks"
    # Years before FINRA's API: weeks no configured source holds are named, never fetched;
    # downloaded files then serve their week (out: the script's stdout, then its stderr)
    history = out.split("+ DEMO=/tmp/market-spine-history-demo", 1)[1]
    before, after = history.split("+ cp workflows/examples/T2_2025-07-07_ats.txt", 1)
    assert "nothing fetched: no configured source holds any of the 2 partition(s)" in before
    assert ("  not held by any configured source: T2 2025-06-30 .. 2025-07-07 (2 weeks): "
            "finra_api: older than FINRA's weeklySummaryHistoric") in before
    assert "(Rule: fetch)" not in before and "Next: for the weeks no configured source" in before
    assert "(Rule: fetch)" in after and "Gate summary: 1 passed, 0 failed" in after
    assert re.search(r"^  not held by any configured source: T2 2025-06-30 \(1 week\): "
                     r"finra_api: .*; finra_files: no file /tmp/market-spine-history-demo/"
                     r"downloads/T2_2025-06-30_ats\.txt", after, re.M)
    assert re.search(r"^  2025-06-30  no source holds it +finra_api: older than", out, re.M)
    assert re.search(r"^  2025-07-07  present +clean holds", out, re.M)
    assert not (tmp_path / "repo" / "data" / "raw" / "finra_otc_weekly" / "tier=T2").exists()


def test_handle_revision_runbook(tmp_path):
    """The demonstration: a restatement re-fetched, then the restated download files of
    workflows/examples/ imported (gated, accepted, derived); afterwards neither the weekly update
    nor `reports` has anything to do; the rollback pins the version before the import."""
    out = run_runbook(RUNBOOKS / "operational" / "HANDLE_REVISION.md", tmp_path)
    # (out is the script's stdout, then its stderr: the `set -x` trace and Snakemake's log)
    assert re.search(r"^[\d,]+ added, [\d,]+ removed, [\d,]+ changed$", out, re.M)
    assert re.search(r"^[0-9a-f]{16}_to_[0-9a-f]{16}\.html$", out, re.M)  # ls: the report
    assert re.search(r"^captured 1,467 rows of T2 week 2025-07-07 as \w+ \(new capture\)", out,
                     re.M)
    assert re.search(r"^gate: PASS$", out, re.M) and "recorded as accepted" in out
    assert "FAIL" not in out.split("gate: PASS", 1)[1].split("recorded as accepted")[0]
    derived = out.split("+ spine import-file", 1)[1].split("+ python")[0]
    assert "(Rule: revision_report)" in derived and "(Rule: clean)" in derived
    assert "(Rule: fetch)" not in derived  # reports never fetches
    assert out.count("Nothing to be done") == 2  # the weekly update's and reports' dry runs
    assert "clean pinned to" in out
    assert not (tmp_path / "repo" / "data").exists(), "the demonstration never writes data/"


def test_example_download_files_are_finras_layout():
    """workflows/examples/T2_2025-07-07_*.txt: FINRA's download layout exactly (8 columns, no
    week, LF, unquoted), with what real files of a 2025 week hold: whole share quantities
    (fractional ones start with the week of 2026-02-23), FINRA's ATS MPIDs, non-ATS firms
    without an MPID (each firm reports itself: no pooled "De Minimis Firms" line after
    2019-11-11), issue names with two spaces, one line per venue and security (no product
    type); each file one kind, told apart by its venues."""
    from spine.ingest import ats
    from spine.ingest.sources import finra_files

    examples = REPO / "workflows" / "examples"
    kinds = {}
    for kind in ("ats", "otc"):
        path = examples / f"T2_2025-07-07_{kind}.txt"
        data = path.read_bytes()
        assert b"\r" not in data and b'"' not in data and data.endswith(b"\n")
        lines = data.decode().splitlines()
        assert lines[0] == "|".join(finra_files.DOWNLOAD_COLUMNS)
        assert all(line.count("|") == 7 for line in lines)
        df = finra_files.parse(data, path.name, tier="T2", week_start="2025-07-07")
        assert len(df) == len(lines) - 1 and set(df["tierIdentifier"]) == {"T2"}
        kinds[kind] = df
    assert set(kinds["ats"]["summaryTypeCode"]) == {"ATS_W_SMBL_FIRM"}
    assert set(kinds["otc"]["summaryTypeCode"]) == {"OTC_W_SMBL_FIRM"}
    both = pd.concat(kinds.values())
    shares = both["totalWeeklyShareQuantity"]
    assert (shares > 0).all() and (shares == shares.round()).all()  # whole shares in 2025
    assert set(kinds["ats"]["MPID"]) <= ats.mpids()
    no_mpid = kinds["otc"][kinds["otc"]["MPID"].isna()]
    assert len(no_mpid) > 10 and no_mpid["marketParticipantName"].str.len().gt(0).all()
    assert not both["marketParticipantName"].str.contains("De Minimis", case=False).any()
    assert both["issueName"].str.contains("  ").any()
    key = ["summaryTypeCode", "issueSymbolIdentifier", "issueName", "MPID",
           "marketParticipantName"]
    assert not both.duplicated(key).any()  # one line per venue: no product type
    assert set(both["lastUpdateDate"]) == {"2025-08-11", "2025-08-21", "2025-09-02"}


def test_every_file_a_runbook_names_ships_in_the_repo():
    """Every repository path a runbook command names (workflows/..., .test/..., tests/data/...)
    exists."""
    named = set()
    for path in runbooks():
        for block in bash_blocks(path):
            named |= set(re.findall(r"(?<![\w/])((?:workflows|\.test|tests/data)/[\w./-]+)", block))
    assert "workflows/examples/T2_2025-07-07_ats.txt" in named
    assert ".test/config/held-back.yaml" in named
    missing = sorted(p for p in named if not (REPO / p).exists())
    assert not missing, f"runbook commands name files the repository does not have: {missing}"


def test_add_datasource_runbook(tmp_path):
    out = run_runbook(RUNBOOKS / "development" / "ADD_DATASOURCE.md", tmp_path)
    assert "passed" in out and "Gate summary: 1 passed, 0 failed" in out
    assert "(Rule: fetch_regsho)" in out
    assert re.search(r"^week_start=2025-06-02$", out, re.M)  # ls: its short_volume_weekly
    for day in ("2025-06-02", "2025-06-03", "2025-06-04", "2025-06-05", "2025-06-06"):
        assert day in out
    assert not (tmp_path / "repo" / "data").exists(), "the demonstration never writes data/"


# After the runbook's last step, in the same shell: the new calculation's files read back and
# checked against its schema, the weekly report and the data contract of the scratch copy.
CALC_CHECK = """python - <<'EOF'
import glob, pandas as pd, pyarrow.parquet as pq
from spine import schemas
lake = '/tmp/market-spine-calc-demo'
df = pd.read_parquet(f'{lake}/calc/trade_size_buckets')
schemas.TradeSizeBuckets.validate(df.drop(columns=['tier', 'week_start']).assign(
    week_start=pd.to_datetime(df['week_start'].astype(str)), tier=df['tier'].astype(str))[
    list(schemas.TradeSizeBuckets.to_schema().columns)])
sums = df.groupby(['week_start', 'summary_type'], observed=True)['share_of_shares'].sum()
print('trade_size_buckets rows', len(df), 'weeks', df['week_start'].nunique(),
      'sums', sorted(set(sums.round(9))))
report = open(sorted(glob.glob(f'{lake}/reports/weekly/*.html'))[-1]).read()
print('in the report:', 'trade_size_buckets' in report)
EOF"""


def test_add_calculation_runbook(tmp_path):
    """The worked example really adds a calculation in a scratch copy: its test passes, its
    Parquet holds every week and passes its schema, it is in the data contract and the weekly
    report, and a version bump reruns exactly it (and the reports)."""
    path = RUNBOOKS / "development" / "ADD_CALCULATION.md"
    out = run_runbook(path, tmp_path, bash_blocks(path) + [CALC_CHECK])
    assert re.search(r"^\d+ passed", out, re.M)
    assert re.search(r"^trade_size_buckets rows \d+ weeks 2 ", out, re.M)
    assert "Gate summary: 2 passed, 0 failed" in out
    bump = out.split("sed -i")[1]
    assert re.search(r"^calc\s+2$", bump, re.M) and re.search(r"^weekly_report\s+2$", bump, re.M)
    assert not re.search(r"^(clean|fetch|gate)\s+\d", bump, re.M)
    assert "Nothing to be done" in out and "['2']" in out  # after the bump's run
    assert "trade_size_buckets rows" in out and "weeks 2 sums [1.0]" in out
    assert "in the report: True" in out
    contract = (tmp_path / "repo" / "docs" / "data-contract.md").read_text()
    assert "## calc/trade_size_buckets" in contract and "`share_of_shares`" in contract
    assert not (tmp_path / "repo" / "data").exists(), "the demonstration never writes data/"


def test_readme_pipeline_revision_and_research_commands(tmp_path):
    """The README's "Running the pipeline", "Revisions" and "Research" commands, in order, as
    written."""
    readme = (REPO / "README.md").read_text()
    blocks = []
    for heading in ("## Running the pipeline", "## Revisions", "## Research"):
        section = readme.split(heading, 1)[1].split("\n## ", 1)[0]
        blocks += re.findall(r"```bash\n(.*?)```", section, re.S)
    assert len(blocks) == 3
    out = run_runbook(REPO / "README.md", tmp_path, blocks)
    assert re.search(r"^\d+ added, \d+ removed, \d+ changed$", out, re.M)
    assert "Nothing to be done" in out
    assert "change_per_day" in out and "calculation sections are current" in out
    symbols = list((tmp_path / "repo" / "data" / "reports" / "symbols").glob("tier=*/symbol=*.html"))
    assert len(symbols) == 1
    index = (tmp_path / "repo" / "data" / "reports" / "index.html").read_text()
    assert symbols[0].name in index and "weekly/week_start=" in index


# What the recovery runbook's steps assume, done to the lake before each (bash, in the copy).
CLEAN = "data/clean/finra_otc_weekly"
DIGEST = ("python -c \"import pandas as pd, glob; from spine import lake; "
          "print('content', *[lake.content_hash(pd.read_parquet(f)) for f in "
          "sorted(glob.glob('data/clean/**/*.parquet', recursive=True) + "
          "glob.glob('data/calc/**/*.parquet', recursive=True))])\"")
DAMAGE = {
    1: f'rm "$(ls data/calc/venue_share/*/*/part-0.parquet | head -1)"\n'
       f'truncate -s 500 "$(ls {CLEAN}/*/*/part-0.parquet | tail -1)"',
    3: 'f="$(ls data/raw/finra_otc_weekly/*/*/*.parquet | head -1)"; '
       'python -c "import sys; p = sys.argv[1]; b = bytearray(open(p, \'rb\').read()); '
       'b[100:110] = bytes(10); open(p, \'wb\').write(b)" "$f"',
    4: 'f="$(ls data/raw/finra_otc_weekly/*/*/*.parquet | tail -1)"; truncate -s 1000 "$f"',
    5: 'rm "$(ls data/ledger/finra_otc_weekly/*/*/*-accepted-*.parquet | tail -1)"',
    6: "rm -rf data",
    7: "rm -rf data/manifest",
}


def test_database_recovery_runbook(tmp_path):
    """Each step on a lake damaged the way the step says; the content of clean and every
    calculation at the end equals the content before any damage."""
    blocks = bash_blocks(RUNBOOKS / "incident" / "DATABASE_RECOVERY.md")
    assert len(blocks) == 9, "the test damages the lake before each step: update DAMAGE"
    script = ['snakemake --cores 2 > /dev/null 2>&1', 'spine backup "$BACKUP"',
              f"{DIGEST} > before.txt"]
    for i, block in enumerate(blocks):
        if i in DAMAGE:
            script.append(DAMAGE[i])
        script.append(block)
    script.append(f"{DIGEST} > after.txt")
    out = run_runbook(RUNBOOKS / "incident" / "DATABASE_RECOVERY.md", tmp_path, script)
    assert "spine verify found damage (exit status 1)" in out
    assert re.search(r"^missing +data/calc/venue_share/|^missing +calc/venue_share/", out, re.M)
    assert re.search(r"^rebuild +calc/venue_share/.*\(missing\)", out, re.M)
    assert re.search(r"^rebuild +clean/finra_otc_weekly/.*\(truncated\)", out, re.M)
    assert re.search(r"^restored +raw/finra_otc_weekly/.*parquet from ", out, re.M)
    assert re.search(r"^refetch +raw/finra_otc_weekly/.*no backup", out, re.M)
    assert re.search(r"^restored +ledger/finra_otc_weekly/.*-accepted-", out, re.M)
    assert re.search(r"^restored \d+ of \d+ files from ", out, re.M)
    assert re.search(r"^recorded +raw/finra_otc_weekly/", out, re.M)
    assert "cannot " not in out
    assert out.count("verifies: every file matches") == 6
    assert "no problem" in out and "Nothing to be done" in out
    before, after = ((tmp_path / "repo" / f).read_text() for f in ("before.txt", "after.txt"))
    assert before.startswith("content ") and len(before.split()) >= 6  # clean + 5 calcs
    assert after == before, "clean and every calculation hold the same rows as before the damage"


# After the revoke and its `reports` (the runbook's fifth block), in the same shell: the lake
# equals its ledger (clean and the calculations of the week no longer held are gone).
REVOKED = ('spine verify --lake-root "$LAKE" && echo "after the revoke: verified" '
           '|| echo "after the revoke: spine verify exit status $?"')
# After the runbook's last step: the held-back week's weekly report in the demonstration lake
# (removed when the script ends).
GATE_REPORT = ('for f in "$LAKE"/reports/weekly/*.html; do '
               'grep -q "Refused by a gate" "$f" && echo "refused in $f" || echo "accepted in $f"; '
               'done')


def test_resolve_quality_gate_runbook(tmp_path):
    """The practice (a gate setting wrong on purpose, from .test/config/held-back.yaml)
    holds the latest OTCE week back by values_finite on a demonstration lake; the runbook
    overrides it, revokes that, then decides it again under config/config.yaml."""
    path = RUNBOOKS / "incident" / "RESOLVE_QUALITY_GATE.md"
    blocks = bash_blocks(path)
    assert len(blocks) == 7
    assert "LAKE=/tmp/market-spine-gate-demo" in blocks[0] and "--revoke" in blocks[4]
    out = run_runbook(path, tmp_path, [*blocks[:5], REVOKED, *blocks[5:], GATE_REPORT])
    assert "held back on purpose (exit status 1)" in out
    assert "Gate summary: 0 passed, 1 failed" in out
    assert "something needs an operator (exit status 1)" in out
    assert re.search(r"^OTCE \d{4}-\d\d-\d\d: held back by values_finite$", out, re.M)
    assert "overridden; clean holds" in out and "override revoked; clean holds nothing" in out
    assert re.search(r"^PASS  OTCE  .*-> clean now holds", out, re.M)
    assert "Nothing needs an operator." in out
    assert "after the revoke: verified" in out, "derived files of a week the ledger let go stay"
    assert "Nothing to be done" in out, "after `reports`, `reports -n` plans a job again"
    assert re.search(r"^accepted in /tmp/market-spine-gate-demo/reports/weekly/", out, re.M)
    assert "refused in " not in out  # decided again: accepted
    assert not (tmp_path / "repo" / "data").exists(), "the practice never writes data/"


def test_debug_missing_data_runbook(tmp_path):
    """The practice: a weekly update as of three weeks ago on a demonstration lake, so the
    weeks published since are missing (stale); status names them and its fix, naming the lake,
    fetches them."""
    path = RUNBOOKS / "incident" / "DEBUG_MISSING_DATA.md"
    blocks = bash_blocks(path)
    assert len(blocks) == 6
    assert "LAKE=/tmp/market-spine-missing-demo" in blocks[0]
    out = run_runbook(path, tmp_path)
    assert "something needs an operator (exit status 1)" in out
    assert re.search(r"^  \d{4}-\d\d-\d\d  stale +(to \d{4}-\d\d-\d\d \(\d+ weeks\): )?"
                     r"published", out, re.M)
    assert re.search(r"^OTCE \d{4}-\d\d-\d\d is stale; fix: snakemake --cores 2 backfill .*"
                     r"lake_root=/tmp/market-spine-missing-demo", out, re.M)
    fixed = out.split("+ eval 'snakemake", 1)[1]
    assert "Gate summary: " in fixed and " 0 failed" in fixed
    assert "Nothing needs an operator." in out and "Nothing to be done" in out
    assert not (tmp_path / "repo" / "data").exists(), "the practice never writes data/"
