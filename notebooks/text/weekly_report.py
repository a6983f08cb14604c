# %% tags=["parameters"]
# Parameters: the pipeline injects its own values. These defaults run the notebook by hand
# against the embedded synthetic source, in a fresh temporary lake (nothing lands in the repo).
week_start = "2025-06-02"
tiers = {}  # tier -> what to show (spine.ingest.ledger.LakeState.week_view, the plan's); empty: T1, T2, OTCE from the ledger
config = {"as_of": "2025-08-01"}  # overrides of config/config.yaml; add "lake_root" to use a lake

# %%
from IPython.display import Markdown, display

from spine import steps, vocabulary
from spine.reports import charts, style, weekly

cfg = steps.notebook_config(config, "weekly_report")
if not tiers:  # by hand: every tier, fetched, gated and calculated first by the Snakefile
    steps.upstream(cfg, "weekly_report", vocabulary.TIERS, [week_start])
    tiers = weekly.week_view(cfg["lake_root"], week_start, vocabulary.TIERS)
week = weekly.load_week(cfg, week_start, tiers)
display(Markdown(week.title()))

# %% [markdown]
# ## Headline totals per tier
#
# Shares per trading day divide by the week's XNYS trading days; HHI is the concentration of the tier's venue shares (0 to 10,000).

# %%
style.styled(week.headline(), hide_index=False)

# %% [markdown]
# ## Quality gates

# %%
line, problems = week.gate_verdict()
display(Markdown(line))
if problems is not None:
    display(style.styled(problems))

# %% [markdown]
# ## The last 13 weeks
#
# Each tier's ATS share of off-exchange volume and the concentration of its venue shares, over the weeks the lake holds.

# %%
import matplotlib.pyplot as plt

display(Markdown(week.window_note()))
fig = charts.week_trend(week)
display(fig)
plt.close(fig)

# %% [markdown]
# ## Movers
#
# Symbols whose shares per trading day moved most against their own earlier weeks, as a z-score; symbols under 10,000 shares a day are left out (`spine/derive/calcs.py`, `movers`).

# %%
display(Markdown(week.movers_note(10)))
fig = charts.week_movers(week, 10)
display(fig)
plt.close(fig)
for tier, table in week.movers(10).items():
    display(Markdown(f"### {tier}"))
    display(style.styled(table))

# %% [markdown]
# ## Top symbols by off-exchange volume

# %%
for tier, table in week.top_symbols(cfg["report"]["top_n"]).items():
    display(Markdown(f"### {tier}"))
    display(style.styled(table))

# %% [markdown]
# ## Venues
#
# Share of the tier's shares over time for this week's largest venues; then the ranking, its change since last week (+ = up), the mean tier share over the weeks of the last 13 the lake holds (a week the venue did not report counts as 0), and the venues that entered or exited.

# %%
fig = charts.week_venues(week, 5)
display(fig)
plt.close(fig)
for tier, table in week.top_venues(cfg["report"]["top_n"]).items():
    display(Markdown(f"### {tier}"))
    display(style.styled(table))

# %% [markdown]
# ## Concentration of securities
#
# Herfindahl-Hirschman index of each security's venue shares, 0 to 10,000 (10,000 = all volume on one venue).

# %%
style.styled(week.concentration(), hide_index=False)

# %% [markdown]
# ## Short volume beside off-exchange volume
#
# FINRA Reg SHO short-sale volume (reported to FINRA facilities; not short interest) over the week's trading days, beside FINRA's weekly OTC total for the same symbols and their ATS share. NMS tiers only.

# %%
summary = week.short_volume()
if summary.empty:
    display(Markdown("_No Reg SHO data this week (Reg SHO not enabled, or no NMS tier accepted)._"))
else:
    display(Markdown(week.short_volume_note()))
    display(style.styled(summary))
    for tier, table in week.top_short_volume(cfg["report"]["top_n"]).items():
        display(Markdown(f"### {tier}"))
        display(style.styled(table))

# %% [markdown]
# ## Calculations
#
# Every calculation in `spine/derive/registry.py` and its rows this week, per tier (`docs/data-contract.md` describes each column).

# %%
style.styled(week.calculations())
