"""The weekly report: per tier, the gate verdicts of a week's captures, its headline totals,
movers, top symbols and venues, concentration, short volume and calculations (`Week`), read
from the gate reports and calculations the lake holds (`load_week`). Its charts:
spine.reports.charts."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pandas as pd

from spine import calendar as cal
from spine import lake, plan
from spine.derive import registry
from spine.derive.calc import read_calc
from spine.derive.calcs import Z_MIN_PRIOR_WEEKS
from spine.derive.registry import TREND_WEEKS
from spine.ingest import ledger
from spine.ingest.checks import PASS
from spine.ingest.reconcile import plain
from spine.reports.style import regsho_note, window_label


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
                                 "measured": plain(c["measured"]),
                                 "limit": "-" if c["limit"] is None else plain(c["limit"]),
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
    """What a weekly report shows per tier (spine.ingest.ledger.LakeState.week_view, the view the
    Snakefile passes), for hand runs: from the lake's ledger, with the calculations the lake
    has."""
    week = cal.check_week_start(week_start)
    view = ledger.LakeState.read(root).week_view(week, regsho=True)

    def has(name: str, tier: str, w) -> bool:
        return lake.path(root, "calc", calc=name, tier=tier, week_start=w).exists()

    return {t: v | {"calcs": [c for c in v["calcs"] if has(c, t, week)],
                    "history": [w for w in v["history"]
                                if all(has(c, t, w) for c in plan.HISTORY_CALCS)]}
            for t, v in view.items() if t in tiers}


def load_week(config: dict, week_start: dt.date | str, tiers: dict[str, dict]) -> Week:
    """Per tier of `tiers` (`week_view`): the gate reports of the captures to show and, when
    clean holds a version, its calculations and the trend charts' weeks."""
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
        week.calcs[tier] = {name: read_calc(root, name, tier, week_start)
                            for name in v["calcs"]}
        week.history[tier] = {
            name: pd.concat([read_calc(root, name, tier, w) for w in v["history"]],
                            ignore_index=True)
            for name in plan.HISTORY_CALCS}
        if v.get("override"):
            event = ledger.read_event(lake.path(root, "ledger_event", tier=tier,
                                                week_start=week_start,
                                                event_file=v["override"]))
            week.overrides[tier] = {"by": event["report"]["by"], "at": event["recorded_at"],
                                    "checks": event["report"]["checks"],
                                    "reason": event["reason"]}
    return week

