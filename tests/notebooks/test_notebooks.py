"""Each step's notebook executed with papermill, parameters injected as the pipeline does."""

import json

import papermill as pm
import pytest

from spine import lake
from spine.derive import registry
from tests.helpers import REPO, scenario_config

PARAMS = {"tier": "OTCE", "week_start": "2025-06-02"}


@pytest.fixture(scope="module")
def lake_config(tmp_path_factory):
    root = tmp_path_factory.mktemp("nb") / "lake"
    return scenario_config(lake_root=str(root), as_of="2025-08-01")


def step_config(lake_config, step, **extra):
    """The config a step's notebook gets in a pipeline run: exactly the keys it declares."""
    from spine import config as config_
    from spine import steps

    return json.loads(steps.parameters(step, config_.load(**lake_config, **extra)))["config"]


def execute(name, tmp_path, **params):
    out = tmp_path / f"{name}.ipynb"
    pm.execute_notebook(str(REPO / "notebooks" / f"{name}.ipynb"), str(out), parameters=params,
                        kernel_name="python3", progress_bar=False, cwd=str(tmp_path))
    return json.loads(out.read_text())


def test_steps_in_order_write_the_lake_on_the_jupyter_kernel(lake_config, tmp_path):
    """The kernel path JupyterLab users take: each step's notebook through papermill and the
    python3 kernel, in the pipeline's order, with the pipeline's parameters."""
    from spine.ingest import decide

    root = lake_config["lake_root"]
    execute("fetch", tmp_path, **PARAMS, fetch_key="asof-2025-08-01",
            config=step_config(lake_config, "fetch"))
    receipt = lake.path(root, "fetch", fetch_key="asof-2025-08-01", **PARAMS)
    capture = lake.read_json(receipt)["capture_id"]
    record = tmp_path / "ingest.json"
    execute("gate", tmp_path, receipts=[str(receipt)], output=str(record),
            config=step_config(lake_config, "gate"))
    assert json.loads(record.read_text())["partitions"][0]["status"] == "PASS"
    decide.gate_reports(lake_config, **PARAMS)  # the Snakefile's gate_report rule
    execute("clean", tmp_path, **PARAMS, capture_id=capture,
            config=step_config(lake_config, "clean"))
    assert lake.path(root, "clean", **PARAMS).exists()
    names = [c.name for c in registry.for_tier("OTCE", regsho=False)]
    for entry in registry.for_tier("OTCE", regsho=False):
        windows = {i.name: [PARAMS["week_start"]] for i in entry.inputs
                   if i.name not in registry.SOURCES}
        execute("calc", tmp_path, calc=entry.name, version=entry.version, **PARAMS,
                windows=windows, config=step_config(lake_config, "calc"))
        assert lake.path(root, "calc", calc=entry.name, **PARAMS).exists()
    view = {"OTCE": {"captures": [capture], "accepted": True, "calcs": names,
                     "override": None, "history": [PARAMS["week_start"]], "revisions": []}}
    nb = execute("weekly_report", tmp_path, week_start="2025-06-02", tiers=view,
                 config=step_config(lake_config, "weekly_report", report={"top_n": 5}))
    outputs = [o for c in nb["cells"] for o in c.get("outputs", [])]
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 3, "the charts are embedded"
    text = json.dumps(outputs)
    assert "OTCN" in text and "checks passed" in text, text


def test_looking_at_a_lake_by_hand_writes_nothing_into_it(lake_config, tmp_path):
    """README: to look at the real lake, add "lake_root" to a notebook's config. The notebook
    computes and shows; the lake's files, manifest and ledger stay exactly as they were."""
    from spine.lake import verify

    root = lake_config["lake_root"]
    if not lake.path(root, "clean", **PARAMS).exists():
        pytest.skip("needs the lake the kernel-path test writes")

    def snapshot():
        from pathlib import Path
        return {p: p.stat().st_mtime_ns for p in Path(root).rglob("*")}

    before = snapshot()
    nb = execute("calc", tmp_path, calc="symbol_week", **PARAMS,
                 config={"lake_root": root, "as_of": "2025-08-01"})
    text = json.dumps([o for c in nb["cells"] for o in c.get("outputs", [])])
    assert f"Looking at {root}" in text and "rows" in text
    assert snapshot() == before
    assert verify.verify(root, regsho=False) == []


def test_a_pipeline_notebook_never_fetches_behind_the_dags_back(lake_config, tmp_path):
    """With a lake_root (the pipeline), a missing upstream is an error, not a silent fetch."""
    with pytest.raises(pm.PapermillExecutionError):
        execute("clean", tmp_path, tier="T1", week_start="2025-06-09", config=lake_config)
    assert not lake.path(lake_config["lake_root"], "raw", tier="T1", week_start="2025-06-09").exists()


def test_notebooks_have_one_parameters_cell_and_no_outputs():
    for path in sorted((REPO / "notebooks").glob("*.ipynb")):
        nb = json.loads(path.read_text())
        tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1, path.name
        assert all(not c.get("outputs") and not c.get("execution_count")
                   for c in nb["cells"] if c["cell_type"] == "code"), path.name
