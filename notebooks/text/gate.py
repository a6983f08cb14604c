# %% [markdown]
# # Gate a run's captures
#
# Holds every capture a run fetched to the quality gates, oldest week first within each tier (a week's row and symbol bands compare with the weeks before it), and records each verdict in the ledger: `accepted` (clean is to hold it) or `refused` (clean keeps what it held; the capture stays in raw). A capture decided before (an identical re-fetch) is not decided again. Clean, calculations and reports follow in the derive stage.

# %% tags=["parameters"]
# Parameters: the pipeline injects its own values. These defaults run the notebook by hand
# against the embedded synthetic source, in a fresh temporary lake (nothing lands in the repo).
receipts = []  # the run's fetch receipts; empty: fetch `tier` / `week_start` first
output = ""  # where the run's ingest record goes
tier = "T2"
week_start = "2025-06-02"
config = {"as_of": "2025-08-01"}  # overrides of config/config.yaml; add "lake_root" to use a lake

# %%
import pandas as pd
from IPython.display import Markdown, display

from spine import lake, steps
from spine.ingest import decide, fetch
from spine.ingest.ledger import LakeState

cfg = steps.notebook_config(config, "gate")
if not receipts:  # by hand: the Snakefile fetches the week into the scratch lake first
    steps.upstream(cfg, "gate", [tier], [week_start])
    receipts = [str(fetch.receipts(cfg["lake_root"], tier, week_start)[-1])]
    output = str(lake.path(cfg["lake_root"], "ingest", run_key=f"hand-{tier}-{week_start}"))
verdicts = decide.run_gates(cfg, receipts, output)
verdicts

# %%
state = LakeState.read(cfg["lake_root"])
for row in verdicts.itertuples():
    report = state.report(row.tier, row.week_start, row.capture_id)
    failed = [c for c in report["checks"] if c["status"] != "PASS"]
    if failed:
        display(Markdown(f"### {row.tier} {row.week_start}: capture `{row.capture_id}` {report['status']}"))
        display(pd.DataFrame(failed))
