"""`spine status` on a lake damaged on purpose: every gap named with the right reason."""

import datetime as dt
import json
import subprocess
import sys

import pytest

from spine import config as config_
from spine import status
from spine.ingest.ledger import LakeState
from spine.ingest import decide
from spine.ingest import fetch

TIER = "T2"
AS_OF = "2025-08-20"  # T2 weeks up to 2025-07-14 are published (2025-07-14 + 35 = 08-18)
W = [dt.date(2025, 6, 16), dt.date(2025, 6, 23), dt.date(2025, 6, 30), dt.date(2025, 7, 7),
     dt.date(2025, 7, 14)]


@pytest.fixture
def lake(tmp_path):
    cfg = config_.load(lake_root=str(tmp_path / "lake"), as_of=AS_OF, tiers=[TIER],
                       synthetic={"size": "small", "restate": {"every_nth_week": 0}})
    for week in (W[0], W[1]):  # present
        decide.gate(cfg, TIER, week, fetch.fetch(cfg, TIER, week, "k")["capture_id"])
    strict = dict(cfg, gates={**cfg["gates"], "max_row_shares": 1.0})
    decide.gate(strict, TIER, W[2], fetch.fetch(cfg, TIER, W[2], "k")["capture_id"])
    fetch.fetch(cfg, TIER, W[3], "k")  # fetched, never gated
    # W[4]: never fetched (published 2025-08-18, 2 days before as_of: within the grace)
    return cfg


def by_week(entries):
    return {e.week_start: e for e in entries}


def test_every_gap_is_named_with_its_reason_and_fix(lake):
    got = by_week(status.status(lake))
    assert got["2025-06-16"].state == got["2025-06-23"].state == "present"
    held = got["2025-06-30"]
    assert held.state == "held back" and "values_finite (measured" in held.detail
    assert "RESOLVE_QUALITY_GATE.md" in held.fix and "spine override" in held.fix
    assert got["2025-07-07"].state == "not decided" and "refetch" in got["2025-07-07"].fix
    assert got["2025-07-14"].state == "published, not fetched yet"
    assert got["2025-07-21"].state == "not yet published"
    assert "2025-08-25" in got["2025-07-21"].detail
    # later, the same unfetched week is stale
    later = by_week(status.status(lake, as_of="2025-08-28"))
    root = lake["lake_root"]
    assert later["2025-07-14"].state == "stale"  # the weekly update has not run since it was due
    assert later["2025-07-14"].fix == f"snakemake --cores 2 --config lake_root={root}"
    # older than the weekly update's window: a backfill, of this lake
    short = by_week(status.status(dict(lake, revision_lookback_weeks=1), as_of="2025-08-28"))
    assert short["2025-07-14"].fix == ("snakemake --cores 2 backfill --config start=2025-07-14 "
                                       f"end=2025-07-14 'tiers=[T2]' lake_root={root}")
    # a source that has not published a due week: overdue at the source
    source = {TIER: {w for w in W[:4]}}
    overdue = by_week(status.status(lake, as_of="2025-08-28", published=source))
    assert overdue["2025-07-14"].state == "overdue at the source"


def test_the_command_exits_1_when_an_operator_is_needed_and_speaks_json(lake):
    cmd = [sys.executable, "-m", "spine.cli", "status", "--lake-root", lake["lake_root"],
           "--as-of", AS_OF, "--tier", TIER]
    text = subprocess.run(cmd, capture_output=True, text=True)
    assert text.returncode == 1 and "2 week(s) need an operator" in text.stdout
    assert "2025-06-30  held back" in text.stdout and "fix: workflows/incident" in text.stdout
    out = subprocess.run(cmd + ["--json"], capture_output=True, text=True)
    weeks = json.loads(out.stdout)["weeks"]
    assert [w["state"] for w in weeks if w["needs_operator"]] == ["held back", "not decided"]
    fine = subprocess.run(cmd + ["--since", "2025-06-16", "--as-of", "2025-07-22"],
                          capture_output=True, text=True)
    assert fine.returncode == 0 and "Nothing needs an operator" in fine.stdout


def test_first_prints_the_week_and_the_fix_as_shell_variables(lake):
    line = status.first(status.status(lake))
    assert line.startswith("TIER=T2 WEEK=2025-06-30 STATE='held back' CHECKS=values_finite FIX=")
    later = status.status(lake, as_of="2025-08-28", since="2025-06-16")
    gaps = [e for e in later if e.needs_operator and e.state != "held back"]
    assert gaps
    out = subprocess.run(["bash", "-c", f'eval "{status.first(gaps)}"; echo "$FIX"'],
                         capture_output=True, text=True).stdout
    assert out.startswith("snakemake --cores 2 ")


def test_an_empty_lake_needs_one_command_and_a_lake_speaks_of_its_own_tiers(tmp_path, lake):
    """An empty lake: every week the weekly update would fetch is one line and one command
    (not one backfill per week). A T2-only lake under a config of three tiers: status speaks of
    T2 and names the others as never fetched."""
    empty = config_.load(lake_root=str(tmp_path / "empty"), as_of="2025-09-30")
    entries = status.status(empty)
    assert {e.tier for e in entries} == {"T1", "T2", "OTCE"}
    text = status.render(entries, "2025-09-30")
    fixes = [line for line in text.splitlines() if "fix:" in line]
    assert fixes and all(f.endswith(f"fix: snakemake --cores 2 --config lake_root="
                                    f"{tmp_path / 'empty'}") for f in fixes)
    assert len(fixes) <= 6 and "(1 command(s) above)" in text  # two runs a tier at most
    three = dict(lake, tiers=["T1", "T2", "OTCE"])
    assert status.scope(three) == (["T2"], ["T1", "OTCE"])
    out = subprocess.run([sys.executable, "-m", "spine.cli", "status", "--lake-root",
                          lake["lake_root"], "--as-of", AS_OF], capture_output=True, text=True)
    assert "\nT2: " in out.stdout and "\nT1: " not in out.stdout
    assert "Configured but never fetched into this lake: T1, OTCE" in out.stdout


def test_consecutive_gaps_are_one_backfill_and_pins_and_overrides_are_listed(lake):
    root = lake["lake_root"]
    gaps = status.status(dict(lake, revision_lookback_weeks=1), as_of="2025-10-20")
    text = status.render(gaps, "2025-10-20")
    stale = [e for e in gaps if e.state == "stale"]
    assert len(stale) > 3
    assert (f"start={stale[0].week_start} end={stale[-1].week_start} 'tiers=[T2]' "
            f"lake_root={root}") in text
    # an override and a pin are in force: listed, and --first says nothing is left (on stderr)
    decide.override(lake, TIER, W[2], ["values_finite"], "checked with FINRA")
    first = LakeState.read(root).get(TIER, W[0]).held
    decide.pin(lake, TIER, W[0], first, "rollback drill")
    got = by_week(status.status(lake))
    assert got["2025-06-30"].state == "overridden" and got["2025-06-16"].state == "pinned"
    text = status.render(status.status(lake), AS_OF)
    assert "In force: T2 2025-06-16 pinned; T2 2025-06-30 overridden" in text
    cmd = [sys.executable, "-m", "spine.cli", "status", "--lake-root", root, "--as-of", AS_OF,
           "--first", "--since", "2025-06-16"]
    decide.gate(lake, TIER, W[3])  # the week fetched but never decided: decided now
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 1 and done.stdout == ""
    assert "nothing needs an operator in" in done.stderr and "2025-06-30 overridden" in \
        done.stderr


def test_a_week_no_configured_source_holds_is_named_with_what_would_serve_it(lake, tmp_path):
    """With FINRA's API keeping 2 weeks (up to T2 2025-07-14 as of 2025-08-20) and download
    files for 2025-06-09 only, the weeks the lake lacks before the API's window and without a
    file are `no source holds it`, one run on one line with one fix; a week with its file is a
    backfill's (stale), a week the API holds what it was."""
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    (downloads / "T2_2025-06-09_ats.txt").write_text("")
    cfg = dict(lake, source=["finra_api", "finra_files"], finra_api={"history_weeks": 2},
               finra_files={"dir": str(downloads)})
    got = by_week(status.status(cfg, since="2025-05-19"))
    unheld = [w for w, e in got.items() if e.state == "no source holds it"]
    assert unheld == ["2025-05-19", "2025-05-26", "2025-06-02"]
    e = got["2025-06-02"]
    assert e.needs_operator and e.detail.startswith("finra_api: older than FINRA's "
                                                    "weeklySummaryHistoric (~4 years; it holds T2 "
                                                    "from 2025-07-07")
    assert f"finra_files: no file {downloads}/T2_2025-06-02_ats.txt" in e.detail
    assert e.fix.startswith(f"download FINRA's files of those weeks from otctransparency.finra.org "
                            f"as {downloads}/{{tier}}_{{week_start}}_{{kind}}.txt")
    assert "snakemake --cores 2 backfill --config start=2025-06-02 end=2025-06-02" in e.fix
    assert "workflows/operational/BACKFILL_HISTORICAL.md" in e.fix
    assert got["2025-06-09"].state == "stale"  # finra_files has it: a backfill fetches it
    assert got["2025-06-16"].state == "present" and got["2025-06-30"].state == "held back"
    assert got["2025-07-07"].state == "not decided"  # the lake has a record of it: that first
    assert got["2025-07-14"].state == "published, not fetched yet"  # the API holds it
    text = status.render(status.status(cfg, since="2025-05-19"), AS_OF)
    assert ("  2025-05-19  no source holds it         to 2025-06-02 (3 weeks): finra_api: older "
            "than") in text and "T2_<week>_ats.txt" in text
    assert ("fix: download FINRA's files of those weeks from otctransparency.finra.org as "
            f"{downloads}/{{tier}}_{{week_start}}_{{kind}}.txt ({{kind}}: ats, otc), then "
            "snakemake --cores 2 backfill --config start=2025-05-19 end=2025-06-02") in text
    first = status.first(status.status(cfg, since="2025-05-19"))
    assert first.startswith("TIER=T2 WEEK=2025-05-19 STATE='no source holds it' CHECKS='' FIX=")
    # the default source serves these weeks: nothing changes
    assert "no source holds it" not in {e.state for e in status.status(lake, since="2025-05-19")}


def test_the_command_names_them_from_the_config_it_is_given(lake, tmp_path):
    import yaml

    config = dict(lake, source=["finra_api"], finra_api={"history_weeks": 2})
    path = tmp_path / "history.yaml"
    path.write_text(yaml.safe_dump(config))
    cmd = [sys.executable, "-m", "spine.cli", "status", "--configfile", str(path), "--since",
           "2025-06-02"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr
    assert ("2025-06-02  no source holds it         to 2025-06-09 (2 weeks): finra_api: older "
            "than") in proc.stdout
    assert "add finra_files to `source:` (source: [finra_api, finra_files])" in proc.stdout


def test_ask_source_asks_the_configured_sources_that_can_say(lake, monkeypatch):
    from spine.ingest.sources import finra_api

    monkeypatch.setattr(finra_api.FinraApiSource, "available",
                        lambda self, name: {("T2", "2025-06-16")} if name == "weeklySummary"
                        else {("T2", "2025-06-09"), ("T1", "2025-06-09")})
    assert status.source_weeks(dict(lake, source="finra_files"), ["T2"]) is None
    weeks = status.source_weeks(dict(lake, source=["finra_files", "finra_api"]), ["T2"])
    assert weeks == {"T2": {dt.date(2025, 6, 9), dt.date(2025, 6, 16)}}
