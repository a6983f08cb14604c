# %% tags=["parameters"]
# Parameters: the pipeline injects its own values. By hand, these defaults build a small
# temporary lake in which the synthetic source restates T2 week 2025-06-02 on 2025-08-15.
tier = "T2"
week_start = "2025-06-02"
old = ""  # capture ids; empty: the two most recent distinct captures
new = ""
earlier = None  # the earlier weeks of its 13-week trend window (the plan's); None: from the lake
later = None  # the later weeks whose trend windows contain it (the plan's); None: from the lake
config = {}  # overrides of config/config.yaml; add "lake_root" to use a lake

# %%
from IPython.display import Markdown, display

from spine.reports import revision as revisions
from spine.reports import style

cfg = revisions.notebook_lake(config, tier, week_start)
d = revisions.diff(cfg["lake_root"], tier, week_start, old or None, new or None)
earlier, later = revisions.window_weeks(cfg["lake_root"], d, earlier, later)
top_n = cfg["report"]["top_n"]
display(Markdown(revisions.title(cfg["lake_root"], d)))

# %% [markdown]
# ## Totals before and after, per tier and summary type

# %%
style.styled(d.totals())

# %% [markdown]
# ## Rows added, removed and changed (by natural key)

# %%
for name, rows in [("added", d.added), ("removed", d.removed), ("changed", d.changed)]:
    display(Markdown(f"### {len(rows)} rows {name}"))
    if len(rows):
        display(style.styled(d.shown(name, top_n)))

# %% [markdown]
# ## Largest changes

# %%
display(Markdown("### Symbols"))
display(style.styled(d.largest("symbol", top_n)))
display(Markdown("### Venues"))
display(style.styled(d.largest("venue", top_n)))

# %% [markdown]
# ## Effect on this week's calculations

# %%
effect = d.calc_effect(top_n)
display(style.styled(effect["summary"]))
display(Markdown("### Venue shares"))
display(style.styled(effect["venues"]))
display(Markdown("### Securities: HHI and ATS share"))
display(style.styled(effect["securities"]))

# %% [markdown]
# ## Effect on the symbol trend
#
# Each symbol's `symbol_trend` for this week computed on the old and on the new version, with the earlier weeks of its 13-week window as the lake holds them: the mean shares per trading day and the z-score a reviewer would have seen, before and after.

# %%
display(Markdown(revisions.trend_note(earlier)))
style.styled(revisions.trend_effect(cfg["lake_root"], d, earlier, top_n))

# %% [markdown]
# ## Records

# %%
display(Markdown(revisions.links_markdown(cfg["lake_root"], d, later)))
