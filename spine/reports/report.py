"""The weekly report's tables and chart, assembled from gate reports and calculations."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from spine import lake
from spine import calendar as cal
from spine.ingest.gates import PASS
from spine.ingest.gates import plain as _plain
from spine.derive.registry import TREND_WEEKS

COUNT, SHARES, PCT, RATIO = "{:,.0f}", "{:,.0f}", "{:.1%}", "{:,.1f}"
SIGNED_PCT, Z = "{:+.1%}", "{:+.2f}"
FORMATS = {
    "symbols": COUNT, "venues": COUNT, "securities": COUNT, "trades": COUNT,
    "total_shares": SHARES, "total_trades": COUNT, "shares": SHARES,
    "shares_per_trading_day": SHARES, "ats_share": PCT, "tier_share": PCT, "type_share": PCT,
    "top_venue_share": PCT, "avg_trade_size": RATIO, "median_hhi": COUNT,
    "volume_weighted_hhi": COUNT, "tier_hhi_of_venues": COUNT, "single_venue_securities": COUNT,
    "short_volume": SHARES, "total_volume": SHARES, "short_ratio": PCT, "median_short_ratio": PCT,
    "symbols_with_reg_sho": COUNT, "corr_short_ratio_ats_share": "{:.2f}",
    "otc_total_shares": SHARES, "otc_share_of_regsho": PCT,
    "shares_before": SHARES, "shares_after": SHARES, "shares_change": "{:+,.0f}",
    "trades_before": COUNT, "trades_after": COUNT, "trades_change": "{:+,.0f}",
    "shares_old": SHARES, "shares_new": SHARES, "trades_old": COUNT, "trades_new": COUNT,
    "rows_before": COUNT, "rows_after": COUNT, "tier_share_before": PCT, "tier_share_after": PCT,
    "tier_share_change": "{:+.2%}", "hhi_before": COUNT, "hhi_after": COUNT,
    "hhi_change": "{:+,.0f}", "ats_share_before": PCT, "ats_share_after": PCT,
    "ats_share_change": "{:+.2%}", "shares_per_day_before": SHARES,
    "shares_per_day_after": SHARES, "mean_13w_shares_per_day_before": SHARES,
    "mean_13w_shares_per_day_after": SHARES, "mean_13w_change": "{:+,.0f}",
    "z_shares_per_day_before": Z, "z_shares_per_day_after": Z, "z_change": Z,
    "shares_per_day": SHARES, "prior_shares_per_day": SHARES, "change_shares_per_day": "{:+,.0f}",
    "z_shares_per_day": Z, "wow_change": SIGNED_PCT, "mean_13w_tier_share": PCT,
    "mean_4w_tier_share": PCT, "venue_hhi": COUNT, "rank_change": "{:+,.0f}",
    "weeks_in_window": COUNT, "rank": COUNT, "previous_rank": COUNT, "venue_count": COUNT,
    "earlier_weeks": COUNT,
}
# Column names as a reviewer reads them, and FINRA's summary-type codes in words.
LABELS = {"ATS_W_SMBL_FIRM": "ATS", "OTC_W_SMBL_FIRM": "non-ATS",
          "ATS_W_SMBL": "ATS (total)", "OTC_W_SMBL": "non-ATS (total)"}


def styled(df: pd.DataFrame, hide_index: bool = True):
    """A table for the HTML report: thousands separators, percentages, dates as dates,
    summary types in words, column names with spaces. A float column without a format of its
    own gets thousands separators (whole numbers) or two decimals, never a raw repr. A table
    may name its own headers in `df.attrs["labels"]` (column -> text): a mean over a window
    shorter than its name says so there (`window_label`)."""
    labels = dict(df.attrs.get("labels", {}))
    df = df.copy()
    for col in df.columns:
        if df[col].dtype == object or str(df[col].dtype).startswith(("string", "str")):
            df[col] = df[col].map(lambda v: LABELS.get(v, v) if isinstance(v, str) else v)
    formats = {c: f for c, f in FORMATS.items() if c in df.columns}
    for col in df.columns:
        if col in formats:
            continue
        if pd.api.types.is_datetime64_any_dtype(df[col]):
            formats[col] = lambda v: "-" if pd.isna(v) else (
                f"{v:%Y-%m-%d}" if v == v.normalize() else f"{v:%Y-%m-%d %H:%M}")
        elif pd.api.types.is_float_dtype(df[col]):
            whole = df[col].dropna().pipe(lambda v: bool(len(v)) and bool((v == v.round()).all()))
            formats[col] = COUNT if whole or df[col].abs().max() >= 1000 else "{:,.2f}"
        elif pd.api.types.is_integer_dtype(df[col]):
            formats[col] = COUNT
    style = df.style.format(formats, na_rep="-")
    text = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])
            and not pd.api.types.is_datetime64_any_dtype(df[c])]
    if text:
        style = style.set_properties(subset=text, **{"text-align": "left"})
    style = style.relabel_index([labels.get(c) or header(c) for c in df.columns],
                                axis="columns")
    return style.hide(axis="index") if hide_index else style


WORDS = {"ats": "ATS", "hhi": "HHI", "otc": "OTC", "id": "ID", "mpid": "MPID", "crd": "CRD",
         "z": "z-score", "wow": "week/week", "regsho": "Reg SHO", "4w": "4-week",
         "13w": "13-week", "sho": "SHO", "corr": "corr."}


def header(column) -> str:
    """A column name as a reader reads it: `ats_share` -> "ATS share"."""
    words = [WORDS.get(w, w) for w in str(column).split("_")]
    text = " ".join(words)
    return text[:1].upper() + text[1:]


def window_label(measure: str, weeks: int, of: int = TREND_WEEKS) -> str:
    """The header of a mean over a window of `of` weeks that holds `weeks` of them:
    "Mean 13-week tier share" when it holds all, else "Mean tier share (5 of 13 weeks)"."""
    if weeks >= of:
        return f"Mean {of}-week {measure}"
    return f"Mean {measure} ({weeks} of {of} weeks)"


# Shown wherever `otc_share_of_regsho` is (weekly and symbol reports): a ratio that can pass 1.
REGSHO_NOTE = (
    "**OTC share of Reg SHO can exceed 100%.** It divides FINRA's weekly OTC shares of a symbol "
    "(ATS + non-ATS) by the total volume in Reg SHO's daily files over the week's trading days. "
    "These are two FINRA publications built by different rules: Reg SHO's daily files (the "
    "consolidated file of trades reported to FINRA's TRFs and the ADF) count only media-reported "
    "trades executed during normal market hours, while the weekly OTC data is derived from the "
    "OTC trades each ATS and member firm reports to FINRA's trade reporting facilities, under "
    "FINRA Rules 6110 and 6610. So the ratio compares two measures of off-exchange volume, not "
    "a part with its whole: above 100% means the weekly data counted more of the symbol's "
    "shares than Reg SHO's files did, which their different rules allow; it is not an error.")


def regsho_note(ratios: dict[str, pd.Series], unit: str = "symbols") -> str:
    """REGSHO_NOTE, and per key (a tier, or a symbol) how many of its ratios
    (`otc_share_of_regsho`, one per `unit`) are above 100%."""
    counts = [f"{key}: {int((r > 1).sum()):,} of {int(r.notna().sum()):,} {unit} above 100%"
              for key, r in ratios.items() if r.notna().any()]
    return REGSHO_NOTE + (f" Here, {'; '.join(counts)}." if counts else "")


def _week_axis(ax) -> None:
    """Weeks on the x axis: one tick per Monday (at most 14 labels), dates as YYYY-MM-DD."""
    import matplotlib.dates as mdates

    ax.xaxis.set_major_locator(mdates.WeekdayLocator(byweekday=mdates.MO,
                                                     interval=1 if _span(ax) <= 14 else 4))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))
    ax.tick_params(axis="x", labelrotation=30)
    ax.set_xlabel("week starting (Monday)")


def _span(ax) -> float:
    lo, hi = ax.get_xlim()
    return (hi - lo) / 7


@dataclass
class Week:
    week_start: dt.date
    tiers: list[str]
    gates: dict[str, dict]  # tier -> gate report of the version shown (clean's, if any)
    refused: dict[str, list[dict]] = field(default_factory=dict)  # revisions refused since
    calcs: dict[str, dict[str, pd.DataFrame]] = field(default_factory=dict)  # tier -> name -> df
    overrides: dict[str, dict] = field(default_factory=dict)  # tier -> the override letting it in
    history: dict[str, dict[str, pd.DataFrame]] = field(default_factory=dict)  # tier -> name -> df
    revisions: dict[str, list[list[str]]] = field(default_factory=dict)  # tier -> [old, new]

    def title(self) -> str:
        days = cal.trading_days(self.week_start)
        accepted = [t for t in self.tiers if t in self.calcs]
        refused = [t for t in self.tiers if t not in self.overrides
                   and (self.gates[t]["status"] != PASS or self.refused.get(t))]
        line = (f"# FINRA OTC Transparency, week of {self.week_start:%Y-%m-%d}\n\n"
                f"{days} trading days. Tiers with an accepted version: "
                f"{', '.join(accepted) or 'none'}.")
        if refused:
            line += (f" **Refused by a gate: {', '.join(refused)}** (see Quality gates; a "
                     "refused revision leaves the previous accepted version in place).")
        for tier, o in self.overrides.items():
            line += (f"\n\n**{tier} is in clean by an override**: check(s) "
                     f"{', '.join(o['checks'])} failed and were overridden by {o['by']} on "
                     f"{o['at']:%Y-%m-%d %H:%M} UTC: \"{o['reason']}\" (spine override --revoke "
                     "takes it back).")
        links = [f"[{tier} revision {old[:8]} to {new[:8]}](../revisions/tier={tier}/"
                 f"week_start={self.week_start:%Y-%m-%d}/{old}_to_{new}.html)"
                 for tier, pairs in self.revisions.items() for old, new in pairs]
        if links:
            line += "\n\nThis week was restated: " + ", ".join(links) + "."
        line += "\n\n[All reports](../index.html)"
        return line

    def gate_verdict(self) -> tuple[str, pd.DataFrame | None]:
        """One line when every check of every capture shown passed; otherwise the line and
        the checks that did not pass."""
        rows = self.gate_outcomes()
        n_checks = len(rows)
        other = rows[rows["status"] != PASS] if n_checks else rows
        captures = sum(1 + len(self.refused.get(t, [])) for t in self.tiers)
        if not len(other):
            return (f"All {n_checks} checks passed for the {captures} capture(s) shown "
                    f"({', '.join(self.tiers)}).", None)
        counts = ", ".join(f"{n} {status}" for status, n in
                           other["status"].value_counts().sort_index().items())
        return (f"{n_checks - len(other)} of {n_checks} checks passed; the other {len(other)} "
                f"({counts}) are below. Every check is in the gate reports under gates/.", other)

    def gate_outcomes(self) -> pd.DataFrame:
        rows = []
        for tier in self.tiers:
            for verdict in [self.gates[tier], *self.refused.get(tier, [])]:
                for c in verdict["checks"]:
                    rows.append({"tier": tier, "capture_id": verdict["capture_id"],
                                 "check": c["check"], "status": c["status"],
                                 "measured": _plain(c["measured"]),
                                 "limit": "-" if c["limit"] is None else _plain(c["limit"]),
                                 "message": c["message"]})
        return pd.DataFrame(rows, columns=["tier", "capture_id", "check", "status", "measured",
                                           "limit", "message"])

    def headline(self) -> pd.DataFrame:
        rows = []
        for tier in self.tiers:
            gate = self.gates[tier]
            status = gate["status"] + (" (overridden)" if tier in self.overrides else "")
            row = {"tier": tier, "gate": status, "capture_id": gate["capture_id"]}
            if tier in self.calcs:
                ts = self.calcs[tier]["tier_summary"].iloc[0]
                row |= {
                    "symbols": int(ts["symbols"]),
                    "venues": int(ts["ats_venues"] + ts["non_ats_venues"]),
                    "total_shares": ts["total_shares"],
                    "total_trades": int(ts["total_trades"]),
                    "shares_per_trading_day": ts["shares_per_day"],
                    "ats_share": ts["ats_share"],
                    "venue_hhi": ts["venue_hhi"],
                    "avg_trade_size": ts["avg_trade_size"],
                }
            rows.append(row)
        return pd.DataFrame(rows).set_index("tier")

    def top_symbols(self, n: int) -> dict[str, pd.DataFrame]:
        cols = ["symbol", "issue_name", "total_shares", "total_trades", "ats_share",
                "venue_count", "avg_trade_size"]
        return {tier: c["symbol_week"].nlargest(n, "total_shares")[cols].reset_index(drop=True)
                for tier, c in self.calcs.items()}

    def top_venues(self, n: int) -> dict[str, pd.DataFrame]:
        cols = ["rank", "rank_change", "venue", "summary_type", "participant_name", "shares",
                "tier_share", "mean_13w_tier_share", "status"]
        out = {}
        for tier, c in self.calcs.items():
            vt = c["venue_trend"]
            shown = vt[vt["rank"].notna()].head(n)
            moves = vt[vt["status"].isin(["entered", "exited"])]
            out[tier] = pd.concat([shown, moves[~moves.index.isin(shown.index)]])[cols]
            out[tier].attrs["labels"] = {
                "mean_13w_tier_share": window_label("tier share", self.window_weeks(tier))}
        return out

    def window_weeks(self, tier: str) -> int:
        """How many weeks of the TREND_WEEKS ending this week the lake holds for `tier`: the
        weeks its trend charts and 13-week means stand on (the calculations read the same
        window, spine.plan)."""
        h = self.history.get(tier, {}).get("tier_summary")
        return 0 if h is None else int(h["week_start"].nunique())

    def window_note(self) -> str:
        """Per tier, how many of the last TREND_WEEKS weeks the charts and means stand on."""
        held = {t: self.window_weeks(t) for t in self.history}
        if not held:
            return "_No tier has an accepted version this week: no trend to show._"
        if all(n == TREND_WEEKS for n in held.values()):
            return f"All {TREND_WEEKS} weeks are in the lake for {', '.join(held)}."
        return (f"The lake holds fewer than {TREND_WEEKS} weeks here, so the charts and the "
                f"{TREND_WEEKS}-week means stand on: "
                + ", ".join(f"{t} {n} of {TREND_WEEKS} weeks" for t, n in held.items()) + ".")

    def movers(self, n: int) -> dict[str, pd.DataFrame]:
        """Per tier, the week's movers ranked by z-score (rises, then falls), with the earlier
        weeks each z-score and prior mean stand on (the symbol's weeks in the window, but
        this one)."""
        cols = ["direction", "rank", "symbol", "shares_per_day", "prior_shares_per_day",
                "change_shares_per_day", "z_shares_per_day", "earlier_weeks"]
        out = {}
        for tier, c in self.calcs.items():
            m = c["movers"]
            m = m[(m["ranked_by"] == "z_score") & (m["rank"] <= n)]
            if len(m):
                out[tier] = m.assign(earlier_weeks=m["weeks_in_window"] - 1)[cols].reset_index(
                    drop=True)
                out[tier].attrs["labels"] = {
                    "prior_shares_per_day": "Mean shares per day, earlier weeks",
                    "earlier_weeks": f"Earlier weeks (of {TREND_WEEKS - 1})"}
        return out

    def movers_note(self, n: int) -> str:
        """What the Movers section's z-scores stand on: the fewest earlier weeks a z-score
        needs, and per tier how many earlier weeks the ones shown used."""
        from spine.derive.calcs import Z_MIN_PRIOR_WEEKS

        line = (f"A z-score compares this week's shares per trading day with the symbol's "
                f"earlier weeks among the last {TREND_WEEKS} (up to {TREND_WEEKS - 1}, the weeks "
                f"it traded that the lake holds) and needs at least {Z_MIN_PRIOR_WEEKS} of them.")
        movers = self.movers(n)
        if not movers:
            held = ", ".join(f"{t} {self.window_weeks(t)}" for t in self.calcs)
            return (line + f" No symbol has {Z_MIN_PRIOR_WEEKS} earlier weeks yet (weeks of the "
                    f"last {TREND_WEEKS} in the lake: {held or 'none'}).")
        for tier in self.calcs:
            if tier not in movers:
                line += f" {tier}: no symbol with {Z_MIN_PRIOR_WEEKS} earlier weeks moved yet."
                continue
            earlier = movers[tier]["earlier_weeks"]
            lo, hi = int(earlier.min()), int(earlier.max())
            line += (f" {tier}: every z-score below uses {lo} earlier weeks." if lo == hi else
                     f" {tier}: {lo} to {hi} earlier weeks (column Earlier weeks).")
        return line

    def trend_chart(self):
        """Per tier, over the weeks clean holds of the last 13: ATS share of the tier's volume
        and the HHI of its venue shares."""
        import matplotlib.pyplot as plt

        fig, (left, right) = plt.subplots(1, 2, figsize=(12, 3.6))
        for tier, h in self.history.items():
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

    def venue_history_chart(self, n: int = 5):
        """Per tier, the tier share of this week's top `n` venues over the last 13 weeks."""
        import matplotlib.pyplot as plt

        from spine.derive import calcs

        tiers = list(self.history)
        fig, axes = plt.subplots(1, max(1, len(tiers)), figsize=(5.5 * max(1, len(tiers)), 3.8),
                                 squeeze=False)
        for ax, tier in zip(axes[0], tiers):
            vs = self.history[tier]["venue_share"]
            vs = vs.assign(venue=calcs.venue_label(vs))
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

    def movers_chart(self, n: int = 10):
        """Per tier, this week's largest rises and falls by z-score."""
        import matplotlib.pyplot as plt

        movers = self.movers(n)
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
            from spine.derive.calcs import Z_MIN_PRIOR_WEEKS

            axes[0][0].text(0.5, 0.5, f"no symbol has the {Z_MIN_PRIOR_WEEKS} earlier weeks a "
                            "z-score needs yet", ha="center")
            axes[0][0].set_axis_off()
        fig.tight_layout()
        return fig

    def short_volume(self) -> pd.DataFrame:
        """Per NMS tier: volume-weighted short ratio, its correlation with ATS share, and the
        most active symbols with both measures (empty when Reg SHO is not enabled)."""
        rows = []
        for tier, c in self.calcs.items():
            sv = c.get("short_volume_weekly")
            if sv is None or not len(sv):
                continue
            has = sv[sv["total_volume"] > 0]
            rows.append({
                "tier": tier,
                "symbols_with_reg_sho": len(has),
                "short_ratio": has["short_volume"].sum() / has["total_volume"].sum(),
                "median_short_ratio": has["short_ratio"].median(),
                "otc_share_of_regsho": has["otc_total_shares"].sum() / has["total_volume"].sum(),
                "corr_short_ratio_ats_share": has["short_ratio"].corr(has["ats_share"]),
            })
        return pd.DataFrame(rows)

    def short_volume_note(self) -> str:
        """Why `otc_share_of_regsho` can pass 100%, with this week's count above it per tier."""
        return regsho_note({tier: c["short_volume_weekly"]["otc_share_of_regsho"]
                            for tier, c in self.calcs.items() if "short_volume_weekly" in c})

    def top_short_volume(self, n: int) -> dict[str, pd.DataFrame]:
        cols = ["symbol", "total_volume", "short_volume", "short_ratio", "otc_total_shares",
                "otc_share_of_regsho", "ats_share", "days_with_data"]
        return {tier: c["short_volume_weekly"].nlargest(n, "total_volume")[cols]
                .reset_index(drop=True)
                for tier, c in self.calcs.items() if "short_volume_weekly" in c}

    def calculations(self) -> pd.DataFrame:
        """Every calculation of spine/derive/registry.py this week: version, what it is, rows per
        tier (a calculation added to the registry appears here by itself)."""
        from spine.derive import registry

        rows = []
        for entry in registry.CALCS:
            row = {"calculation": entry.name, "version": entry.version,
                   "what it is": entry.description}
            for tier in self.tiers:
                frame = self.calcs.get(tier, {}).get(entry.name)
                row[f"{tier} rows"] = "-" if frame is None else f"{len(frame):,}"
            rows.append(row)
        return pd.DataFrame(rows)

    def concentration(self) -> pd.DataFrame:
        rows = []
        for tier, c in self.calcs.items():
            hhi = c["symbol_hhi"]
            weights = hhi["total_shares"]
            rows.append({
                "tier": tier,
                "securities": len(hhi),
                "median_hhi": hhi["hhi"].median(),
                "volume_weighted_hhi": (hhi["hhi"] * weights).sum() / weights.sum(),
                "single_venue_securities": int((hhi["venue_count"] == 1).sum()),
                "tier_hhi_of_venues": float(c["tier_summary"]["venue_hhi"].iloc[0]),
            })
        return pd.DataFrame(rows).set_index("tier") if rows else pd.DataFrame()


def week_view(root: str, week_start: dt.date | str, tiers: list[str]) -> dict[str, dict]:
    """What a weekly report shows per tier (spine.plan.LakeState.week_view, the view the
    Snakefile passes), for hand runs: from the lake's ledger, with the calculations the lake
    has."""
    from spine import plan

    week = cal.check_week_start(week_start)
    view = plan.LakeState.read(root).week_view(week, regsho=True)
    def has(name: str, tier: str, w) -> bool:
        return lake.path(root, "calc", calc=name, tier=tier, week_start=w).exists()

    return {t: v | {"calcs": [c for c in v["calcs"] if has(c, t, week)],
                    "history": [w for w in v["history"]
                                if all(has(c, t, w) for c in plan.HISTORY_CALCS)]}
            for t, v in view.items() if t in tiers}


def load_week(config: dict, week_start: dt.date | str, tiers: dict[str, dict]) -> Week:
    """Per tier of `tiers` (spine.reports.report.week_view): the gate reports of the captures to show
    and, when clean holds a version, its calculations and the trend charts' weeks."""
    from spine import pipeline, plan

    root = config["lake_root"]
    week_start = cal.check_week_start(week_start)

    def gate(tier: str, capture: str) -> dict:
        return lake.read_json(lake.path(root, "gate", tier=tier, week_start=week_start,
                                        capture_id=capture))
    week = Week(week_start=week_start, tiers=list(tiers),
                gates={t: gate(t, v["captures"][0]) for t, v in tiers.items()},
                refused={t: [gate(t, c) for c in v["captures"][1:]] for t, v in tiers.items()},
                revisions={t: v.get("revisions", []) for t, v in tiers.items()
                           if v.get("revisions")})
    for tier, v in tiers.items():
        if not v["accepted"]:
            continue
        week.calcs[tier] = {name: pipeline.read_calc(root, name, tier, week_start)
                            for name in v["calcs"]}
        week.history[tier] = {
            name: pd.concat([pipeline.read_calc(root, name, tier, w) for w in v["history"]],
                            ignore_index=True)
            for name in plan.HISTORY_CALCS}
        if v.get("override"):
            from spine.ingest import ledger

            event = ledger.read_event(lake.path(root, "ledger_event", tier=tier,
                                                week_start=week_start,
                                                event_file=v["override"]))
            week.overrides[tier] = {"by": event["report"]["by"], "at": event["recorded_at"],
                                    "checks": event["report"]["checks"],
                                    "reason": event["reason"]}
    return week


# --- one symbol's history ----------------------------------------------------------------------

def symbol_history(root: str, tier: str, symbol: str, weeks: list[str],
                   name: str = "symbol_week") -> pd.DataFrame:
    """One symbol's rows of calculation `name` (or "clean") over `weeks`, read by DuckDB from
    exactly those partition files (hive keys back as columns); a year of symbol_week takes
    ~0.08 s on a full-size lake (`make bench`)."""
    import duckdb

    kind = "clean" if name == "clean" else "calc"
    files = [str(lake.path(root, kind, calc=name, tier=tier, week_start=w)) for w in weeks]
    if not files:
        return pd.DataFrame()
    con = duckdb.connect()
    try:
        return con.execute("select * from read_parquet(?, hive_partitioning = true, "
                           "union_by_name = true) where symbol = ? order by week_start",
                           [files, symbol]).df()
    finally:
        con.close()


@dataclass
class Symbol:
    tier: str
    symbol: str
    weekly: pd.DataFrame  # symbol_week rows, one per week and issue name
    trend: pd.DataFrame  # symbol_trend rows
    venues: pd.DataFrame  # clean rows: one per week, venue and summary type
    short: pd.DataFrame  # short_volume_weekly rows (NMS tiers with Reg SHO)
    revisions: pd.DataFrame  # the revisions that changed this symbol's rows

    def title(self) -> str:
        w = self.weekly
        names = ", ".join(sorted(set(w["issue_name"].dropna())))
        first, last = w["week_start"].min(), w["week_start"].max()
        return (f"# {self.symbol} ({self.tier}): off-exchange history\n\n"
                f"{names}. {w['week_start'].nunique()} weeks with off-exchange volume between "
                f"{first:%Y-%m-%d} and {last:%Y-%m-%d}; {len(self.revisions)} revision(s) "
                "changed its rows.\n\n[All reports](../../index.html)")

    def per_week(self) -> pd.DataFrame:
        """ATS and non-ATS shares per trading day, per week (issue names summed)."""
        w = self.weekly.groupby("week_start", as_index=False)[
            ["ats_shares", "non_ats_shares", "total_shares", "total_trades"]].sum()
        w["trading_days"] = [cal.trading_days(d.date()) for d in w["week_start"]]
        for col in ("ats_shares", "non_ats_shares", "total_shares"):
            w[col.replace("shares", "per_day")] = w[col] / w["trading_days"]
        w["ats_share"] = w["ats_shares"] / w["total_shares"].where(w["total_shares"] > 0)
        return w

    def volume_chart(self):
        import matplotlib.pyplot as plt

        w = self.per_week()
        fig, ax = plt.subplots(figsize=(11, 3.8))
        ax.bar(w["week_start"], w["ats_per_day"], width=5, label="ATS", color="tab:blue")
        ax.bar(w["week_start"], w["non_ats_per_day"], width=5, bottom=w["ats_per_day"],
               label="non-ATS", color="tab:orange")
        ax.set_title(f"{self.symbol}: off-exchange shares per trading day")
        ax.set_ylabel("shares per trading day")
        _week_axis(ax)
        ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.legend()
        ax.grid(alpha=0.3, axis="y")
        fig.tight_layout()
        return fig

    def venue_chart(self, n: int = 6):
        """Each week's shares by venue, as % of the symbol's off-exchange shares: the `n`
        largest venues over the whole history, the rest as "other"."""
        import matplotlib.pyplot as plt

        from spine.derive import calcs

        v = self.venues.assign(venue=calcs.venue_label(self.venues))
        top = v.groupby("venue")["shares"].sum().nlargest(n).index
        v["venue"] = v["venue"].where(v["venue"].isin(top), "other")
        pivot = v.pivot_table(index="week_start", columns="venue", values="shares",
                              aggfunc="sum", fill_value=0.0)
        pivot = pivot.div(pivot.sum(axis=1).where(lambda s: s > 0), axis=0).fillna(0.0) * 100
        fig, ax = plt.subplots(figsize=(11, 3.8))
        ax.stackplot(pivot.index, *[pivot[c] for c in pivot.columns], labels=list(pivot.columns))
        ax.set_title(f"{self.symbol}: venue mix")
        ax.set_ylabel("% of the symbol's off-exchange shares")
        _week_axis(ax)
        ax.set_ylim(0, 100)
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
        fig.tight_layout()
        return fig

    def short_chart(self):
        import matplotlib.pyplot as plt

        s = self.short.sort_values("week_start")
        fig, ax = plt.subplots(figsize=(11, 3.4))
        ax.plot(s["week_start"], s["short_ratio"] * 100, marker="o", label="Reg SHO short ratio")
        ax.plot(s["week_start"], s["ats_share"] * 100, marker=".", label="ATS share (FINRA weekly)")
        ax.set_title(f"{self.symbol}: short ratio beside ATS share")
        ax.set_ylabel("% (short volume / Reg SHO volume; ATS / off-exchange shares)")
        ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:,.0f}%"))
        _week_axis(ax)
        ax.legend()
        ax.grid(alpha=0.3)
        fig.tight_layout()
        return fig

    def table(self) -> pd.DataFrame:
        """Week by week: volume, ATS share, the trend's mean and how many weeks it holds, its
        z-score and week-over-week change."""
        w = self.per_week()[["week_start", "trading_days", "total_shares", "total_trades",
                             "total_per_day", "ats_share"]].rename(
            columns={"total_per_day": "shares_per_day"})
        t = self.trend[["week_start", "mean_13w_shares_per_day", "weeks_in_window",
                        "z_shares_per_day", "wow_change"]] if len(self.trend) else None
        if t is not None:
            w = w.merge(t, on="week_start", how="left")
            w["weeks_in_window"] = w["weeks_in_window"].astype("Int64")
        if len(self.short):
            w = w.merge(self.short[["week_start", "short_ratio", "otc_share_of_regsho"]],
                        on="week_start", how="left")
        w = w.sort_values("week_start", ascending=False)
        w.attrs["labels"] = {
            "mean_13w_shares_per_day": f"Mean shares per day, its weeks of the last {TREND_WEEKS}",
            "weeks_in_window": f"Weeks in the mean (of {TREND_WEEKS})"}
        return w

    def table_note(self) -> str:
        """What the week-by-week table's windowed figures hold (and, with Reg SHO, why its
        OTC share of Reg SHO can pass 100%)."""
        from spine.derive.calcs import Z_MIN_PRIOR_WEEKS

        line = (f"The mean is over the weeks of the last {TREND_WEEKS} in which the symbol traded "
                f"off-exchange and the lake holds (column Weeks in the mean); the z-score compares "
                f"the week with the earlier of those weeks and needs at least {Z_MIN_PRIOR_WEEKS} "
                "of them (empty otherwise).")
        if len(self.short):
            line += "\n\n" + regsho_note({self.symbol: self.short["otc_share_of_regsho"]},
                                          "weeks")
        return line


def symbol_plan(config: dict, tier: str, symbol: str, weeks: list[str],
                revisions: list[list[str]]) -> tuple[dict, list[str], list[list[str]], str]:
    """The symbol notebook's config, weeks, revisions and symbol. In a pipeline run, as the
    plan passed them. By hand without a `lake_root`: a temporary small lake of the 6 weeks
    before as_of, built first; with one, from its ledger. No symbol: the most traded one of the
    latest week."""
    from spine import pipeline, plan

    cfg = pipeline.notebook_config(config, "symbol")
    if cfg.get("by_hand") and not weeks:
        last = cal.latest_published_week(tier, cfg["as_of"])
        for week in plan.rolling_window(last, 6):
            pipeline.ensure_upstream(cfg, tier, week, "report")
    if not weeks:
        st = plan.LakeState.read(cfg["lake_root"])
        weeks = [w.isoformat() for t, w in st.accepted() if t == tier]
        revisions = [[w.isoformat(), o, n] for t, w, o, n in st.revisions() if t == tier]
    if not symbol:
        latest = pipeline.read_calc(cfg["lake_root"], "symbol_week", tier, weeks[-1])
        symbol = latest.nlargest(1, "total_shares")["symbol"].iloc[0]
    return cfg, weeks, revisions, symbol


def load_symbol(config: dict, tier: str, symbol: str, weeks: list[str],
                revisions: list[list[str]]) -> Symbol:
    """A symbol's history over `weeks` (the weeks clean holds, the plan's) and the revisions
    `revisions` ([week_start, old, new], the plan's) compared for its rows."""
    root = config["lake_root"]
    weekly = symbol_history(root, tier, symbol, weeks)
    if weekly.empty:
        raise ValueError(f"symbol {symbol!r} has no rows in calc/symbol_week/tier={tier} over "
                         f"the {len(weeks)} week(s) the lake holds; symbols are spelled as "
                         "FINRA publishes them (upper case, e.g. AAPL)")
    trend = symbol_history(root, tier, symbol, weeks, "symbol_trend")
    venues = symbol_history(root, tier, symbol, weeks, "clean")
    short = pd.DataFrame()
    if tier in ("T1", "T2"):
        have = [w for w in weeks if lake.path(root, "calc", calc="short_volume_weekly",
                                              tier=tier, week_start=w).exists()]
        short = symbol_history(root, tier, symbol, have, "short_volume_weekly")
    rows = []
    for week, old, new in revisions:
        before, after = (_capture_rows(root, tier, week, c, symbol) for c in (old, new))
        if before != after:
            rows.append({"week_start": pd.Timestamp(week), "old": old, "new": new,
                         "shares_before": before[0], "shares_after": after[0],
                         "shares_change": after[0] - before[0],
                         "rows_before": before[1], "rows_after": after[1],
                         "report": f"../../revisions/tier={tier}/week_start={week}/"
                                   f"{old}_to_{new}.html"})
    return Symbol(tier, symbol, weekly, trend, venues, short,
                  pd.DataFrame(rows, columns=["week_start", "old", "new", "shares_before",
                                              "shares_after", "shares_change", "rows_before",
                                              "rows_after", "report"]))


def _capture_rows(root: str, tier: str, week: str, capture: str, symbol: str
                  ) -> tuple[float, int]:
    """A symbol's total shares and row count in one raw capture."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(lake.path(root, "capture", tier=tier, week_start=week,
                                    capture_id=capture),
                          columns=["issueSymbolIdentifier", "totalWeeklyShareQuantity"],
                          filters=[("issueSymbolIdentifier", "=", symbol)])
    shares = pc.sum(table["totalWeeklyShareQuantity"].cast("float64")).as_py() or 0.0
    return round(shares, 4), table.num_rows


# A tier-week's status in the report index, as `index_listing` (rules/common.smk) derives it
# from the ledger's folded state (spine.plan.PartitionState); a week can have several.
INDEX_STATUS = {
    "accepted": "clean holds a capture that passed its gates",
    "held back": "refused by a gate; no version of the week is accepted",
    "revision held back": "a newer capture was refused by a gate; clean keeps the earlier one",
    "overridden": "clean holds a refused capture let through by <code>spine override</code>",
    "pinned": "clean holds the capture <code>spine pin</code> set",
    "restated": "a revision of the week was accepted or let through (every revision of the "
                "week is linked)",
}
ATTENTION = {"held back", "revision held back", "overridden", "pinned"}


def report_index(weekly: list, revisions: list[list[str]], symbols: list[list[str]],
                 output: str) -> None:
    """reports/index.html: every weekly report (newest first) with each tier's status that
    week (INDEX_STATUS) and links to the week's revision reports, every revision report and
    every symbol report, linked relative to the index. `weekly`: [week_start, {tier:
    [status, ...]}] per week (a bare week_start: no statuses known)."""
    import html

    from spine.derive.registry import ALL_TIERS

    def table(head: list[str], rows: list[list[str]]) -> str:
        if not rows:
            return "<p>None yet.</p>"
        return ("<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"
                + "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
                + "</table>")

    def link(href: str, text: str) -> str:
        return f'<a href="{html.escape(href)}">{html.escape(text)}</a>'

    def status(words: list[str]) -> str:
        return ", ".join(f"<b>{w}</b>" if w in ATTENTION else html.escape(w)
                         for w in words) or "-"

    listed = sorted(([w, {}] if isinstance(w, str) else w for w in weekly),
                    key=lambda e: e[0], reverse=True)
    tiers = [t for t in ALL_TIERS if any(t in statuses for _, statuses in listed)]
    by_week: dict[str, list[str]] = {}
    for tier, w, old, new, event, _ in sorted(revisions, key=lambda r: (r[5], r[0])):
        by_week.setdefault(w, []).append(link(
            f"revisions/tier={tier}/week_start={w}/{old}_to_{new}.html",
            f"{tier} {old[:8]} to {new[:8]} ({event})"))
    weeks = [[link(f"weekly/week_start={w}.html", f"week of {w}")]
             + [status(statuses.get(t, [])) for t in tiers] + [", ".join(by_week.get(w, []))]
             for w, statuses in listed]
    legend = ("<p>Each tier's status that week:</p><ul>" + "".join(
        f"<li><b>{k}</b>: {v}</li>" if k in ATTENTION else f"<li>{k}: {v}</li>"
        for k, v in INDEX_STATUS.items()) + "</ul>") if tiers else ""
    revs = [[html.escape(w), tier, f"<code>{old}</code> &rarr; <code>{new}</code>", event,
             link(f"revisions/tier={tier}/week_start={w}/{old}_to_{new}.html", "report")]
            for tier, w, old, new, event, _ in sorted(revisions, key=lambda r: r[5],
                                                      reverse=True)]
    syms = [[tier, link(f"symbols/tier={tier}/symbol={sym}.html", sym)]
            for tier, sym in sorted(symbols)]
    page = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>Market Spine reports"
            "</title><style>body{font-family:sans-serif;margin:2em}td,th{padding:4px 10px;"
            "border-bottom:1px solid #ddd;text-align:left}</style></head><body>"
            "<h1>Market Spine: FINRA OTC Transparency reports</h1>"
            f"<h2>Weekly reports ({len(weeks)})</h2>"
            f"{table(['week', *tiers, 'revisions'], weeks)}"
            f"{legend}"
            f"<h2>Revisions ({len(revs)})</h2>"
            f"{table(['week', 'tier', 'captures', 'outcome', ''], revs)}"
            f"<h2>Symbols ({len(syms)})</h2>{table(['tier', 'symbol'], syms)}"
            "<p>A symbol's report: <code>snakemake --cores 2 symbol --config symbol=AAPL "
            "tier=T1</code></p></body></html>")
    lake.write_file_atomic(Path(output), page.encode())


def gate_summary(gate_files: list[str], output: str) -> int:
    """Print one line per gated partition of a run and write them to `output`; returns the
    number of partitions whose capture was refused."""
    lines, failed = [], 0
    for path in sorted(gate_files):
        report = lake.read_json(path)
        bad = [c for c in report["checks"] if c["status"] in ("FAIL", "WARN")]
        failed += report["status"] == "FAIL"
        detail = "; ".join(f"{c['status']} {c['check']}: measured {c['measured']}, limit "
                           f"{c['limit']} ({c['message']})" for c in bad)
        lines.append(f"{report['status']:4}  {report['tier']:4}  {report['week_start']}  "
                     f"capture {report['capture_id']}" + (f"  {detail}" if detail else ""))
    text = (f"Gate summary: {len(gate_files) - failed} passed, {failed} failed\n"
            + "\n".join(lines) + "\n")
    print(text, end="")
    lake.write_file_atomic(Path(output), text.encode())
    return failed


def run_summary(root: str, run: str, as_of: str, record: dict | None, state,
                summary: str | None, coverage=None) -> str:
    """The last lines of a run: what it fetched, what the gates decided of the new captures
    (accepted, restated, held back, with the failed checks), the weeks it covers that no
    configured source holds (per run of weeks, with why: `coverage`, the run's
    spine.plan.Coverage), where the reports are, and the next command. `record` is the run's
    ingest record, `state` the ledger after it (spine.plan.LakeState), `summary` the run's gate
    summary (`gate_summary`'s file); `record` and `summary` are None for a run that fetched
    nothing because no configured source holds any week it covers."""
    from spine.ingest.sources import HISTORY_RUNBOOK
    from spine.status import commands

    flag = commands(root)[1]
    unheld = [f"  {line}" for line in coverage.unheld_lines()] if coverage is not None else []

    def next_(refused: list) -> str:
        todo = [f"spine status --first{flag}, then workflows/incident/RESOLVE_QUALITY_GATE.md"
                ] if refused else []
        if unheld:
            todo.append(f"for the weeks no configured source holds, {coverage.remedy}, then "
                        f"the same command again ({HISTORY_RUNBOOK})")
        return "Next: " + ("; ".join(todo) or "nothing to do")

    if record is None:
        return "\n".join([f"Run summary ({run}, as of {as_of}): nothing fetched: no configured "
                          f"source holds any of the {len(coverage.unheld)} partition(s) it "
                          "covers", *unheld, next_([])])
    head, *rows = summary.splitlines()
    summary = head.removeprefix("Gate summary: ")
    failed_checks = {}  # capture -> "FAIL rows_in_band: measured ..., limit ... (...)"
    for row in rows:
        if "  capture " in row:
            capture, _, detail = row.split("  capture ", 1)[1].partition("  ")
            failed_checks[capture] = detail
    parts = record["partitions"]
    new = [p for p in parts if p["new_capture"]]
    refused = [p for p in new if p["status"] == "FAIL"]
    revised = {(t, w.isoformat(), n): o for t, w, o, n in state.revisions()}
    restated = [p for p in new if p["status"] != "FAIL"
                and (p["tier"], p["week_start"], p["capture_id"]) in revised]
    lines = [f"Run summary ({run}, as of {as_of}): {len(parts)} partition(s) fetched, "
             f"{len(new)} new capture(s): {len(new) - len(refused)} accepted "
             f"({len(restated)} restating an earlier version), {len(refused)} held back"]
    for p in restated:
        lines.append(f"  restated   {p['tier']:4}  {p['week_start']}  "
                     f"{revised[(p['tier'], p['week_start'], p['capture_id'])]} -> "
                     f"{p['capture_id']}")
    for p in refused:
        lines.append(f"  held back  {p['tier']:4}  {p['week_start']}  capture {p['capture_id']} "
                     f"(clean keeps {p['clean_holds'] or 'nothing'}): "
                     f"{failed_checks.get(p['capture_id'], 'see its gate report')}")
    lines += unheld
    lines.append(f"Gate summary: {summary}; reports: {Path(root) / 'reports' / 'index.html'}")
    lines.append(next_(refused))
    return "\n".join(lines)


def revision_index(revisions: list[list[str]], output: str) -> None:
    """An HTML page listing every revision (tier, week, old, new, outcome, ledger time),
    newest first, with links to the reports."""
    import html

    rows = sorted(revisions, key=lambda r: r[5], reverse=True)
    body = "".join(
        f"<tr><td>{dt.datetime.strptime(at, '%Y%m%dT%H%M%S%f'):%Y-%m-%d %H:%M} UTC</td>"
        f"<td>{tier}</td><td>{week}</td>"
        f"<td><code>{old}</code> &rarr; <code>{new}</code></td><td>{event}</td>"
        f'<td><a href="{html.escape(f"tier={tier}/week_start={week}/{old}_to_{new}.html")}">'
        "report</a></td></tr>"
        for tier, week, old, new, event, at in rows)
    page = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>Market Spine revisions"
            "</title><style>body{font-family:sans-serif;margin:2em}td,th{padding:4px 10px;"
            "border-bottom:1px solid #ddd;text-align:left}</style></head><body>"
            "<h1>FINRA OTC Transparency revisions</h1>"
            f"<p>{len(rows)} revision(s) recorded in the capture ledger, newest first.</p>"
            "<table><tr><th>recorded</th><th>tier</th><th>week</th><th>captures</th>"
            f"<th>outcome</th><th></th></tr>{body}</table></body></html>")
    lake.write_file_atomic(Path(output), page.encode())
