"""The whole pipeline on real-source code paths: the Query API against the loopback emulator
(with injected faults and OAuth2) and downloaded files, compared with the synthetic source."""

import pandas as pd
import pytest

from spine import config as config_
from spine import lake
from spine.ingest import decide
from tests.helpers import derive
from spine.ingest import fetch
from spine.emulator import Emulator, Faults
from spine.ingest.sources import finra_files, synthetic
from tests.helpers import run_snakemake

pytestmark = pytest.mark.e2e

AS_OF = "2025-08-01"
WEEKS = ["2025-06-02", "2025-06-09"]


def synthetic_baseline(root, tiers, weeks):
    cfg = config_.load(lake_root=str(root), as_of=AS_OF, synthetic={"size": "small"})
    for tier in tiers:
        for week in weeks:
            fetch.fetch(cfg, tier, week)
            decide.gate(cfg, tier, week)
            derive(cfg, tier, week)


def test_finra_api_with_faults_and_oauth_gives_the_synthetic_lake(tmp_path):
    faults = Faults(rate_limit=1, retry_after=1, server_errors=2, drop=1, require_token=True)
    restate = config_.load()["synthetic"]["restate"]  # the emulator publishes the same restatements
    with Emulator(as_of=AS_OF, size="small", faults=faults, restate=restate) as em:
        config = {
            "lake_root": str(tmp_path / "lake"), "as_of": AS_OF, "tiers": ["T2", "OTCE"],
            "source": "finra_api", "synthetic": {"size": "small"},
            "finra_api": {"base_url": em.base_url, "token_url": f"{em.base_url}/oauth2/token",
                          "backoff_seconds": 0.05, "retries": 6, "page_limit": 500},
            "regsho": {"enabled": True, "source": "finra_regsho",
                       "base_url": f"{em.base_url}/regsho"},
        }
        secret = em.faults.client_secret
        run_snakemake(tmp_path, config, "backfill", "--config", f"start={WEEKS[0]}",
                      f"end={WEEKS[-1]}",
                      env={"FINRA_CLIENT_ID": em.faults.client_id, "FINRA_CLIENT_SECRET": secret})
        tokens = list(em._tokens)
        assert em.counts["429"] == 1 and em.counts["500"] == 2 and em.counts["dropped"] == 1
        assert em.counts["token"] >= 1 and em.counts["regsho"] >= 10

    baseline = tmp_path / "baseline"
    synthetic_baseline(baseline, ["T2", "OTCE"], WEEKS)
    root = config["lake_root"]
    for tier in ("T2", "OTCE"):
        for week in WEEKS:
            keys = {"tier": tier, "week_start": week}
            got = pd.read_parquet(lake.path(root, "clean", **keys))
            want = pd.read_parquet(lake.path(baseline, "clean", **keys))
            pd.testing.assert_frame_equal(got, want)  # same rows, same capture_id
            got = pd.read_parquet(lake.path(root, "calc", calc="symbol_week", **keys))
            want = pd.read_parquet(lake.path(baseline, "calc", calc="symbol_week", **keys))
            pd.testing.assert_frame_equal(got, want)
    assert lake.path(root, "calc", calc="short_volume_weekly", tier="T2", week_start=WEEKS[0]).exists()

    # No credential anywhere a run wrote: Parquet, receipts, executed notebooks, logs, reports.
    written = [p for p in (tmp_path / "lake").rglob("*") if p.is_file()]
    assert len(written) > 50
    for path in written:
        data = path.read_bytes()
        assert secret.encode() not in data, path
        assert not any(t.encode() in data for t in tokens), path


def test_finra_files_source_reads_the_published_download_layout(tmp_path):
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    rows = synthetic.weekly_rows("OTCE", WEEKS[0], AS_OF, size="small", aggregates=False)
    for kind, stype in finra_files.KINDS.items():
        text = finra_files.render_download(rows[rows["summaryTypeCode"] == stype])
        (downloads / f"OTCE_{WEEKS[0]}_{kind}.txt").write_text(text)
    config = {"lake_root": str(tmp_path / "lake"), "as_of": AS_OF, "tiers": ["OTCE"],
              "source": "finra_files", "regsho": {"enabled": False},
              "finra_files": {"dir": str(downloads), "pattern": "{tier}_{week_start}_{kind}.txt"}}
    run_snakemake(tmp_path, config, "backfill", "--config", f"start={WEEKS[0]}", f"end={WEEKS[0]}")
    root = config["lake_root"]
    receipt = lake.read_json(lake.path(root, "fetch", tier="OTCE", week_start=WEEKS[0],
                                       fetch_key=f"asof-{AS_OF}"))
    gate = lake.read_json(lake.path(root, "gate", tier="OTCE", week_start=WEEKS[0],
                                    capture_id=receipt["capture_id"]))
    assert gate["status"] == "PASS"
    clean = pd.read_parquet(lake.path(root, "clean", tier="OTCE", week_start=WEEKS[0]))
    assert len(clean) == len(rows) and clean["notional"].isna().all()
    assert receipt["request"]["source"] == "finra_files" and len(receipt["request"]["files"]) == 2
