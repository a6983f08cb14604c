"""The reports' charts, drawn with matplotlib: the weekly report's (`week_*`, from a
spine.reports.weekly.Week) and the symbol report's (`symbol_*`, from a
spine.reports.symbol.Symbol). Each returns the figure; the notebook shows and closes it."""

from __future__ import annotations

import matplotlib.dates as mdates
import matplotlib.pyplot as plt

from spine.derive.calcs import Z_MIN_PRIOR_WEEKS
from spine.ingest.venues import venue_label
from spine.reports.symbol import Symbol
from spine.reports.weekly import Week


def _week_axis(ax) -> None:
    """Weeks on the x axis: one tick per Monday (at most 14 labels), dates as YYYY-MM-DD."""
    ax.xaxis.set_major_locator(mdates.WeekdayLocator(byweekday=mdates.MO,
                                                     interval=1 if _span(ax) <= 14 else 4))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))
    ax.tick_params(axis="x", labelrotation=30)
    ax.set_xlabel("week starting (Monday)")


def _span(ax) -> float:
    lo, hi = ax.get_xlim()
    return (hi - lo) / 7


# --- the weekly report -------------------------------------------------------------------------

def week_trend(week: Week):
    """Per tier, over the weeks clean holds of the last 13: ATS share of the tier's volume
    and the HHI of its venue shares."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 3.6))
    for tier, h in week.history.items():
        ts = h["tier_summary"].sort_values("week_start")
        left.plot(ts["week_start"], ts["ats_share"] * 100, marker="o", label=tier)
        right.plot(ts["week_start"], ts["venue_hhi"], marker="o", label=tier)
    left.set_title("ATS share of off-exchange volume")
    left.set_ylabel("% of the tier's shares")
    left.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:,.1f}%"))
    right.set_title("Concentration of venue shares")
    right.set_ylabel("HHI (0 to 10,000)")
    right.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    for ax in (left, right):
        _week_axis(ax)
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def week_venues(week: Week, n: int = 5):
    """Per tier, the tier share of this week's top `n` venues over the last 13 weeks."""
    tiers = list(week.history)
    fig, axes = plt.subplots(1, max(1, len(tiers)), figsize=(5.5 * max(1, len(tiers)), 3.8),
                             squeeze=False)
    for ax, tier in zip(axes[0], tiers):
        vs = week.history[tier]["venue_share"]
        vs = vs.assign(venue=venue_label(vs))
        top = (vs[vs["week_start"] == vs["week_start"].max()]
               .nsmallest(n, "rank")["venue"].tolist())
        pivot = (vs[vs["venue"].isin(top)]
                 .pivot_table(index="week_start", columns="venue", values="tier_share",
                              aggfunc="sum").reindex(columns=top).fillna(0.0) * 100)
        for venue in top:
            ax.plot(pivot.index, pivot[venue], marker=".", label=venue)
        ax.set_title(f"{tier}: top {n} venues this week")
        ax.set_ylabel("% of the tier's shares")
        ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:,.1f}%"))
        _week_axis(ax)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    if not tiers:
        axes[0][0].text(0.5, 0.5, "no accepted tier this week", ha="center")
    fig.tight_layout()
    return fig


def week_movers(week: Week, n: int = 10):
    """Per tier, this week's largest rises and falls by z-score."""
    movers = week.movers(n)
    tiers = list(movers)
    fig, axes = plt.subplots(1, max(1, len(tiers)), figsize=(5 * max(1, len(tiers)),
                                                              4.5 if tiers else 0.8),
                             squeeze=False)
    for ax, tier in zip(axes[0], tiers):
        m = movers[tier].sort_values("z_shares_per_day")
        colors = ["tab:green" if z > 0 else "tab:red" for z in m["z_shares_per_day"]]
        ax.barh(m["symbol"], m["z_shares_per_day"], color=colors)
        ax.axvline(0, color="black", linewidth=0.8)
        lo, hi = m["earlier_weeks"].min(), m["earlier_weeks"].max()
        ax.set_title(f"{tier}: movers")
        ax.set_xlabel("z-score of shares per trading day vs its "
                      + (f"{lo}" if lo == hi else f"{lo}-{hi}") + " earlier weeks")
    if not tiers:
        axes[0][0].text(0.5, 0.5, f"no symbol has the {Z_MIN_PRIOR_WEEKS} earlier weeks a "
                        "z-score needs yet", ha="center")
        axes[0][0].set_axis_off()
    fig.tight_layout()
    return fig


# --- the symbol report -------------------------------------------------------------------------

def symbol_volume(s: Symbol):
    """The symbol's ATS and non-ATS shares per trading day, week by week, stacked."""
    w = s.per_week()
    fig, ax = plt.subplots(figsize=(11, 3.8))
    ax.bar(w["week_start"], w["ats_per_day"], width=5, label="ATS", color="tab:blue")
    ax.bar(w["week_start"], w["non_ats_per_day"], width=5, bottom=w["ats_per_day"],
           label="non-ATS", color="tab:orange")
    ax.set_title(f"{s.symbol}: off-exchange shares per trading day")
    ax.set_ylabel("shares per trading day")
    _week_axis(ax)
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.legend()
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig


def symbol_venues(s: Symbol, n: int = 6):
    """Each week's shares by venue, as % of the symbol's off-exchange shares: the `n`
    largest venues over the whole history, the rest as "other"."""
    v = s.venues.assign(venue=venue_label(s.venues))
    top = v.groupby("venue")["shares"].sum().nlargest(n).index
    v["venue"] = v["venue"].where(v["venue"].isin(top), "other")
    pivot = v.pivot_table(index="week_start", columns="venue", values="shares",
                          aggfunc="sum", fill_value=0.0)
    pivot = pivot.div(pivot.sum(axis=1).where(lambda t: t > 0), axis=0).fillna(0.0) * 100
    fig, ax = plt.subplots(figsize=(11, 3.8))
    ax.stackplot(pivot.index, *[pivot[c] for c in pivot.columns], labels=list(pivot.columns))
    ax.set_title(f"{s.symbol}: venue mix")
    ax.set_ylabel("% of the symbol's off-exchange shares")
    _week_axis(ax)
    ax.set_ylim(0, 100)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    return fig


def symbol_short_ratio(s: Symbol):
    """The symbol's Reg SHO short ratio beside its ATS share, week by week."""
    short = s.short.sort_values("week_start")
    fig, ax = plt.subplots(figsize=(11, 3.4))
    ax.plot(short["week_start"], short["short_ratio"] * 100, marker="o",
            label="Reg SHO short ratio")
    ax.plot(short["week_start"], short["ats_share"] * 100, marker=".",
            label="ATS share (FINRA weekly)")
    ax.set_title(f"{s.symbol}: short ratio beside ATS share")
    ax.set_ylabel("% (short volume / Reg SHO volume; ATS / off-exchange shares)")
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:,.0f}%"))
    _week_axis(ax)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
