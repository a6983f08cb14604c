"""The lake equals its ledger: a week the ledger stops holding (a revoked override, a regate
that refuses), a calculation removed from the registry or off with Reg SHO leaves no derived
file behind once the sweep runs, and until then `spine verify` names every one. pandas, DuckDB
and `spine verify` see the same thing (tests/workflow/test_core.py runs it through Snakemake)."""

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from spine import config as config_
from spine import lake
from spine.ingest import decide
from tests.helpers import derive
from spine.ingest import fetch
from spine.derive import registry
from spine.ingest import ledger
from spine.lake import repair, verify

TIER, WEEKS = "T2", [dt.date(2025, 6, 2), dt.date(2025, 6, 9)]
AS_OF = "2025-08-14"


def build(root: Path, strict_first: bool = False) -> dict:
    """Two T2 weeks, gated and derived by hand; with `strict_first` the first is refused by a
    band no week can meet, then let through by an override."""
    cfg = config_.load(lake_root=str(root), as_of=AS_OF, synthetic={"size": "small"})
    for week in WEEKS:
        capture = fetch.fetch(cfg, TIER, week, f"asof-{AS_OF}")["capture_id"]
        if strict_first and week == WEEKS[0]:
            strict = dict(cfg, gates={**cfg["gates"], "max_row_shares": 1.0})
            assert decide.gate(strict, TIER, week, capture).status == "FAIL"
            decide.override(cfg, TIER, week, ["values_finite"], "checked by hand")
        else:
            assert decide.gate(cfg, TIER, week, capture).status == "PASS"
        derive(cfg, TIER, week)
        decide.gate_reports(cfg, TIER, week)
    return cfg


def weeks_seen(root: str, calc: str) -> dict[str, set[str]]:
    """The weeks each reader sees in a calculation's dataset."""
    folder = Path(root) / "calc" / calc
    df = pd.read_parquet(folder)
    con = duckdb.connect()
    rows = con.execute(f"select distinct cast(week_start as varchar) from read_parquet("
                       f"'{folder}/**/*.parquet', hive_partitioning=true)").fetchall()
    return {"pandas": {str(w)[:10] for w in df["week_start"].unique()},
            "duckdb": {r[0] for r in rows}}


def orphans(root: str, regsho: bool = True) -> set[str]:
    return {p.path for p in verify.verify(root, regsho) if p.kind == "orphan"}


def derived_of(root: str, week: dt.date) -> set[str]:
    return {rel for rel in verify.files_on_disk(root)
            if rel.startswith(("clean/", "calc/")) and f"week_start={week}" in rel}


def test_a_revoked_override_leaves_nothing_of_its_week(tmp_path):
    cfg = build(tmp_path / "lake", strict_first=True)
    root, week = cfg["lake_root"], WEEKS[0]
    files = derived_of(root, week)
    assert lake.path(root, "clean", tier=TIER, week_start=week).relative_to(root).as_posix() \
        in files and len(files) >= 7  # clean and the calculations
    decide.override(cfg, TIER, week, [], "taken back", revoke=True)
    assert ledger.LakeState.read(root).held(TIER, week) is None
    # verify names every derived file of the week (clean and each calculation), not only clean
    assert orphans(root) == files
    assert all(str(week) in seen for seen in weeks_seen(root, "symbol_week").values())
    moved = repair.retract(root, regsho=True)
    assert set(moved) == files and derived_of(root, week) == set()
    assert weeks_seen(root, "symbol_week") == {"pandas": {str(WEEKS[1])},
                                               "duckdb": {str(WEEKS[1])}}
    assert not [p for p in verify.verify(root) if p.kind == "orphan"]
    # kept, never deleted: in quarantine with the reason in the manifest
    kept = list((Path(root) / "quarantine").rglob("part-0.parquet"))
    assert len(kept) == len(files)
    why = verify.manifest(root)[sorted(files)[0]]
    assert why["removed"] and "no accepted capture of T2 week 2025-06-02" in why["why"]


def test_a_regate_that_refuses_leaves_nothing_of_its_week(tmp_path):
    cfg = build(tmp_path / "lake")
    root, week = cfg["lake_root"], WEEKS[1]
    files = derived_of(root, week)
    strict = dict(cfg, gates={**cfg["gates"], "max_row_shares": 1.0})
    held, report = decide.regate(strict, TIER, week)
    assert report.status == "FAIL" and held is None
    assert orphans(root) == files
    repair.retract(root, regsho=True)
    assert derived_of(root, week) == set() and orphans(root) == set()
    # the gate reports stay: the ledger still holds both verdicts of the capture
    assert list(Path(root, "gates").rglob(f"week_start={week}/*.json"))


def test_a_calculation_removed_from_the_registry_or_off_with_reg_sho(tmp_path, monkeypatch):
    cfg = build(tmp_path / "lake")
    root = cfg["lake_root"]
    assert orphans(root) == set()
    kept = [c for c in registry.CALCS if c.name != "venue_trend"]
    monkeypatch.setattr(registry, "CALCS", kept)
    gone = {rel for rel in verify.files_on_disk(root) if rel.startswith("calc/venue_trend/")}
    assert len(gone) == 2 and orphans(root) == gone
    problem = next(p for p in verify.verify(root) if p.kind == "orphan")
    assert "venue_trend is not a calculation of tier T2" in problem.detail
    assert "spine repair" in problem.fix
    repair.retract(root, regsho=True)
    assert not (Path(root) / "calc" / "venue_trend").exists() or not list(
        (Path(root) / "calc" / "venue_trend").rglob("*.parquet"))


def test_a_ledger_changed_since_the_plan_is_an_error_not_a_sweep(tmp_path):
    cfg = build(tmp_path / "lake")
    root = cfg["lake_root"]
    planned = verify.held_fingerprint(ledger.LakeState.read(root), True)
    strict = dict(cfg, gates={**cfg["gates"], "max_row_shares": 1.0})
    decide.regate(strict, TIER, WEEKS[1])
    with pytest.raises(RuntimeError, match="changed while this run held its lock"):
        repair.retract(root, regsho=True, fingerprint=planned)
    assert derived_of(root, WEEKS[1])  # nothing moved


def test_held_nothing_again_after_a_revoke_is_a_new_state_for_the_sweep(tmp_path):
    """refused (nothing held) -> overridden -> revoked (nothing held again): the sweep's
    fingerprint differs from the first one, so the next run sweeps again."""
    cfg = config_.load(lake_root=str(tmp_path / "lake"), as_of=AS_OF, synthetic={"size": "small"})
    root, week = cfg["lake_root"], WEEKS[0]
    capture = fetch.fetch(cfg, TIER, week, f"asof-{AS_OF}")["capture_id"]
    strict = dict(cfg, gates={**cfg["gates"], "max_row_shares": 1.0})
    decide.gate(strict, TIER, week, capture)
    refused = verify.held_fingerprint(ledger.LakeState.read(root), True)
    decide.override(cfg, TIER, week, ["values_finite"], "checked by hand")
    overridden = verify.held_fingerprint(ledger.LakeState.read(root), True)
    decide.override(cfg, TIER, week, [], "taken back", revoke=True)
    revoked = verify.held_fingerprint(ledger.LakeState.read(root), True)
    assert len({refused, overridden, revoked}) == 3
