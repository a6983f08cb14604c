"""The weekly report's tables and chart, assembled from gate reports and calculations."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from spine import lake
from spine import calendar as cal
from spine.gates import PASS

COUNT, SHARES, PCT, RATIO = "{:,.0f}", "{:,.0f}", "{:.1%}", "{:,.1f}"
FORMATS = {
    "symbols": COUNT, "venues": COUNT, "securities": COUNT, "trades": COUNT,
    "total_shares": SHARES, "total_trades": COUNT, "shares": SHARES,
    "shares_per_trading_day": SHARES, "ats_share": PCT, "tier_share": PCT,
    "top_venue_share": PCT, "avg_trade_size": RATIO, "median_hhi": COUNT,
    "volume_weighted_hhi": COUNT, "tier_hhi_of_venues": COUNT, "single_venue_securities": COUNT,
    "short_volume": SHARES, "total_volume": SHARES, "short_ratio": PCT, "median_short_ratio": PCT,
    "symbols_with_reg_sho": COUNT, "corr_short_ratio_ats_share": "{:.2f}",
    "shares_before": SHARES, "shares_after": SHARES, "shares_change": "{:+,.0f}",
    "trades_before": COUNT, "trades_after": COUNT, "trades_change": "{:+,.0f}", "change": "{:+,.4g}",
    "shares_old": SHARES, "shares_new": SHARES, "trades_old": COUNT, "trades_new": COUNT,
    "rows_before": COUNT, "rows_after": COUNT, "tier_share_before": PCT, "tier_share_after": PCT,
    "hhi_before": COUNT, "hhi_after": COUNT, "hhi_change": "{:+,.0f}",
    "ats_share_before": PCT, "ats_share_after": PCT, "ats_share_change": "{:+.2%}",
    "window_shares_per_day_before": SHARES, "window_shares_per_day_after": SHARES,
    "window_change": "{:+,.0f}", "shares_per_day_z_before": "{:+.2f}",
    "shares_per_day_z_after": "{:+.2f}", "z_change": "{:+.2f}",
    "window_ats_share_before": PCT, "window_ats_share_after": PCT,
    "shares_per_day": SHARES, "window_shares_per_day": SHARES, "shares_per_day_z": "{:+.2f}", "window_ats_share": PCT,
}


def styled(df: pd.DataFrame, hide_index: bool = True):
    """A table for the HTML report: thousands separators, percentages, full-width text."""
    formats = {c: f for c, f in FORMATS.items() if c in df.columns}
    style = df.style.format(formats, na_rep="-")
    return style.hide(axis="index") if hide_index else style


@dataclass
class Week:
    week_start: dt.date
    tiers: list[str]
    gates: dict[str, dict]  # tier -> gate report of the version shown (clean's, if any)
    refused: dict[str, list[dict]] = field(default_factory=dict)  # revisions refused since
    calcs: dict[str, dict[str, pd.DataFrame]] = field(default_factory=dict)  # tier -> name -> df
    overrides: dict[str, dict] = field(default_factory=dict)  # tier -> the override letting it in

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
        return line

    def rolling(self, n: int) -> dict[str, pd.DataFrame]:
        """Biggest movers against their own trailing window (per trading day)."""
        cols = ["symbol", "weeks_in_window", "shares_per_day", "window_shares_per_day",
                "shares_per_day_z", "ats_share", "window_ats_share"]
        out = {}
        for tier, c in self.calcs.items():
            r = c.get("symbol_rolling")
            if r is not None and r["shares_per_day_z"].notna().any():
                movers = r.reindex(r["shares_per_day_z"].abs().sort_values(ascending=False).index)
                out[tier] = movers.head(n)[cols].reset_index(drop=True)
        return out

    def headline(self) -> pd.DataFrame:
        rows = []
        for tier in self.tiers:
            gate = self.gates[tier]
            status = gate["status"] + (" (overridden)" if tier in self.overrides else "")
            row = {"tier": tier, "gate": status, "capture_id": gate["capture_id"]}
            if tier in self.calcs:
                sw = self.calcs[tier]["symbol_week"]
                vs = self.calcs[tier]["venue_share"]
                total = sw["total_shares"].sum()
                row |= {
                    "symbols": len(sw),
                    "venues": len(vs),
                    "total_shares": total,
                    "total_trades": int(sw["total_trades"].sum()),
                    "shares_per_trading_day": total / cal.trading_days(self.week_start),
                    "ats_share": sw["ats_shares"].sum() / total if total else float("nan"),
                }
            rows.append(row)
        return pd.DataFrame(rows).set_index("tier")

    def gate_outcomes(self) -> pd.DataFrame:
        rows = []
        for tier in self.tiers:
            for verdict in [self.gates[tier], *self.refused.get(tier, [])]:
                for c in verdict["checks"]:
                    rows.append({"tier": tier, "capture_id": verdict["capture_id"],
                                 "check": c["check"], "status": c["status"],
                                 "measured": str(c["measured"]),
                                 "limit": "-" if c["limit"] is None else str(c["limit"]),
                                 "message": c["message"]})
        return pd.DataFrame(rows)

    def top_symbols(self, n: int) -> dict[str, pd.DataFrame]:
        cols = ["symbol", "issue_name", "total_shares", "total_trades", "ats_share",
                "venue_count", "avg_trade_size"]
        return {tier: c["symbol_week"].nlargest(n, "total_shares")[cols].reset_index(drop=True)
                for tier, c in self.calcs.items()}

    def top_venues(self, n: int) -> dict[str, pd.DataFrame]:
        cols = ["rank", "summary_type", "mpid", "participant_name", "shares", "trades", "symbols",
                "tier_share"]
        return {tier: c["venue_share"].nsmallest(n, "rank")[cols].reset_index(drop=True)
                for tier, c in self.calcs.items()}

    def venue_chart(self, n: int):
        import matplotlib.pyplot as plt

        from spine import calcs

        tiers = list(self.calcs)
        fig, axes = plt.subplots(1, max(1, len(tiers)), figsize=(5 * max(1, len(tiers)), 0.3 * n + 1.5),
                                 squeeze=False)
        for ax, tier in zip(axes[0], tiers):
            vs = self.calcs[tier]["venue_share"].nsmallest(n, "rank").iloc[::-1]
            labels = calcs.venue_label(vs).str.slice(0, 30)
            colors = ["tab:blue" if s == "ATS_W_SMBL_FIRM" else "tab:orange"
                      for s in vs["summary_type"]]
            ax.barh(labels, vs["tier_share"] * 100, color=colors)
            ax.set_title(f"{tier}: top {n} venues")
            ax.set_xlabel("% of tier share volume (blue ATS, orange non-ATS)")
        if not tiers:
            axes[0][0].text(0.5, 0.5, "no accepted tier this week", ha="center")
        fig.tight_layout()
        return fig

    def short_volume(self) -> pd.DataFrame:
        """Per NMS tier: volume-weighted short ratio, its correlation with ATS share, and the
        most active symbols with both measures (empty when Reg SHO is not enabled)."""
        rows = []
        for tier, c in self.calcs.items():
            sv = c.get("short_volume")
            if sv is None or not len(sv):
                continue
            has = sv[sv["total_volume"] > 0]
            rows.append({
                "tier": tier,
                "symbols_with_reg_sho": len(has),
                "short_ratio": has["short_volume"].sum() / has["total_volume"].sum(),
                "median_short_ratio": has["short_ratio"].median(),
                "corr_short_ratio_ats_share": has["short_ratio"].corr(has["ats_share"]),
            })
        return pd.DataFrame(rows)

    def top_short_volume(self, n: int) -> dict[str, pd.DataFrame]:
        cols = ["symbol", "total_volume", "short_volume", "short_ratio", "ats_share",
                "days_with_data"]
        return {tier: c["short_volume"].nlargest(n, "total_volume")[cols].reset_index(drop=True)
                for tier, c in self.calcs.items() if "short_volume" in c}

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
                "tier_hhi_of_venues": float(((c["venue_share"]["tier_share"] * 100) ** 2).sum()),
            })
        return pd.DataFrame(rows).set_index("tier") if rows else pd.DataFrame()


def week_view(root: str, week_start: dt.date | str, tiers: list[str]) -> dict[str, dict]:
    """What a weekly report shows per tier (spine.plan.LakeState.week_view, the view the
    Snakefile passes), for hand runs: from the lake's ledger, with short_volume where the lake
    has that calculation."""
    from spine import plan

    week = cal.check_week_start(week_start)
    view = plan.LakeState.read(root).week_view(week, short_volume=True)
    return {t: v | {"short_volume": v["short_volume"] and lake.path(
                root, "calc", calc="short_volume", tier=t, week_start=week).exists()}
            for t, v in view.items() if t in tiers}


def load_week(config: dict, week_start: dt.date | str, tiers: dict[str, dict]) -> Week:
    """Per tier of `tiers` (spine.report.week_view): the gate reports of the captures to show
    and, when clean holds a version, its calculations."""
    from spine import pipeline

    root = config["lake_root"]
    week_start = cal.check_week_start(week_start)

    def gate(tier: str, capture: str) -> dict:
        return lake.read_json(lake.path(root, "gate", tier=tier, week_start=week_start,
                                        capture_id=capture))
    week = Week(week_start=week_start, tiers=list(tiers),
                gates={t: gate(t, v["captures"][0]) for t, v in tiers.items()},
                refused={t: [gate(t, c) for c in v["captures"][1:]] for t, v in tiers.items()})
    for tier, v in tiers.items():
        if not v["accepted"]:
            continue
        names = ["symbol_week", "venue_share", "symbol_hhi", "symbol_rolling"]
        names += ["short_volume"] if v.get("short_volume") else []
        week.calcs[tier] = {name: pipeline.read_calc(root, name, tier, week_start)
                            for name in names}
        if v.get("override"):
            from spine import ledger

            event = ledger.read_event(lake.path(root, "ledger_event", tier=tier,
                                                week_start=week_start,
                                                event_file=v["override"]))
            week.overrides[tier] = {"by": event["report"]["by"], "at": event["recorded_at"],
                                    "checks": event["report"]["checks"],
                                    "reason": event["reason"]}
    return week


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
