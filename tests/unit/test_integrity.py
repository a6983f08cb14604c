"""Lake integrity without Snakemake: the manifest, `spine verify` on each kind of damage,
backup and restore to a folder and to a local S3 server (moto, loopback), readers during
replacements, two concurrent imports of one week, and raw read as a plain dataset."""

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pyarrow.dataset as ds
import pytest

from spine import config as config_
from spine import lake
from spine.ingest.ledger import LakeState
from spine.ingest import decide
from tests.helpers import S3Server, derive
from spine.ingest import fetch
from spine.derive.calc import read_calc
from spine.derive.clean import read_clean
from spine.ingest.sources import Capture
from spine.lake import backup, repair, verify
from spine.vocabulary import DATASET_WEEKLY
from tests.helpers import reads_during_replacements
from spine.ingest import history

TIER, WEEKS = "T2", [dt.date(2025, 6, 2), dt.date(2025, 6, 9)]
AS_OF = "2025-08-14"


def build(root, weeks=WEEKS):
    cfg = config_.load(lake_root=str(root), as_of=AS_OF, synthetic={"size": "small"})
    for week in weeks:
        receipt = fetch.fetch(cfg, TIER, week, f"asof-{AS_OF}")
        decide.gate(cfg, TIER, week, receipt["capture_id"])
        derive(cfg, TIER, week)
        decide.gate_reports(cfg, TIER, week)
    return cfg


@pytest.fixture
def cfg(tmp_path):
    return build(tmp_path / "lake")


def kinds(root):
    return {(p.kind, p.path) for p in verify.verify(root)}


def rel(root, path):
    return path.relative_to(root).as_posix()


def test_every_written_file_is_recorded_with_its_checksum_producer_and_inputs(cfg):
    root = cfg["lake_root"]
    recs = verify.manifest(root)
    on_disk = verify.files_on_disk(root)
    assert set(on_disk) <= set(recs), "every lake file has a manifest record"
    clean = lake.path(root, "clean", tier=TIER, week_start=WEEKS[0])
    rec = recs[rel(Path(root), clean)]
    assert rec["bytes"] == clean.stat().st_size and rec["sha256"] == lake.sha256_file(clean)
    raw = next(p for p in rec["inputs"])  # clean is made from the raw capture it holds
    assert raw.startswith("raw/finra_otc_weekly/tier=T2/week_start=2025-06-02/")
    calc = recs[f"calc/symbol_week/tier=T2/week_start=2025-06-02/part-0.parquet"]
    assert calc["inputs"] == {rel(Path(root), clean): rec["sha256"]}
    assert verify.verify(root) == []


def test_each_kind_of_damage_is_named_with_the_file_and_the_fix(cfg):
    root = Path(cfg["lake_root"])
    clean = lake.path(root, "clean", tier=TIER, week_start=WEEKS[0])
    calc = lake.path(root, "calc", calc="venue_share", tier=TIER, week_start=WEEKS[1])
    held = LakeState.read(str(root)).get(TIER, WEEKS[1]).held
    raw = lake.path(root, "capture", tier=TIER, week_start=WEEKS[1], capture_id=held)
    event = sorted((root / "ledger").rglob("*accepted*"))[0]

    calc.unlink()  # a deleted calculation
    clean.write_bytes(clean.read_bytes()[:300])  # a truncated clean file
    data = bytearray(raw.read_bytes())
    data[200:210] = b"\x00" * 10  # a corrupt raw capture, same size
    raw.write_bytes(bytes(data))
    event.unlink()  # a deleted ledger event
    (root / "reports").mkdir(exist_ok=True)
    (root / "reports" / "stray.html").write_text("<html></html>")  # written by no step

    found = {p.path: p for p in verify.verify(root)}
    assert found[rel(root, calc)].kind == "missing"
    assert found[rel(root, clean)].kind == "truncated"
    assert found[rel(root, raw)].kind == "corrupt"
    assert "spine restore BACKUP" in found[rel(root, raw)].fix
    assert "--refetch" in found[rel(root, raw)].fix
    assert found[rel(root, event)].kind == "missing"
    assert found["reports/stray.html"].kind == "unrecorded"
    assert "spine repair" in found[rel(root, calc)].fix
    # the CLI prints one line per problem and exits 1
    proc = subprocess.run([sys.executable, "-m", "spine.cli", "verify", "--lake-root", str(root)],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert len(proc.stdout.splitlines()) == len(found) and "Traceback" not in proc.stderr


def test_clean_behind_the_ledger_and_stale_calculations_are_named(cfg, tmp_path):
    root = Path(cfg["lake_root"])
    # a revision recorded in the ledger but not yet derived: clean is behind
    later = dict(cfg, as_of="2025-08-15", synthetic={**cfg["synthetic"], "revisions": [
        {"tier": TIER, "week_start": WEEKS[0].isoformat(), "published": "2025-08-15"}]})
    receipt = fetch.fetch(later, TIER, WEEKS[0], "asof-2025-08-15")
    assert decide.gate(later, TIER, WEEKS[0], receipt["capture_id"]).status == "PASS"
    clean = rel(root, lake.path(root, "clean", tier=TIER, week_start=WEEKS[0]))
    assert ("behind", clean) in kinds(root)
    # clean rewritten by hand from the new capture, calculations not: they are stale
    df = read_clean(str(root), TIER, WEEKS[0])
    lake.write_partition(df.iloc[:-1], root, "clean", DATASET_WEEKLY,
                         {"tier": TIER, "week_start": WEEKS[0]},
                         metadata={"spine.capture_id": receipt["capture_id"]})
    stale = {p for k, p in kinds(root) if k == "stale"}
    assert f"calc/symbol_week/tier=T2/week_start=2025-06-02/part-0.parquet" in stale
    # the derive step makes everything agree again: the week, and the later weeks whose
    # trend windows hold it
    for week in WEEKS:
        derive(later, TIER, week)
    decide.gate_reports(later, TIER, WEEKS[0])
    assert verify.verify(root) == []


def test_a_lake_without_a_manifest_is_adopted_file_by_file(cfg):
    root = Path(cfg["lake_root"])
    shutil.rmtree(root / "manifest")
    problems = verify.verify(root)
    assert problems and {p.kind for p in problems} == {"unrecorded"}
    assert all("checks out" in p.detail for p in problems)
    for p in problems:
        repair.adopt(root, p.path)
    assert verify.verify(root) == []


def test_a_raw_capture_whose_content_does_not_match_its_name_is_not_adopted(cfg):
    root = Path(cfg["lake_root"])
    shutil.rmtree(root / "manifest")
    held = LakeState.read(str(root)).get(TIER, WEEKS[0]).held
    raw = lake.path(root, "capture", tier=TIER, week_start=WEEKS[0], capture_id=held)
    df = pd.read_parquet(raw)
    df.iloc[:-1].to_parquet(raw)  # a row short, rewritten by someone
    bad = {p.path: p for p in verify.verify(root)}[rel(root, raw)]
    assert bad.kind == "unrecorded" and "does not hash to its name" in bad.detail


def test_asof_names_an_unreadable_capture(cfg):
    root = Path(cfg["lake_root"])
    held = LakeState.read(str(root)).get(TIER, WEEKS[0]).held
    raw = lake.path(root, "capture", tier=TIER, week_start=WEEKS[0], capture_id=held)
    raw.write_bytes(raw.read_bytes()[:-40])
    with pytest.raises(OSError, match=f"{held}.parquet.*cannot be read.*spine verify"):
        history.as_known_at(root=root)


# -- backup and restore -----------------------------------------------------------------------
def records(root):
    """Every record file (path -> SHA-256), the manifest's files excepted."""
    return {r: lake.sha256_file(Path(root) / r) for r in verify.files_on_disk(root)
            if verify.is_record(r)}


def with_payload(cfg, week):
    """Store a capture that has a payload (as the API and file sources do)."""
    cap = Capture("finra_otc_weekly", {"tier": TIER, "week_start": week.isoformat()},
                  fetch.read_capture(cfg["lake_root"], fetch.latest_receipt(
                      cfg["lake_root"], TIER, week)).drop(columns=["capture_id", "retrieved_at"])
                  .iloc[:-3], [("page-0.json", b"[]")], {"source": "test"})
    receipt = fetch.store_capture(cfg["lake_root"], cap, lake.path(
        cfg["lake_root"], "fetch", tier=TIER, week_start=week, fetch_key="import-x"))
    return lake.payload_path(cfg["lake_root"], "finra_otc_weekly", cap.partition,
                             receipt["capture_id"])


def test_backup_is_incremental_and_restore_brings_the_records_back(cfg, tmp_path):
    root = Path(cfg["lake_root"])
    payload = with_payload(cfg, WEEKS[0])
    dest = tmp_path / "backup"
    first = backup.backup(root, str(dest))
    assert first["copied"] == first["files"] > 0
    assert (dest / rel(root, payload)).exists()
    again = backup.backup(root, str(dest))
    assert again["copied"] == 0 and again["files"] == first["files"]
    build(root, [dt.date(2025, 6, 16)])  # a new week: only its files are copied
    third = backup.backup(root, str(dest))
    assert 0 < third["copied"] < third["files"]

    want = records(root)
    shutil.rmtree(root)  # the whole lake lost
    left = repair.restore(str(dest), root, rebuild=False)
    assert records(root) == want
    # derived files are reported missing (repair rebuilds them); no record is
    assert left and all(not verify.is_record(p.path) and p.kind == "missing" for p in left)
    for week in [*WEEKS, dt.date(2025, 6, 16)]:
        derive(cfg, TIER, week)
        decide.gate_reports(cfg, TIER, week)
    assert verify.verify(root) == []


def test_restore_refuses_a_damaged_backup_copy(cfg, tmp_path):
    root = Path(cfg["lake_root"])
    dest = tmp_path / "backup"
    backup.backup(root, str(dest))
    copy = next((dest / "raw").rglob("*.parquet"))
    copy.write_bytes(copy.read_bytes()[:-10])
    shutil.rmtree(root / "raw")
    with pytest.raises(ValueError, match="backup's copy of raw/.*is damaged"):
        repair.restore(str(dest), root, rebuild=False)


@pytest.fixture
def s3(monkeypatch):
    server = S3Server("spine-backup")
    for k, v in server.env.items():
        monkeypatch.setenv(k, v)
    yield "s3://spine-backup/lake"
    server.stop()


def test_backup_and_restore_through_a_local_s3_server(cfg, s3):
    root = Path(cfg["lake_root"])
    with_payload(cfg, WEEKS[1])
    first = backup.backup(root, s3)
    assert first["copied"] == first["files"]
    assert backup.backup(root, s3)["copied"] == 0
    want = records(root)
    shutil.rmtree(root / "raw")
    shutil.rmtree(root / "ledger")
    repair.restore(s3, root, rebuild=False)
    assert records(root) == want
    assert verify.verify(root) == []


# -- concurrency ----------------------------------------------------------------------------
def test_readers_never_see_a_half_written_partition(tmp_path):
    """pandas, pyarrow datasets, DuckDB and Polars read a partition while it is replaced over
    and over: every read succeeds and sees one whole version."""
    reads, failures = reads_during_replacements(str(tmp_path / "lake"), seconds=4)
    print(f"reads during replacement: {reads}, failed: {len(failures)}")
    assert not failures, failures[:3]
    assert all(n > 10 for n in reads.values())


def test_two_concurrent_imports_of_one_week_agree(cfg, tmp_path):
    """Two `spine import-file` runs of one week at once: the ledger decides them one after the
    other, so clean (derived from the ledger), the ledger and spine.asof agree."""
    from spine.ingest.sources import synthetic

    root = cfg["lake_root"]
    files = []
    for n, as_of in enumerate(["2025-08-14", "2025-08-15"]):
        rows = synthetic.weekly_rows(TIER, WEEKS[0].isoformat(), as_of, size="small",
                                     aggregates=False)
        if n:
            rows = rows.assign(totalWeeklyShareQuantity=rows["totalWeeklyShareQuantity"] + 1)
        path = tmp_path / f"export-{n}.csv"
        rows.to_csv(path, index=False)
        files.append(path)
    procs = [subprocess.Popen([sys.executable, "-m", "spine.cli", "import-file", str(f),
                               "--tier", TIER, "--week-start", WEEKS[0].isoformat(),
                               "--lake-root", root], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for f in files]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    state = LakeState.read(root).get(TIER, WEEKS[0])
    ev = history.events(root, DATASET_WEEKLY, tier=TIER, week_start=WEEKS[0].isoformat())
    accepted = ev[ev["event"] == "accepted"]
    # each acceptance names the capture held before it: one chain, no fork
    assert list(accepted["previous_capture"].iloc[1:]) == list(accepted["capture_id"].iloc[:-1])
    for week in WEEKS:  # the week, and the later weeks whose trend windows hold it
        derive(cfg, TIER, week)
    decide.gate_reports(cfg, TIER, WEEKS[0])
    assert lake.held_capture(lake.path(root, "clean", tier=TIER,
                                              week_start=WEEKS[0])) == state.held
    asof = history.as_known_at(root=root)
    assert set(asof.loc[asof["week_start"] == pd.Timestamp(WEEKS[0]), "capture_id"]) == {state.held}
    assert verify.verify(root) == []


def test_raw_reads_as_a_plain_dataset_with_every_reader(cfg):
    root = cfg["lake_root"]
    with_payload(cfg, WEEKS[0])  # a payload exists, outside raw/
    folder = f"{root}/raw/finra_otc_weekly"
    n = len(pd.read_parquet(folder))
    assert n == ds.dataset(folder, partitioning="hive").count_rows()
    assert n == duckdb.sql(f"select count(*) from read_parquet('{folder}/**/*.parquet', "
                           "hive_partitioning=true)").fetchall()[0][0]
    assert n == pl.scan_parquet(f"{folder}/**/*.parquet", hive_partitioning=True).select(
        pl.len()).collect().item()


def test_a_truncated_partition_is_named_when_read(cfg):
    root = cfg["lake_root"]
    path = lake.path(root, "calc", calc="symbol_week", tier=TIER, week_start=WEEKS[0])
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(OSError, match=f"{path}.*cannot be read.*spine verify"):
        read_calc(root, "symbol_week", TIER, WEEKS[0])


def test_repair_moves_an_old_lakes_payload_out_of_raw(cfg, monkeypatch):
    """Lakes written before payloads/ kept `<capture>.payload.zip` beside the raw capture."""
    root = Path(cfg["lake_root"])
    payload = with_payload(cfg, WEEKS[0])
    old = lake.path(root, "raw", tier=TIER, week_start=WEEKS[0]) / (payload.stem + ".payload.zip")
    os.replace(payload, old)
    shutil.rmtree(root / "manifest")  # and no manifest, as then
    monkeypatch.setattr(repair, "snakemake", lambda *a, **k: 0)  # derived files are intact
    assert repair.repair(root) == []
    assert payload.exists() and not old.exists()
    assert len(pd.read_parquet(root / "raw" / "finra_otc_weekly")) > 0


def test_a_lake_root_that_does_not_exist_is_named_and_never_created(tmp_path):
    for command in ("verify", "repair", "backup"):
        args = [command] + ([str(tmp_path / "dest")] if command == "backup" else [])
        proc = subprocess.run([sys.executable, "-m", "spine.cli", *args, "--lake-root",
                               str(tmp_path / "typo")], capture_output=True, text=True)
        if command == "verify":  # the first weekly update verifies a lake not yet written
            assert proc.returncode == 0 and "no lake at" in proc.stdout
            assert "Nothing to verify" in proc.stdout
        else:
            assert proc.returncode == 2 and "no lake at" in proc.stderr, command
        assert not (tmp_path / "typo").exists()
