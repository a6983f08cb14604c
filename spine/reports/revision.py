"""Compare two captures of one (tier, week): what a revision added, removed and changed.

Rows are matched by the natural key (see spine.schemas.NATURAL_KEY); a row is `changed` when
its shares, trades or notional differ. Used by the revision report, `spine diff` and tests.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.errors
import pyarrow.parquet as pq

from spine import calendar as cal
from spine import lake, plan, steps
from spine.derive import calcs
from spine.derive.calc import read_calc
from spine.ingest import convert, history, ledger
from spine.ingest.venues import venue_label
from spine.reports.style import window_label
from spine.schemas import NATURAL_KEY, CleanWeekly
from spine.vocabulary import DATASET_WEEKLY

MEASURES = ["shares", "trades", "notional"]
DECIMALS = 4  # the most a fractional share quantity is printed with (FINRA's 1/10,000 share)


@dataclass
class Diff:
    tier: str
    week_start: dt.date
    old_capture: str
    new_capture: str
    old: pd.DataFrame  # clean layout
    new: pd.DataFrame
    added: pd.DataFrame
    removed: pd.DataFrame
    changed: pd.DataFrame  # natural key + <measure>_old, <measure>_new

    def headline(self) -> str:
        return (f"{len(self.added):,} added, {len(self.removed):,} removed, "
                f"{len(self.changed):,} changed")

    def shown(self, which: str, n: int) -> pd.DataFrame:
        """The first n added/removed/changed rows, with the columns a reviewer reads."""
        ident = ["summary_type", "symbol", "issue_name", "product_type", "mpid",
                 "participant_name"]
        if which == "changed":
            cols = ident + [f"{m}_{s}" for m in ("shares", "trades") for s in ("old", "new")]
        else:
            cols = ident + ["shares", "trades", "last_updated"]
        return getattr(self, which)[cols].head(n)

    def totals(self) -> pd.DataFrame:
        """Shares and trades before and after, per tier and summary type."""
        def agg(df: pd.DataFrame) -> pd.DataFrame:
            return df.groupby(["tier", "summary_type"]).agg(
                rows=("shares", "size"), shares=("shares", "sum"), trades=("trades", "sum"))
        out = agg(self.old).merge(agg(self.new), left_index=True, right_index=True, how="outer",
                                  suffixes=("_before", "_after"))
        out = out.fillna(0)
        out["shares_change"] = out["shares_after"] - out["shares_before"]
        out["trades_change"] = out["trades_after"] - out["trades_before"]
        return out.reset_index()

    def largest(self, by: str, n: int = 10) -> pd.DataFrame:
        """Symbols (by='symbol') or venues (by='venue') with the largest absolute share change."""
        def per(df: pd.DataFrame) -> pd.Series:
            key = df["symbol"] if by == "symbol" else venue_label(df)
            return df.groupby(key)["shares"].sum()
        before, after = per(self.old), per(self.new)
        out = pd.DataFrame({"shares_before": before, "shares_after": after}).fillna(0.0)
        out["shares_change"] = out["shares_after"] - out["shares_before"]
        out["abs_change"] = out["shares_change"].abs()
        # below half a share is float noise of summing fractional shares in another order
        out = out[out["abs_change"] >= 0.5].nlargest(n, "abs_change").drop(columns="abs_change")
        return out.rename_axis(by).reset_index()

    @property
    def computable(self) -> bool:
        """Whether both versions pass the clean schema, so calculations can run on them (a
        refused revision may not: its effect is then shown as rows and totals only)."""
        try:
            CleanWeekly.validate(self.old)
            CleanWeekly.validate(self.new)
        except (pandera.errors.SchemaError, pandera.errors.SchemaErrors):
            return False
        return True

    def calc_effect(self, n: int = 10) -> dict[str, pd.DataFrame]:
        """The week's calculations before and after: venue shares, HHI and ATS share."""
        if not self.computable:
            note = pd.DataFrame({"note": ["a version fails the clean schema (see its gate "
                                          "report): calculations are not computed on it"]})
            return {"summary": note, "venues": note.iloc[0:0], "securities": note.iloc[0:0]}
        old_vs, new_vs = calcs.venue_share(self.old), calcs.venue_share(self.new)
        label = lambda df: venue_label(df)  # noqa: E731
        venues = pd.DataFrame({
            "tier_share_before": old_vs.set_index(label(old_vs))["tier_share"],
            "tier_share_after": new_vs.set_index(label(new_vs))["tier_share"],
        }).fillna(0.0)
        venues["tier_share_change"] = venues["tier_share_after"] - venues["tier_share_before"]
        venues = venues.reindex(
            venues["tier_share_change"].abs().sort_values(ascending=False).index)
        old_sw, new_sw = calcs.symbol_week(self.old), calcs.symbol_week(self.new)
        old_h, new_h = calcs.symbol_hhi(self.old), calcs.symbol_hhi(self.new)
        key = ["symbol", "issue_name"]
        sym = (old_sw.set_index(key)[["ats_share"]]
               .merge(new_sw.set_index(key)[["ats_share"]], left_index=True, right_index=True,
                      how="outer", suffixes=("_before", "_after"))
               .join(old_h.set_index(key)[["hhi"]].rename(columns={"hhi": "hhi_before"}), how="left")
               .join(new_h.set_index(key)[["hhi"]].rename(columns={"hhi": "hhi_after"}), how="left"))
        sym["hhi_change"] = sym["hhi_after"] - sym["hhi_before"]
        sym["ats_share_change"] = sym["ats_share_after"] - sym["ats_share_before"]
        # changes below 0.01 HHI points or 0.0001 percentage points are float noise
        moved = sym[(sym["hhi_change"].abs() >= 0.01) | (sym["ats_share_change"].abs() >= 1e-6)
                    | sym["hhi_before"].isna() | sym["hhi_after"].isna()]
        moved = moved.reindex(moved["hhi_change"].abs().sort_values(ascending=False).index)
        summary = pd.DataFrame({
            "measure": ["total shares", "ATS share of tier volume", "venues", "securities",
                        "volume-weighted HHI"],
            "before": [self.old["shares"].sum(), _ats_share(old_sw), len(old_vs), len(old_sw),
                       _weighted_hhi(old_h)],
            "after": [self.new["shares"].sum(), _ats_share(new_sw), len(new_vs), len(new_sw),
                      _weighted_hhi(new_h)],
        })
        summary["change"] = summary["after"] - summary["before"]
        # one table, three kinds of number: each row written as a reader reads it
        kinds = ["{:,.0f}", "{:.2%}", "{:,.0f}", "{:,.0f}", "{:,.0f}"]
        signed = ["{:+,.0f}", "{:+.2%}", "{:+,.0f}", "{:+,.0f}", "{:+,.0f}"]
        for col, fmts in (("before", kinds), ("after", kinds), ("change", signed)):
            summary[col] = [f.format(v) if pd.notna(v) else "-"
                            for f, v in zip(fmts, summary[col])]
        return {"summary": summary, "venues": venues.head(n).rename_axis("venue").reset_index(),
                "securities": moved.head(n).reset_index()}


def table(df: pd.DataFrame) -> str:
    """A table as `spine diff` prints it: numbers with thousands separators, never in
    E-notation. Whole numbers have no decimals; fractional shares have the fewest decimals (at
    most DECIMALS) that show every value as stored, the same for a measure's before, after and
    change, so that a changed row never reads as two equal numbers; changes carry their sign."""
    if df.empty:
        return "(none)"
    out = df.copy()
    numeric = [c for c in out.columns if pd.api.types.is_numeric_dtype(out[c])
               and not pd.api.types.is_bool_dtype(out[c])]
    places: dict[str, int] = {}
    for col in numeric:
        places[_measure(col)] = max(places.get(_measure(col), 0), _decimals(out[col]))
    for col in numeric:
        spec = f"{'+' if str(col).endswith('_change') else ''},.{places[_measure(col)]}f"
        out[col] = [format(v, spec) if pd.notna(v) else "-" for v in out[col]]
    with pd.option_context("display.width", 200, "display.max_columns", 20,
                           "display.max_colwidth", 40):
        return out.to_string(index=False)


def _measure(column) -> str:
    """shares_before, shares_after, shares_change -> shares."""
    head, _, tail = str(column).rpartition("_")
    return head if tail in ("old", "new", "before", "after", "change") else str(column)


def _decimals(values: pd.Series) -> int:
    """The fewest decimals that write every value of a column as stored (up to DECIMALS; a sum
    of fractional shares carries float noise beyond that)."""
    if pd.api.types.is_integer_dtype(values):
        return 0
    v = values.dropna().to_numpy(dtype=float)
    v = v[np.isfinite(v)]
    stored = np.round(v, DECIMALS)
    for places in range(DECIMALS):
        if np.allclose(np.round(v, places), stored, rtol=0, atol=0.5 * 10.0 ** -DECIMALS):
            return places
    return DECIMALS


def _ats_share(sw: pd.DataFrame) -> float:
    total = sw["total_shares"].sum()
    return float(sw["ats_shares"].sum() / total) if total else float("nan")


def _weighted_hhi(h: pd.DataFrame) -> float:
    w = h["total_shares"]
    return float((h["hhi"] * w).sum() / w.sum()) if w.sum() else float("nan")


def load_capture(root: str, tier: str, week_start: dt.date, capture_id: str) -> pd.DataFrame:
    path = lake.path(root, "capture", tier=tier, week_start=week_start, capture_id=capture_id)
    if not path.exists():
        raise FileNotFoundError(f"no capture {capture_id} of {tier} week {week_start} in {root}")
    return convert.to_clean(pq.read_table(path).to_pandas(), capture_id)[0]


def diff(root: str, tier: str, week_start: dt.date | str, old: str | None = None,
         new: str | None = None) -> Diff:
    """Compare two captures (default: the two most recent distinct captures fetched)."""
    week_start = cal.check_week_start(week_start)
    if old is None or new is None:
        ev = history.events(root, DATASET_WEEKLY, tier=tier, week_start=week_start.isoformat())
        order = ev[ev["event"].isin(["captured", "seen_again"])]["capture_id"]
        distinct = list(dict.fromkeys(reversed(order.tolist())))  # newest first, unique
        if len(distinct) < 2:
            raise ValueError(f"{tier} week {week_start} has {len(distinct)} distinct capture(s) "
                             "in the ledger; a diff needs two (or name them with --old/--new)")
        new = new or distinct[0]
        old = old or distinct[1]
    a = load_capture(root, tier, week_start, old)
    b = load_capture(root, tier, week_start, new)
    key = [k for k in NATURAL_KEY]
    merged = a.merge(b, on=key, how="outer", suffixes=("_old", "_new"), indicator=True)
    added = merged[merged["_merge"] == "right_only"]
    removed = merged[merged["_merge"] == "left_only"]
    both = merged[merged["_merge"] == "both"]
    differs = np.zeros(len(both), dtype=bool)
    for m in MEASURES:
        o, n = both[f"{m}_old"], both[f"{m}_new"]
        differs |= ~((o == n) | (o.isna() & n.isna())).to_numpy()
    changed = both[differs][key + [f"{m}_{s}" for m in MEASURES for s in ("old", "new")]]
    rename_new = {f"{c}_new": c for c in a.columns if c not in key}
    rename_old = {f"{c}_old": c for c in a.columns if c not in key}
    return Diff(tier, week_start, old, new, a, b,
                added[key + list(rename_new)].rename(columns=rename_new).reset_index(drop=True),
                removed[key + list(rename_old)].rename(columns=rename_old).reset_index(drop=True),
                changed.reset_index(drop=True))


def title(root: str, d: Diff) -> str:
    """The revision report's heading: what was compared and what became of the new capture."""
    gate_path = lake.path(root, "gate", tier=d.tier, week_start=d.week_start,
                          capture_id=d.new_capture)
    verdict = lake.read_json(gate_path) if gate_path.exists() else {}
    if not verdict:
        outcome = "not gated yet"
    elif verdict.get("advanced_to_clean"):
        outcome = "**accepted**: clean advanced to it"
    elif verdict.get("status") == "PASS":
        outcome = "passed its gates"
    else:
        failed = [c["check"] for c in verdict.get("checks", []) if c["status"] == "FAIL"]
        outcome = (f"**refused** by its gates ({', '.join(failed)}): clean stays on "
                   f"{d.old_capture}")
        state = ledger.fold([ledger.Event.parse(f) for f in ledger.list_partition(
            root, d.tier, d.week_start)])
        if d.new_capture in state.overrides:
            event = ledger.read_event(ledger.ledger_dir(root, d.tier, d.week_start)
                                      / state.overrides[d.new_capture].file)
            outcome = (f"**refused** by its gates ({', '.join(failed)}), then **let through by "
                       f"an override** of {event['report']['by']} on "
                       f"{pd.Timestamp(event['recorded_at']):%Y-%m-%d %H:%M} UTC: "
                       f"\"{event['reason']}\"")
    updated = d.new["last_updated"].max()
    return (f"# Revision of {d.tier} week {d.week_start:%Y-%m-%d}\n\n"
            f"Capture `{d.old_capture}` -> `{d.new_capture}`: {d.headline()}.\n\n"
            f"The new capture was {outcome}. Latest `lastUpdateDate` in it: "
            f"{updated:%Y-%m-%d}.")


def window_weeks(root: str, d: Diff, earlier: list[str] | None, later: list[str] | None
                 ) -> tuple[list[dt.date], list[dt.date]]:
    """The earlier weeks of the revised week's rolling window with a version in clean, and
    the later weeks whose window contains it: as the plan passed them, or (by hand) from the
    ledger."""
    if earlier is None or later is None:
        st = ledger.LakeState.read(root)
        earlier = [w for w in st.window(d.tier, d.week_start, plan.TREND_WEEKS)
                   if w != d.week_start]
        later = [w for w in plan.windows_containing(d.week_start)[1:] if st.held(d.tier, w)]
    return ([cal.check_week_start(w) for w in earlier], [cal.check_week_start(w) for w in later])


def trend_effect(root: str, d: Diff, earlier: list[dt.date], n: int = 10) -> pd.DataFrame:
    """symbol_trend of the revised week computed on the old and on the new version (the
    `earlier` weeks of the window as the lake holds them), largest changes first."""
    if not d.computable:
        return pd.DataFrame({"note": ["a version fails the clean schema: no rolling effect"]})
    others = [read_calc(root, "symbol_week", d.tier, w) for w in earlier]
    days = {pd.Timestamp(w): cal.trading_days(w) for w in [*earlier, d.week_start]}

    def trend(version: pd.DataFrame) -> pd.DataFrame:
        window = pd.concat([*others, calcs.symbol_week(version)], ignore_index=True)
        return calcs.symbol_trend(window, pd.Timestamp(d.week_start), days).set_index("symbol")

    before, after = trend(d.old), trend(d.new)
    cols = ["shares_per_day", "mean_13w_shares_per_day", "z_shares_per_day"]
    out = before[cols].merge(after[cols], left_index=True, right_index=True, how="outer",
                             suffixes=("_before", "_after"))
    out["z_change"] = out["z_shares_per_day_after"] - out["z_shares_per_day_before"]
    out["mean_13w_change"] = (out["mean_13w_shares_per_day_after"]
                              - out["mean_13w_shares_per_day_before"])
    # a change below half a share per day is float noise from summing in another order
    out = out[(out["mean_13w_change"].abs() >= 0.5) | out["z_change"].abs().ge(0.005)]
    out = out.reindex(out["mean_13w_change"].abs().sort_values(ascending=False).index)
    out = out.head(n).reset_index()
    weeks = len(earlier) + 1  # the window's weeks the lake holds, this one included
    out.attrs["labels"] = {f"mean_13w_shares_per_day_{when}": window_label(
        f"shares per day {when}", weeks) for when in ("before", "after")}
    out.attrs["labels"]["mean_13w_change"] = "Change of the mean"
    return out


def trend_note(earlier: list[dt.date]) -> str:
    """What the symbol-trend effect stands on: how many weeks of its window the lake holds,
    and the earlier weeks a z-score needs."""
    weeks = len(earlier) + 1
    held = (f"all {plan.TREND_WEEKS} weeks of its window" if weeks >= plan.TREND_WEEKS else
            f"{weeks} of the {plan.TREND_WEEKS} weeks of its window (this one"
            + (f" and {len(earlier)} earlier)" if earlier else " only)"))
    return (f"The lake holds {held}. A symbol's mean is over the weeks of those it traded in; "
            f"its z-score needs at least {calcs.Z_MIN_PRIOR_WEEKS} earlier weeks (empty "
            "otherwise).")


def links_markdown(root: str, d: Diff, later: list[dt.date]) -> str:
    """Both captures' records: when and by which run they were fetched and decided, and the
    rolling outputs recomputed. Links are relative to the report."""
    report_dir = lake.path(root, "revision_report", tier=d.tier, week_start=d.week_start,
                           old=d.old_capture, new=d.new_capture).parent
    ev = history.events(root, DATASET_WEEKLY, tier=d.tier, week_start=d.week_start.isoformat())
    lines = []
    for label, capture in (("old", d.old_capture), ("new", d.new_capture)):
        mine = ev[ev["capture_id"] == capture]
        fetched = mine[mine["event"].isin(["captured", "seen_again"])]
        lines.append(f"- **{label}** capture `{capture}`: "
                     + ", ".join(f"{r.event} {pd.Timestamp(r.recorded_at):%Y-%m-%d %H:%M:%S} UTC"
                                 for r in mine.itertuples()))
        for r in fetched.itertuples():
            if isinstance(r.run, str) and r.run.endswith(".ipynb"):
                rel = Path(_relpath(Path(root) / r.run, report_dir))
                lines.append(f"  - executed fetch notebook: [{r.run}]({rel.as_posix()})")
    if later:
        lines.append("- weeks whose trend windows contain this week (recomputed): "
                     + ", ".join(f"{w:%Y-%m-%d}" for w in [d.week_start, *later]))
    return "\n".join(lines)


def _relpath(target: Path, start: Path) -> str:
    return os.path.relpath(Path(target).resolve(), Path(start).resolve())


def notebook_lake(config: dict, tier: str, week_start: str) -> dict:
    """The config a revision notebook runs with. With a `lake_root` (the pipeline), that lake;
    by hand, a small temporary lake in which the synthetic source restates the week 31 days
    after its publication: the Snakefile fetches, gates and derives it the day before and the
    day of the restatement, as two weekly runs would."""
    if config.get("lake_root"):
        return steps.notebook_config(config, "revision_report")
    week = cal.check_week_start(week_start)
    published = cal.publication_date(tier, week) + dt.timedelta(days=30)
    restated = (published + dt.timedelta(days=1)).isoformat()
    cfg = steps.notebook_config({"as_of": published.isoformat(), "synthetic": {
        "revisions": [{"tier": tier, "week_start": week.isoformat(), "published": restated}]}})
    steps.upstream(cfg, "revision_report", [tier], [week])
    steps.upstream(cfg, "revision_report", [tier], [week], as_of=restated)
    return dict(cfg, as_of=restated)
