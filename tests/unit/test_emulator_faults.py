"""The emulator serves FINRA's aggregates with the detail rows (the live dataset filtered by
summaryTypeCode, the historic one with every type) and, on request, a disagreement between
them that spine.ingest.reconcile finds, exactly that one."""

import pandas as pd
import pytest
import requests

from spine.ingest import ats, reconcile
from spine.emulator import Emulator, Faults
from spine.emulator_faults import NEW_ATS, RECONCILE_FAULTS
from spine.schemas import normalise_weekly
from spine.vocabulary import DETAIL_SUMMARY_TYPES, SUMMARY_TYPES
from spine.ingest.sources import synthetic

AS_OF, TIER, WEEK = "2025-08-01", "T2", "2025-06-02"
OTHER_WEEK = "2025-05-26"
ALL_TYPES = list(SUMMARY_TYPES)
SYMBOL, FIRM = "reconciles_by_symbol", "reconciles_by_firm"


def fetch(em: Emulator, week: str = WEEK, *, historic: bool = False,
          types: list[str] | None = None) -> pd.DataFrame:
    """Every page of one week over HTTP, as FINRA's Query API answers it."""
    name = "weeklySummaryHistoric" if historic else "weeklySummary"
    body = {"compareFilters": [
        {"compareType": "EQUAL", "fieldName": "weekStartDate", "fieldValue": week},
        {"compareType": "EQUAL", "fieldName": "tierIdentifier", "fieldValue": TIER}],
        "limit": 5000}
    if types:
        body["domainFilters"] = [{"fieldName": "summaryTypeCode", "values": types}]
    frames, offset = [], 0
    while True:
        response = requests.post(f"{em.base_url}/data/group/otcMarket/name/{name}",
                                 json={**body, "offset": offset},
                                 headers={"Accept": "application/json"}, timeout=30)
        response.raise_for_status()
        if response.status_code == 204:
            break
        frames.append(pd.DataFrame.from_records(response.json()))
        offset += len(frames[-1])
        if offset >= int(response.headers["Record-Total"]):
            break
    return normalise_weekly(pd.concat(frames, ignore_index=True))


def problems(rows: pd.DataFrame) -> dict[str, list[str]]:
    return {check: o.problems for check, o in reconcile.reconcile(rows).items()}


@pytest.fixture
def emulator():
    with Emulator(as_of=AS_OF, size="small") as em:
        yield em


def test_live_dataset_filters_by_summary_type(emulator):
    week = synthetic.weekly_rows(TIER, WEEK, AS_OF, size="small")
    served = fetch(emulator, types=ALL_TYPES)
    assert len(served) == len(week) and set(served["summaryTypeCode"]) == set(ALL_TYPES)
    assert problems(served) == {SYMBOL: [], FIRM: []}
    only = fetch(emulator, types=DETAIL_SUMMARY_TYPES)
    assert set(only["summaryTypeCode"]) == set(DETAIL_SUMMARY_TYPES)
    assert len(only) == week["summaryTypeCode"].isin(DETAIL_SUMMARY_TYPES).sum()


def test_historic_dataset_returns_every_type(emulator):
    emulator.live_weeks = 1  # WEEK is now only in the historic dataset
    served = fetch(emulator, historic=True)
    assert set(served["summaryTypeCode"]) == set(ALL_TYPES)
    assert problems(served) == {SYMBOL: [], FIRM: []}
    refused = requests.post(f"{emulator.base_url}/data/group/otcMarket/name/weeklySummaryHistoric",
                            json={"domainFilters": [{"fieldName": "summaryTypeCode",
                                                     "values": DETAIL_SUMMARY_TYPES}]}, timeout=30)
    assert refused.status_code == 400


def faulted(emulator: Emulator, fault: str) -> pd.DataFrame:
    emulator.faults = Faults(reconcile={f"{TIER}:{WEEK}": fault})
    return fetch(emulator, types=ALL_TYPES)


def test_symbol_total_off_by_one(emulator):
    served = faulted(emulator, "symbol_total_off_by_one")
    found = problems(served)
    assert found[FIRM] == []
    assert [p.split(":")[0] for p in found[SYMBOL]] == ["ATS", "ATS total shares"]
    assert "1 symbol key(s) whose shares differ" in found[SYMBOL][0]
    assert found[SYMBOL][0].endswith("difference -1") and found[SYMBOL][1].endswith("difference -1")


def test_firm_row_missing(emulator):
    clean = fetch(emulator, types=ALL_TYPES)
    served = faulted(emulator, "firm_row_missing")
    assert len(served) == len(clean) - 1
    found = problems(served)
    assert found[SYMBOL] == []
    assert found[FIRM][0] == ("non-ATS: 1 firm key(s) with detail rows and no FINRA OTC_W_FIRM "
                              "row, e.g. CDRG")
    assert len(found[FIRM]) == 2 and found[FIRM][1].startswith("non-ATS total shares")


def test_detail_row_missing(emulator):
    clean = fetch(emulator, types=ALL_TYPES)
    served = faulted(emulator, "detail_row_missing")
    key = ["issueSymbolIdentifier", "issueName", "productTypeCode", "MPID", "firmCRDNumber",
           "summaryTypeCode"]
    gone = clean.merge(served, on=key, how="left", indicator=True).query("_merge == 'left_only'")
    assert len(gone) == 1 and gone["summaryTypeCode"].iloc[0] == "OTC_W_SMBL_FIRM"
    symbol, firm = gone["issueSymbolIdentifier"].iloc[0], gone["MPID"].iloc[0]
    found = problems(served)
    for check, name in ((SYMBOL, symbol), (FIRM, firm)):
        assert all(p.startswith("non-ATS") for p in found[check])
        keyed = [p for p in found[check] if "key(s)" in p]
        assert keyed and all(p.startswith("non-ATS: 1 ") and f"e.g. {name}" in p for p in keyed)


def test_tier_value_nms(emulator):
    served = faulted(emulator, "tier_value_nms")
    nms = served[served["tierIdentifier"] == "NMS"]
    assert len(nms) == 3 and nms["summaryTypeCode"].isin(DETAIL_SUMMARY_TYPES).all()
    # the sums still agree: the tier gate, not reconcile, sees an undocumented tier
    assert problems(served) == {SYMBOL: [], FIRM: []}


def test_new_ats(emulator):
    served = faulted(emulator, "new_ats")
    new = served[served["MPID"] == NEW_ATS["MPID"]]
    assert sorted(new["summaryTypeCode"]) == ["ATS_W_FIRM"] + ["ATS_W_SMBL_FIRM"] * 5
    assert (new["marketParticipantName"] == "ZZ ALTERNATIVE TRADING").all()
    assert problems(served) == {SYMBOL: [], FIRM: []}  # FINRA's aggregates agree with it
    listed = reconcile.ats_firms(served)
    assert set(listed) - ats.mpids() == {"ZZAT"}


def test_a_fault_breaks_only_its_week(emulator):
    emulator.faults = Faults(reconcile={f"{TIER}:{WEEK}": "firm_row_missing"})
    assert problems(fetch(emulator, OTHER_WEEK, types=ALL_TYPES)) == {SYMBOL: [], FIRM: []}
    assert problems(emulator.weekly(TIER, WEEK))[FIRM]


def test_each_fault_picks_its_row_by_key_not_by_position():
    week = synthetic.weekly_rows(TIER, WEEK, AS_OF, size="small")
    shuffled = week.sample(frac=1, random_state=1)
    for fault, inject in RECONCILE_FAULTS.items():
        a, b = (inject(w).sort_values(list(w.columns), ignore_index=True)
                for w in (week, shuffled))
        pd.testing.assert_frame_equal(a, b, obj=fault)


def test_unknown_faults_are_refused():
    with pytest.raises(ValueError, match="'typo' is not a fault; use one of symbol_total_off"):
        Faults(reconcile={f"{TIER}:{WEEK}": "typo"})
    with pytest.raises(ValueError, match="not a FINRA tier"):
        Faults(reconcile={f"T9:{WEEK}": "new_ats"})
