"""Which source serves which week: each source's window (`Source.serves`), the preference order
of `source:` (`spine.ingest.sources.catalog.for_partition`), the plan's split of a run into the
weeks a source serves and those none does (`spine.plan.coverage`), and the run summary naming
the latter."""

import datetime as dt

import pytest

from spine import calendar as cal
from spine import config as config_
from spine import plan
from spine.reports.summary import run_summary
from spine.ingest import sources
from spine.ingest.sources import catalog, finra_api
from spine.ingest.sources.synthetic import SyntheticSource
from spine.ingest.sources.synthetic_market import EPOCH
from spine.ingest import ledger
from spine.vocabulary import TIERS

AS_OF = "2026-12-03"
RUNBOOK = "workflows/operational/BACKFILL_HISTORICAL.md"


@pytest.fixture(autouse=True)
def no_credentials(monkeypatch):
    """The FINRA API source reads credentials when it is built; none here (and no network:
    a source's window is the calendar's and the file system's, never a request)."""
    monkeypatch.delenv("FINRA_CLIENT_ID", raising=False)
    monkeypatch.delenv("FINRA_CLIENT_SECRET", raising=False)


def cfg(tmp_path, **overrides):
    overrides = {"finra_files": {"dir": str(tmp_path / "downloads")}, **overrides}
    return config_.load(lake_root=str(tmp_path / "lake"), as_of=AS_OF, **overrides)


def download(tmp_path, tier, week, kinds=("ats", "otc")):
    (tmp_path / "downloads").mkdir(exist_ok=True)
    for kind in kinds:
        (tmp_path / "downloads" / f"{tier}_{week}_{kind}.txt").write_text("")


@pytest.mark.parametrize("tier", TIERS)
def test_finra_api_serves_the_4_years_up_to_the_tiers_latest_published_week(tmp_path, tier):
    api = catalog.get("finra_api", cfg(tmp_path))
    latest = cal.latest_published_week(tier, AS_OF)
    oldest = latest - dt.timedelta(weeks=finra_api.HISTORY_WEEKS - 1)
    assert finra_api.HISTORY_WEEKS == 208
    assert api.serves(tier, latest, AS_OF) is None
    assert api.serves(tier, oldest, AS_OF) is None  # the 208th week back
    assert api.serves(tier, oldest.isoformat(), AS_OF) is None
    why = api.serves(tier, oldest - dt.timedelta(weeks=1), AS_OF)  # the 209th
    assert why.startswith("finra_api: older than FINRA's weeklySummaryHistoric (~4 years; "
                          f"it holds {tier} from {oldest}, finra_api.history_weeks: 208)")
    assert "download files hold it" in why and RUNBOOK in why
    # from the tier's own publication calendar: T1 is published two weeks before T2 and OTCE
    assert oldest == {"T1": dt.date(2022, 11, 21), "T2": dt.date(2022, 11, 7),
                      "OTCE": dt.date(2022, 11, 7)}[tier]


def test_finra_api_window_is_configurable_and_moves_with_as_of(tmp_path):
    api = catalog.get("finra_api", cfg(tmp_path, finra_api={"history_weeks": 52}))
    latest = cal.latest_published_week("T2", "2025-09-05")
    assert latest == dt.date(2025, 7, 28)
    assert api.serves("T2", "2024-08-05", "2025-09-05") is None  # 52 weeks up to 2025-07-28
    assert "history_weeks: 52" in api.serves("T2", "2024-07-29", "2025-09-05")
    assert api.serves("T2", "2024-07-29", "2025-09-12") is not None
    assert api.serves("T2", "2025-08-04", "2025-09-05") is None  # not yet published: not its say


def test_finra_files_serves_the_weeks_whose_files_are_downloaded(tmp_path):
    files = catalog.get("finra_files", cfg(tmp_path))
    d = tmp_path / "downloads"
    assert files.serves("T1", "2016-06-06", AS_OF) == (
        f"finra_files: no file {d}/T1_2016-06-06_ats.txt, {d}/T1_2016-06-06_otc.txt or "
        f"{d}/T1_2016-06-06_all.txt")
    download(tmp_path, "T1", "2016-06-06", kinds=("ats",))  # one kind is what the fetch reads
    assert files.serves("T1", "2016-06-06", AS_OF) is None
    assert files.serves("T1", dt.date(2016, 6, 6), AS_OF) is None
    assert files.serves("T2", "2016-06-06", AS_OF) is not None  # another tier's file
    download(tmp_path, "OTCE", "2016-06-13", kinds=("all",))  # an API export
    assert files.serves("OTCE", "2016-06-13", AS_OF) is None


def test_finra_files_reads_its_pattern(tmp_path):
    config = cfg(tmp_path, finra_files={"dir": str(tmp_path), "pattern": "{week_start}/{tier}.txt"})
    files = catalog.get("finra_files", config)
    assert files.serves("T2", "2016-06-06", AS_OF) == (
        f"finra_files: no file {tmp_path}/2016-06-06/T2.txt")  # no {kind}: one file
    (tmp_path / "2016-06-06").mkdir()
    (tmp_path / "2016-06-06" / "T2.txt").write_text("")
    assert files.serves("T2", "2016-06-06", AS_OF) is None


def test_a_source_serves_every_week_unless_it_says_otherwise(tmp_path):
    class Anything(sources.Source):
        name = "anything"
        datasets = {}

    assert Anything({}).serves("T1", "2014-06-02", AS_OF) is None


def test_source_names_one_source_or_several_in_preference_order(tmp_path):
    assert sources.configured({"source": "finra_api"}) == ["finra_api"]
    assert sources.configured({"source": ["finra_api", "finra_files"]}) == ["finra_api",
                                                                           "finra_files"]
    both = cfg(tmp_path, source=["finra_api", "finra_files"])
    recent, old = "2025-06-02", "2016-06-06"
    source, why = catalog.for_partition(both, "T2", recent)
    assert source.name == "finra_api" and why == []
    source, why = catalog.for_partition(both, "T2", old)  # older than the API, no file
    assert source is None and [w.split(":")[0] for w in why] == ["finra_api", "finra_files"]
    download(tmp_path, "T2", old)
    download(tmp_path, "T2", recent)
    source, why = catalog.for_partition(both, "T2", old)
    assert source.name == "finra_files" and why[0].startswith("finra_api: older than")
    assert catalog.for_partition(both, "T2", recent)[0].name == "finra_api"  # the first wins
    files_first = cfg(tmp_path, source=["finra_files", "finra_api"])
    assert catalog.for_partition(files_first, "T2", recent)[0].name == "finra_files"
    assert catalog.for_partition(files_first, "T2", "2025-06-09")[0].name == "finra_api"
    # the config's as_of, or another day's
    assert catalog.for_partition(cfg(tmp_path, source="finra_api"), "T2", "2022-11-07")[0]
    assert catalog.for_partition(cfg(tmp_path, source="finra_api"), "T2", "2022-11-07",
                                 as_of="2026-12-31")[0] is None


def test_the_config_takes_one_source_or_a_list_of_distinct_ones(tmp_path):
    assert cfg(tmp_path, source=["finra_api", "finra_files"])["source"] == ["finra_api",
                                                                           "finra_files"]
    for bad, message in (([], "should be non-empty"), (["finra_api", "finra_api"], "non-unique"),
                         ("nope", "is not one of"), (["nope"], "source.0")):
        with pytest.raises(config_.ConfigError, match=message):
            cfg(tmp_path, source=bad)
    with pytest.raises(config_.ConfigError, match="finra_api.history_weeks"):
        cfg(tmp_path, finra_api={"history_weeks": 0})


def backfill(tmp_path, start, end, **overrides):
    config = cfg(tmp_path, start=start, end=end, **overrides)
    return config, plan.coverage(config, plan.backfill(config))


def test_the_plan_fetches_what_a_source_serves_and_names_the_rest(tmp_path):
    # T1 as of 2026-12-03: the API holds it from 2022-11-21
    download(tmp_path, "T1", "2022-10-31")
    config, cover = backfill(tmp_path, "2022-10-17", "2022-12-05", tiers=["T1"],
                             source=["finra_api", "finra_files"])
    assert cover.served == {("T1", dt.date(2022, 10, 31)): "finra_files",
                            **{("T1", dt.date(2022, 11, 21) + dt.timedelta(weeks=k)): "finra_api"
                               for k in range(3)}}
    assert cover.parts == [p for p in plan.backfill(config) if p in cover.served]  # run order
    assert sorted(cover.unheld) == [("T1", dt.date(2022, 10, 17)), ("T1", dt.date(2022, 10, 24)),
                                    ("T1", dt.date(2022, 11, 7)), ("T1", dt.date(2022, 11, 14))]
    # consecutive weeks for the same reasons are one run; the file in between splits them
    runs = cover.unheld_runs()
    assert [(t, a.isoformat(), b.isoformat(), n) for t, a, b, n, _ in runs] == [
        ("T1", "2022-10-17", "2022-10-24", 2), ("T1", "2022-11-07", "2022-11-14", 2)]
    assert "T1_<week>_ats.txt" in runs[0][4] and "2022-10-17" not in runs[0][4]
    assert "finra_api: older than" in runs[0][4]
    assert "download FINRA's files" in cover.remedy and "add finra_files" not in cover.remedy


def test_a_backfill_before_every_window_is_all_named(tmp_path):
    _, cover = backfill(tmp_path, "2016-06-06", "2016-06-20", tiers=["T1", "OTCE"],
                        source="finra_api")
    assert cover.parts == [] and len(cover.unheld) == 6
    lines = cover.unheld_lines()
    assert len(lines) == 2  # a line per tier: its run of weeks
    assert lines[0].startswith("not held by any configured source: T1 2016-06-06 .. 2016-06-20 "
                               "(3 weeks): finra_api: older than FINRA's weeklySummaryHistoric")
    assert lines[1].startswith("not held by any configured source: OTCE 2016-06-06 .. 2016-06-20")
    # with finra_api alone, the fix says to add the download files to `source:`
    assert cover.remedy == (
        f"download FINRA's files of those weeks from otctransparency.finra.org as "
        f"{tmp_path}/downloads/{{tier}}_{{week_start}}_{{kind}}.txt ({{kind}}: ats, otc) and add "
        "finra_files to `source:` (source: [finra_api, finra_files])")


def test_one_week_is_named_by_its_own_date(tmp_path):
    _, cover = backfill(tmp_path, "2016-06-06", "2016-06-06", tiers=["T2"], source="finra_files")
    assert cover.unheld_lines() == [
        "not held by any configured source: T2 2016-06-06 (1 week): finra_files: no file "
        f"{tmp_path}/downloads/T2_2016-06-06_ats.txt, {tmp_path}/downloads/T2_2016-06-06_otc.txt "
        f"or {tmp_path}/downloads/T2_2016-06-06_all.txt"]


def test_a_weekly_update_on_the_api_is_all_served(tmp_path):
    config = cfg(tmp_path, source=["finra_api", "finra_files"])
    cover = plan.coverage(config, plan.weekly(config))
    assert cover.parts == plan.weekly(config) and not cover.unheld and cover.remedy == ""
    assert set(cover.served.values()) == {"finra_api"}


def test_the_run_summary_names_the_weeks_no_source_holds_and_what_to_do(tmp_path):
    root = str(tmp_path / "lake")
    _, cover = backfill(tmp_path, "2022-11-07", "2022-11-28", tiers=["T1"], source="finra_api")
    assert len(cover.parts) == 2 and len(cover.unheld) == 2
    record = {"partitions": [
        {"tier": "T1", "week_start": w, "new_capture": True, "status": "PASS",
         "capture_id": c, "clean_holds": c}
        for w, c in (("2022-11-21", "a" * 16), ("2022-11-28", "b" * 16))]}
    gates = "Gate summary: 2 passed, 0 failed\n"
    text = run_summary(root, "backfill", AS_OF, record, ledger.LakeState({}), gates, cover)
    lines = text.splitlines()
    assert lines[0].startswith("Run summary (backfill, as of 2026-12-03): 2 partition(s) fetched")
    assert lines[1].startswith("  not held by any configured source: T1 2022-11-07 .. 2022-11-14 "
                               "(2 weeks): finra_api: older than FINRA's weeklySummaryHistoric")
    assert lines[2].startswith("Gate summary: 2 passed, 0 failed; reports: ")
    assert lines[3] == (f"Next: for the weeks no configured source holds, {cover.remedy}, then "
                        f"the same command again ({RUNBOOK})")
    # without such weeks, the summary is what it was
    plain = run_summary(root, "backfill", AS_OF, record, ledger.LakeState({}), gates)
    assert plain.splitlines()[-1] == "Next: nothing to do" and "not held" not in plain
    assert plain == run_summary(root, "backfill", AS_OF, record, ledger.LakeState({}),
                                gates, plan.Coverage())


def test_a_run_that_fetched_nothing_still_says_why(tmp_path):
    root = str(tmp_path / "lake")
    _, cover = backfill(tmp_path, "2016-06-06", "2016-06-20", tiers=["T1"], source="finra_api")
    text = run_summary(root, "backfill", AS_OF, None, ledger.LakeState({}), None, cover)
    lines = text.splitlines()
    assert lines[0] == ("Run summary (backfill, as of 2026-12-03): nothing fetched: no configured "
                        "source holds any of the 3 partition(s) it covers")
    assert lines[1].startswith("  not held by any configured source: T1 2016-06-06 .. 2016-06-20")
    assert lines[2].startswith("Next: for the weeks no configured source holds, download FINRA's "
                               "files") and "add finra_files to `source:`" in lines[2]
    assert len(lines) == 3


def test_the_synthetic_source_serves_weeks_from_2014_01_06():
    source = SyntheticSource({"synthetic": {"size": "small"}})
    assert source.serves("T1", EPOCH, "2025-08-01") is None
    why = source.serves("T1", EPOCH - dt.timedelta(days=7), "2025-08-01")
    assert why.startswith("synthetic: its weeks begin on 2014-01-06")
