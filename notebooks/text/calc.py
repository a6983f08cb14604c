# %% [markdown]
# # One calculation for one week
#
# Runs one calculation of `spine/derive/registry.py` (its function in `spine/derive/calcs.py`, its schema in `spine/schemas.py`) for one tier and week: reads the inputs the registry names (clean, other calculations over a window of weeks, Reg SHO days), checks the output against its schema and writes `calc/<calc>/tier=<tier>/week_start=<week>/`. Change `calc` to run another one; `spine.derive.registry.CALCS` lists them.

# %% tags=["parameters"]
# Parameters: the pipeline injects its own values. These defaults run the notebook by hand
# against the embedded synthetic source, in a fresh temporary lake (nothing lands in the repo).
calc = "symbol_trend"
version = 0  # the registry's version (the pipeline passes it so that bumping it reruns the job)
tier = "T2"
week_start = "2025-06-02"
windows = {}  # input -> the weeks of its window to read (the plan's); empty: from the ledger
config = {"as_of": "2025-08-01"}  # overrides of config/config.yaml; add "lake_root" to use a lake

# %%
from spine import steps
from spine.derive import registry
from spine.derive.calc import make_calc

entry = registry.get(calc)
cfg = steps.notebook_config(config, "calc")
steps.upstream(cfg, "calc", [tier], [week_start])  # by hand: the Snakefile makes its inputs first
result = make_calc(cfg, calc, tier, week_start, windows or None)
print(f"{calc} v{entry.version}: {entry.description}")
print(f"{len(result):,} rows")

# %%
result.head(10)

# %%
result.describe().T
