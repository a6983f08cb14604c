"""The symbol report: one symbol's off-exchange history in one tier (`Symbol`), week by week,
with the revisions that changed its rows, read by DuckDB from exactly the partition files of
the weeks the lake holds (`load_symbol`). Its charts: spine.reports.charts."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq

from spine import calendar as cal
from spine import lake, plan, steps
from spine.derive.calc import read_calc
from spine.derive.calcs import Z_MIN_PRIOR_WEEKS
from spine.derive.registry import TREND_WEEKS
from spine.ingest import ledger
from spine.reports.style import regsho_note
from spine.vocabulary import NMS_TIERS


def symbol_history(root: str, tier: str, symbol: str, weeks: list[str],
                   name: str = "symbol_week") -> pd.DataFrame:
    """One symbol's rows of calculation `name` (or "clean") over `weeks`, read by DuckDB from
    exactly those partition files (hive keys back as columns); a year of symbol_week takes
    ~0.08 s on a full-size lake (`make bench`)."""
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
    cfg = steps.notebook_config(config, "symbol_report")
    if cfg.get("by_hand") and not weeks:
        last = cal.latest_published_week(tier, cfg["as_of"])
        steps.upstream(cfg, "symbol_report", [tier], plan.rolling_window(last, 6))
    if not weeks:
        st = ledger.LakeState.read(cfg["lake_root"])
        weeks = [w.isoformat() for t, w in st.accepted() if t == tier]
        revisions = [[w.isoformat(), o, n] for t, w, o, n in st.revisions() if t == tier]
    if not symbol:
        latest = read_calc(cfg["lake_root"], "symbol_week", tier, weeks[-1])
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
    if tier in NMS_TIERS:
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


def _capture_rows(root: str, tier: str, week_start: str, capture: str, symbol: str
                  ) -> tuple[float, int]:
    """A symbol's total shares and row count in one raw capture."""
    table = pq.read_table(lake.path(root, "capture", tier=tier, week_start=week_start,
                                    capture_id=capture),
                          columns=["issueSymbolIdentifier", "totalWeeklyShareQuantity"],
                          filters=[("issueSymbolIdentifier", "=", symbol)])
    shares = pc.sum(table["totalWeeklyShareQuantity"].cast("float64")).as_py() or 0.0
    return round(shares, 4), table.num_rows
