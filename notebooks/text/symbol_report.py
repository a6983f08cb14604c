# %% tags=["parameters"]
# Parameters: the pipeline injects its own values. By hand, these defaults build a small
# temporary lake of 6 weeks from the embedded synthetic source (nothing lands in the repo).
tier = "T1"
symbol = ""  # empty: the symbol with the most off-exchange volume in the lake's latest week
weeks = []  # the weeks clean holds for the tier (the plan's); empty: from the ledger
revisions = []  # [week_start, old, new] of the tier's revisions (the plan's); empty: from the ledger
config = {"as_of": "2025-09-30"}  # overrides of config/config.yaml; add "lake_root" to use a lake

# %%
from IPython.display import Markdown, display

from spine.reports import charts, style
from spine.reports.symbol import load_symbol, symbol_plan

cfg, weeks, revisions, symbol = symbol_plan(config, tier, symbol, weeks, revisions)
s = load_symbol(cfg, tier, symbol, weeks, revisions)
display(Markdown(s.title()))

# %% [markdown]
# ## Off-exchange volume per trading day
#
# Each week's shares divided by its XNYS trading days (a holiday week is not a drop), split into ATS and non-ATS.

# %%
import matplotlib.pyplot as plt

fig = charts.symbol_volume(s)
display(fig)
plt.close(fig)

# %% [markdown]
# ## Venue mix over time
#
# Each week's off-exchange shares by venue (an MPID within its summary type), as a share of the symbol's total: the largest venues over the whole history, the rest as other.

# %%
fig = charts.symbol_venues(s)
display(fig)
plt.close(fig)

# %% [markdown]
# ## Short ratio
#
# FINRA Reg SHO short-sale volume over total volume reported to FINRA facilities (not short interest), beside the symbol's ATS share. NMS tiers with Reg SHO only.

# %%
if len(s.short):
    fig = charts.symbol_short_ratio(s)
    display(fig)
    plt.close(fig)
else:
    display(Markdown("_No Reg SHO data for this symbol (an OTC equity, or Reg SHO not enabled)._"))

# %% [markdown]
# ## Revisions that changed this symbol
#
# Every restatement of a week whose captures differ in this symbol's rows, with its revision report.

# %%
if len(s.revisions):
    table = s.revisions.assign(report=[f'<a href="{r}">revision report</a>' for r in s.revisions["report"]])
    display(style.styled(table))
else:
    display(Markdown("_No revision changed this symbol's rows._"))

# %% [markdown]
# ## Week by week

# %%
display(Markdown(s.table_note()))
style.styled(s.table())
