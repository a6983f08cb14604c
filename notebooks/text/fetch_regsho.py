# %% [markdown]
# # Reg SHO daily short-sale volume for one week
#
# Fetches the consolidated NMS file of every trading day of the week (header, rows, trailer record count verified), stores each as a raw capture and advances `clean/finra_regsho_daily/` when it validates.

# %% tags=["parameters"]
# Parameters: the pipeline injects its own values. These defaults run the notebook by hand
# against the embedded synthetic source, in a fresh temporary lake (nothing lands in the repo).
week_start = "2025-06-02"
config = {"as_of": "2025-08-01"}  # overrides of config/config.yaml; add "lake_root" to use a lake

# %%
import pandas as pd

from spine import steps
from spine.ingest.fetch import fetch_regsho

cfg = steps.notebook_config(config, "fetch_regsho")
summary = fetch_regsho(cfg, week_start)
pd.DataFrame(summary["days"])
