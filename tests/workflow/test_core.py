"""The orchestration core's guarantees, each on Snakemake's own job lists (tests.helpers):
one invocation completes its work, a revision reruns exactly what it touches, `reports` never
fetches, damage is rebuilt without re-downloading, and every step gets exactly its config."""

import datetime as dt
import os
import re
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from spine import lake, plan, steps, warm
from spine.ingest import ledger
from spine.derive import registry
from spine.lake import verify
from spine.vocabulary import DATASET_WEEKLY
from tests.helpers import REPO, alive, executed, planned
from tests.workflow.conftest import AS_OF, RESTATED
from spine.ingest import history

pytestmark = pytest.mark.e2e


def test_one_invocation_completes_every_job_it_makes_necessary(revision_runs):
    """After the initial weekly update, the revision and the identical re-fetch, a dry run of
    the same command has nothing to do."""
    for name in AS_OF:
        assert planned(revision_runs.dry[name]) == {}, name
    assert executed(revision_runs.procs["initial"])["clean"] == 8
    assert executed(revision_runs.procs["initial"])["calc"] == 8 * len(
        registry.for_tier("T2", regsho=False))


def test_a_revision_reruns_exactly_what_it_touches(revision_runs):
    """A restated week in the middle of 8: its clean and every calculation of it, the
    multi-week calculations of the later weeks whose windows hold it, those weeks' reports, its
    gate report and revision report, the two indexes and the summary; the 8 fetches and the one
    gate job of the new as_of. Nothing else."""
    state = ledger.LakeState.read(revision_runs.root)
    later = len(state.revision_window("T2", RESTATED)["later"])
    calcs = registry.for_tier("T2", regsho=False)
    windowed = [c for c in calcs if registry.reach(c.name) > 1]
    assert later == 3 and [c.name for c in windowed] == ["symbol_trend", "movers", "venue_trend"]
    assert executed(revision_runs.procs["revised"]) == {
        "fetch": 8, "gate": 1, "gate_report": 1, "clean": 1,
        "calc": len(calcs) + later * len(windowed), "weekly_report": 1 + later,
        "revision_report": 1, "revision_index": 1, "report_index": 1, "gate_summary": 1,
        "retract": 1, "weekly": 1}
    (tier, week, old, new), = state.revisions()
    assert (tier, week.isoformat()) == ("T2", RESTATED) and old != new
    html = lake.path(revision_runs.root, "revision_report", tier=tier, week_start=week, old=old,
                     new=new).read_text()
    assert "added" in html and "Effect on the symbol trend" in html
    # what a reviewer reads: no raw Python reprs, float noise or midnight times, a real title
    from tests.unit.test_report import REPRS

    weekly = sorted((revision_runs.root / "reports" / "weekly").glob("*.html"))
    for page in [html, *(p.read_text() for p in weekly)]:
        text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page)  # the charts
        assert not REPRS.search(text), REPRS.search(text)
        assert "<title>Market Spine: " in page
    index = (revision_runs.root / "reports" / "index.html").read_text()
    assert all(p.name in index for p in weekly) and f"{old}_to_{new}.html" in index
    restated = (revision_runs.root / "reports" / "weekly" / f"week_start={RESTATED}.html")
    assert f"{old}_to_{new}.html" in restated.read_text()  # the week links to its revision


def test_an_identical_refetch_reruns_nothing_downstream(revision_runs):
    jobs = executed(revision_runs.procs["identical"])
    jobs.pop("weekly", None)  # the target rule itself, when Snakemake lists it
    assert jobs == {"fetch": 8, "gate": 1}
    events = history.events(str(revision_runs.root), DATASET_WEEKLY)
    assert (events["event"] == "seen_again").sum() >= 8


def test_reports_never_fetches(revision_runs, tmp_path):
    """`reports` plans from the lake as it is, whatever the date: no fetch, no gate job; a
    deleted report is rebuilt by it."""
    root = revision_runs.copy(tmp_path / "lake")
    assert planned(revision_runs.snake("reports", "-n", root=root)) == {}
    lake.path(root, "weekly_report", week_start=RESTATED).unlink()
    jobs = planned(revision_runs.snake("reports", "-n", root=root))  # as_of: today
    assert jobs == {"weekly_report": 1, "report_index": 1, "reports": 1}
    assert "fetch" not in jobs and "gate" not in jobs and "fetch_regsho" not in jobs


def test_damage_is_rebuilt_by_the_ordinary_command_without_redownloading(revision_runs, tmp_path):
    root = revision_runs.copy(tmp_path / "lake")
    week = dt.date.fromisoformat(RESTATED)
    held = ledger.LakeState.read(root).held("T2", week)
    clean = lake.path(root, "clean", tier="T2", week_start=week)
    before = pd.read_parquet(clean)
    raw_files = sorted(p.name for p in (root / "raw").rglob("*"))
    ledger_files = sorted(p.name for p in (root / "ledger").rglob("*.parquet"))
    damaged = [
        clean,  # a clean partition: rebuilt from its accepted raw capture and the ledger
        lake.path(root, "calc", calc="venue_share", tier="T2", week_start="2025-06-30"),
        lake.path(root, "gate", tier="T2", week_start="2025-05-26",
                  capture_id=ledger.LakeState.read(root).held("T2", dt.date(2025, 5, 26))),
        lake.path(root, "weekly_report", week_start="2025-07-07"),
    ]
    for path in damaged:
        path.unlink()
    proc = revision_runs.snake("--config", f"as_of={AS_OF['identical']}", root=root)
    jobs = executed(proc)
    assert "fetch" not in jobs and "gate" not in jobs
    # clean rebuilt is newer than what read it: the week's 7 calculations and the 3 multi-week
    # ones of each of the 3 later weeks; venue_share of 2025-06-30 and its tier_summary
    assert jobs["clean"] == 1 and jobs["calc"] == 7 + 3 * 3 + 2 and jobs["gate_report"] == 1
    assert all(p.exists() for p in damaged)
    pd.testing.assert_frame_equal(pd.read_parquet(clean), before)
    assert lake.file_metadata(clean)["spine.capture_id"] == held
    assert sorted(p.name for p in (root / "raw").rglob("*")) == raw_files  # nothing fetched
    assert sorted(p.name for p in (root / "ledger").rglob("*.parquet")) == ledger_files
    assert planned(revision_runs.snake("--config", f"as_of={AS_OF['identical']}", "-n",
                                       root=root)) == {}


def test_every_step_gets_exactly_the_config_it_reads():
    """The Snakefile passes each step the keys STEPS declares; a step reading any other key
    fails (the Reg SHO step reads as_of: it is declared, and the plan clips it to the week)."""
    assert "as_of" in steps.STEPS["fetch_regsho"]
    cfg = steps.StepConfig("calc", {"lake_root": "/x"})
    with pytest.raises(KeyError, match="reads config key 'as_of'"):
        cfg["as_of"]
    with pytest.raises(KeyError, match="does not give it"):
        cfg.get("gates")
    with pytest.raises(KeyError, match="declares"):
        steps.StepConfig("fetch_regsho", {"lake_root": "/x"})
    assert plan.regsho_as_of(dt.date(2025, 6, 2), "2025-08-01") == "2025-06-06"
    assert plan.regsho_as_of(dt.date(2025, 6, 2), "2025-06-04") == "2025-06-04"


def test_kill_9_then_the_same_command_completes_with_the_same_lake(tmp_path, revision_runs):
    """kill -9 of the whole run (Snakemake and its jobs) part-way, then the same command with
    no extra flag: it completes, and the lake's content equals the uninterrupted run's."""
    config = dict(revision_runs.config, lake_root=str(tmp_path / "lake"))
    (tmp_path / "config.yaml").write_text(__import__("yaml").safe_dump(config))
    cmd = [sys.executable, "-m", "snakemake", "--configfile", str(tmp_path / "config.yaml"),
           "--config", f"as_of={AS_OF['initial']}"]
    env = dict(os.environ, PATH=f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}")
    lake_dir = tmp_path / "lake"
    # during the fetches, then during the derive stage: killed with steps running in the warm
    # runner, which then end with it (the server sees its run go)
    for started in (lambda: any((lake_dir / "raw").rglob("*.parquet")),
                    lambda: any((lake_dir / "calc").rglob("*.parquet"))):
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 300
        while not started() and time.monotonic() < deadline:
            time.sleep(0.02)
        try:
            running = warm.status(warm.socket_path(str(lake_dir)))
        except OSError:
            running = {"pid": None, "children": []}
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        for pid in [running["pid"], *running["children"]]:
            deadline = time.monotonic() + 15
            while pid and alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not pid or not alive(pid), f"process {pid} outlived its killed run"
    finished = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    again = subprocess.run([*cmd, "-n"], cwd=REPO, env=env, capture_output=True, text=True)
    assert planned(again) == {}
    # the same lake as the uninterrupted run (which has since seen the restatement)
    got, want = ledger.LakeState.read(tmp_path / "lake"), ledger.LakeState.read(revision_runs.root)
    assert got.accepted() == want.accepted()
    (_, restated, old, _), = want.revisions()
    for tier, week in got.accepted():
        assert got.held(tier, week) == (old if week == restated else want.held(tier, week))
        if week == restated:
            continue
        for kind, name in (("clean", None), ("calc", "symbol_week"), ("calc", "venue_share")):
            keys = {"tier": tier, "week_start": week} | ({"calc": name} if name else {})
            pd.testing.assert_frame_equal(pd.read_parquet(lake.path(tmp_path / "lake", kind, **keys)),
                                          pd.read_parquet(lake.path(revision_runs.root, kind, **keys)))
    assert len(list((tmp_path / "lake" / "reports" / "weekly").glob("*.html"))) == 8


def test_what_the_ledger_stops_holding_leaves_every_layer_in_the_next_run(revision_runs, tmp_path):
    """A regate that refuses a week (clean held it alone) and a pin of the restated week back to
    its first capture, then the ordinary `reports`: the refused week's clean and calculations
    go to quarantine, the pinned week's clean holds the pinned capture, the later weeks' windows
    are recomputed without the refused week; pandas, DuckDB and `spine verify` agree, and a
    dry run has nothing to do."""
    import duckdb

    from spine import config as config_
    from spine.ingest import decide

    root = revision_runs.copy(tmp_path / "lake")
    gone = dt.date(2025, 5, 26)
    cfg = config_.load(**dict(revision_runs.config, lake_root=str(root),
                              as_of=AS_OF["identical"]))
    strict = dict(cfg, gates={**cfg["gates"], "max_row_shares": 1.0})
    assert decide.regate(strict, "T2", gone)[0] is None
    (_, restated, old, new), = ledger.LakeState.read(root).revisions()
    decide.pin(cfg, "T2", restated, old, "rolled back for the test")
    before = {p.kind for p in verify.verify(root, regsho=False)}
    assert before == {"orphan", "behind"}  # verify sees both before any run
    jobs = executed(revision_runs.snake("reports", root=root))
    assert jobs["retract"] == 1 and jobs["clean"] == 1
    files = verify.files_on_disk(root)
    assert not [f for f in files if f.startswith(("clean/", "calc/")) and f"={gone}/" in f]
    assert verify.verify(root, regsho=False) == []
    assert lake.file_metadata(lake.path(root, "clean", tier="T2", week_start=restated))[
        "spine.capture_id"] == old
    seen = set(pd.read_parquet(root / "calc" / "symbol_week")["week_start"].astype(str).str[:10])
    duck = {r[0] for r in duckdb.connect().execute(
        f"select distinct cast(week_start as varchar) from read_parquet('{root}/calc/"
        "symbol_week/**/*.parquet', hive_partitioning=true)").fetchall()}
    held = {w.isoformat() for _, w in ledger.LakeState.read(root).accepted()}
    assert seen == duck == held and str(gone) not in held
    assert planned(revision_runs.snake("reports", "-n", root=root)) == {}


def test_quiet_runs_loud_failures(revision_runs, tmp_path):
    """A successful run ends with its summary; a failed step says the step, its partition, the
    error's own message and where its notebook and log are, in a few lines, and never prints
    the executed notebook."""
    tail = (revision_runs.procs["identical"].stderr.strip().splitlines())[-6:]
    assert any(line.startswith("Run summary (weekly, as of 2025-08-16)") for line in tail), tail
    assert any(line.startswith("Next: nothing to do") for line in tail), tail
    root = revision_runs.copy(tmp_path / "lake")
    proc = revision_runs.snake("symbol", "--config", "symbol=NOPE", "tier=T2", check=False,
                               root=root)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and '"cells"' not in out and "Traceback" not in out
    lines = out.splitlines()
    first = next(i for i, line in enumerate(lines) if "failed:" in line)
    assert lines[first].startswith("step symbol_report (tier=T2, symbol=NOPE) failed: "
                                   "ValueError: symbol 'NOPE' has no rows")
    assert "runs/symbol_report/tier=T2/symbol=NOPE.ipynb" in lines[first + 1]
    assert "logs/symbol_report/tier=T2/symbol=NOPE.log" in lines[first + 2]
    assert len(lines) - first < 20 and "resumes" in lines[-1] + lines[-2] + lines[-3] + \
        lines[-4] + lines[-5]
