"""On the loopback emulator of FINRA's Query API, each injected disagreement between FINRA's
aggregates and its detail rows holds its week back (or warns) with the right reason, and the
printed fix works: a re-fetch once FINRA serves whole figures, or the override on record."""

import re
import shlex
import subprocess
import sys

import pytest

from spine import config as config_
from spine.ingest import decide
from spine.ingest import fetch
from spine import status as status_
from spine.emulator import Emulator, Faults
from spine.ingest import ledger

AS_OF = "2025-08-01"
FAULTS = {
    "T2:2025-06-02": "symbol_total_off_by_one",
    "T2:2025-06-09": "firm_row_missing",
    "T2:2025-06-16": "detail_row_missing",
    "T2:2025-06-23": "new_ats",
    "OTCE:2025-06-02": "tier_value_nms",
}


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    """Every faulty week fetched through the API client and gated, once."""
    root = tmp_path_factory.mktemp("reconcile") / "lake"
    with Emulator(as_of=AS_OF, size="small", faults=Faults(reconcile=dict(FAULTS))) as em:
        cfg = config_.load(lake_root=str(root), as_of=AS_OF, source="finra_api",
                           synthetic={"size": "small"},
                           finra_api={"base_url": em.base_url, "backoff_seconds": 0.05})
        reports = {}
        for key in FAULTS:
            tier, week = key.split(":")
            capture = fetch.fetch(cfg, tier, week, f"asof-{AS_OF}")["capture_id"]
            reports[key] = decide.gate(cfg, tier, week, capture)
        yield cfg, em, reports


def statuses(report):
    return {c.check: c for c in report.checks}


def run_cli(command: str, root: str) -> subprocess.CompletedProcess:
    args = shlex.split(command.replace("'...'", "'checked with FINRA'"))
    assert args[0] == "spine"
    return subprocess.run([sys.executable, "-m", "spine.cli", *args[1:], "--lake-root", root],
                          capture_output=True, text=True)


def test_a_symbol_total_off_by_one_share_is_held_back_and_a_refetch_fixes_it(lake):
    cfg, em, reports = lake
    report = reports["T2:2025-06-02"]
    checks = statuses(report)
    assert report.status == "FAIL" and [c.check for c in report.failures] == [
        "reconciles_by_symbol"]
    message = checks["reconciles_by_symbol"].message
    assert "T2 week 2025-06-02" in message and "ATS:" in message
    assert "our sum" in message and "FINRA" in message and "difference -1" in message
    assert checks["reconciles_by_firm"].status == "PASS"
    # spine status names it with the figures and the fix
    entry = next(e for e in status_.status(cfg, tiers=["T2"])
                 if e.week_start == "2025-06-02")
    assert entry.state == "held back" and "difference -1" in entry.detail
    assert "refetch --config 'weeks=[2025-06-02]' 'tiers=[T2]'" in entry.fix
    # the fix: once FINRA serves figures that agree, a re-fetch is accepted (what the printed
    # `snakemake refetch` runs: a fetch under a new key, then the gate)
    em.faults.reconcile.pop("T2:2025-06-02")
    capture = fetch.fetch(cfg, "T2", "2025-06-02", "at-20250801T120000")["capture_id"]
    assert decide.gate(cfg, "T2", "2025-06-02", capture).status == "PASS"
    assert ledger.LakeState.read(cfg["lake_root"]).held("T2", "2025-06-02") == capture


def test_a_missing_firm_row_warns_and_the_week_goes_through(lake):
    _, _, reports = lake
    report = reports["T2:2025-06-09"]
    firm = statuses(report)["reconciles_by_firm"]
    assert report.status == "PASS" and firm.status == "WARN"
    assert "non-ATS" in firm.message and "no FINRA OTC_W_FIRM row" in firm.message
    assert statuses(report)["reconciles_by_symbol"].status == "PASS"


def test_a_missing_detail_row_is_held_back_and_the_printed_override_lets_it_through(lake):
    cfg, _, reports = lake
    report = reports["T2:2025-06-16"]
    symbol = statuses(report)["reconciles_by_symbol"]
    assert report.status == "FAIL" and symbol.status == "FAIL"
    assert "non-ATS: 1 symbol key(s) whose shares differ" in symbol.message
    assert "non-ATS total shares" in symbol.message
    override = re.search(r"(spine override [^;]*?--reason '\.\.\.')", symbol.message).group(1)
    done = run_cli(override, cfg["lake_root"])
    assert done.returncode == 0, done.stderr
    held = ledger.LakeState.read(cfg["lake_root"]).get("T2", "2025-06-16")
    assert held.held == report.capture_id and held.held in held.overrides


def test_a_new_ats_finra_lists_is_a_warning_recorded_with_its_week(lake):
    cfg, _, reports = lake
    report = reports["T2:2025-06-23"]
    checks = statuses(report)
    assert report.status == "PASS"
    assert checks["summary_type_venues"].status == "PASS"
    assert checks["ats_list_current"].status == "WARN" and "ZZAT" in checks[
        "ats_list_current"].message
    shown = run_cli("spine ats-list --learned", cfg["lake_root"])
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"ZZAT\s+ZZ ALTERNATIVE TRADING\s+first seen T2 week 2025-06-23",
                     shown.stdout)


def test_an_undocumented_tier_value_is_refused_naming_it(lake):
    _, _, reports = lake
    report = reports["OTCE:2025-06-02"]
    tier = statuses(report)["tier_matches_request"]
    assert report.status == "FAIL" and tier.status == "FAIL"
    assert "'NMS' is a tier value FINRA sends but does not document" in tier.message
