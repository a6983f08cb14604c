# %% [markdown]
# # Fetch one FINRA OTC Transparency week
#
# Fetches the detail rows of one (tier, week) from the configured source and stores them in `raw/` as an immutable capture, named by its content (`capture_id`).

# %% tags=["parameters"]
# Parameters: the pipeline injects its own values. These defaults run the notebook by hand
# against the embedded synthetic source, in a fresh temporary lake (nothing lands in the repo).
tier = "T2"
week_start = "2025-06-02"
config = {"as_of": "2025-08-01"}  # overrides of config/config.yaml; add "lake_root" to use a lake
fetch_key = ""  # the pipeline names each fetch: asof-<date> or at-<time>

# %%
from spine import steps
from spine.ingest.fetch import fetch, read_capture, show_receipt

cfg = steps.notebook_config(config, "fetch")
receipt = fetch(cfg, tier, week_start, fetch_key or None)
show_receipt(receipt)

# %%
raw = read_capture(cfg["lake_root"], receipt)
raw.groupby("summaryTypeCode").agg(rows=("issueSymbolIdentifier", "size"), symbols=("issueSymbolIdentifier", "nunique"), shares=("totalWeeklyShareQuantity", "sum"))
