# %% [markdown]
# # Clean for one accepted week
#
# Materialises the clean partition from the raw capture the ledger accepted (or pinned, or an operator overrode): one row per security, venue and summary type, typed and checked. Every calculation reads it (`spine/derive/registry.py`).

# %% tags=["parameters"]
# Parameters: the pipeline injects its own values. These defaults run the notebook by hand
# against the embedded synthetic source, in a fresh temporary lake (nothing lands in the repo).
tier = "T2"
week_start = "2025-06-02"
capture_id = ""  # the capture clean is to hold (the plan's); empty: what the ledger says
config = {"as_of": "2025-08-01"}  # overrides of config/config.yaml; add "lake_root" to use a lake

# %%
from spine import steps
from spine.derive.clean import make_clean

cfg = steps.notebook_config(config, "clean")
steps.upstream(cfg, "clean", [tier], [week_start])  # by hand: the Snakefile gates the week first
clean = make_clean(cfg, tier, week_start, capture_id or None)
clean.groupby("summary_type").agg(rows=("symbol", "size"), shares=("shares", "sum"))
