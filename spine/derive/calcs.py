"""The market-structure calculations: one pure function each, named like its entry in
spine/derive/registry.py, which says what it reads; `compute` runs one and checks it against its
schema (spine.schemas) on the way out.

Inputs are not validated again here: clean is validated once, by the gate's schema check,
before it is accepted, and every calculation's output when it is made. Shares are the volume
measure everywhere ("share of volume" = share of shares); per trading day means divided by the
XNYS trading days of the week, so a holiday week is not read as a drop.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.errors
from pandera.typing import DataFrame

from spine.derive import registry
from spine import schemas
from spine.ingest.venues import reported_mpid, venue_label
from spine.schemas import CleanWeekly, SymbolHHI, SymbolWeek, VenueShare
from spine.vocabulary import ATS, NON_ATS

# A security line: symbol and issue name, not product type. A symbol that moved tape within a
# week (CTS and UTP rows, same issue name) is one security, and one line; a reused ticker (two
# issue names) is two securities, two lines. Download files carry no product type at all.
SECURITY = ["week_start", "tier", "symbol", "issue_name"]


def symbol_week(clean: DataFrame[CleanWeekly]) -> DataFrame[SymbolWeek]:
    """Per security line (symbol and issue name: a tape move's CTS and UTP rows are one line,
    a reused ticker's issue names two): ATS and non-ATS shares and trades summed, their
    totals, `ats_share` = ATS / (ATS + non-ATS) shares (null without shares), `venue_count`
    (distinct venues) and `avg_trade_size` = shares / trades (null without trades)."""
    df = clean.assign(
        ats_shares=clean["shares"].where(clean["summary_type"] == ATS, 0.0),
        ats_trades=clean["trades"].where(clean["summary_type"] == ATS, 0),
        non_ats_shares=clean["shares"].where(clean["summary_type"] == NON_ATS, 0.0),
        non_ats_trades=clean["trades"].where(clean["summary_type"] == NON_ATS, 0),
        venue=venue_label(clean),
    )
    out = df.groupby(SECURITY, dropna=False, sort=True).agg(
        ats_shares=("ats_shares", "sum"),
        ats_trades=("ats_trades", "sum"),
        non_ats_shares=("non_ats_shares", "sum"),
        non_ats_trades=("non_ats_trades", "sum"),
        venue_count=("venue", "nunique"),
    ).reset_index()
    out["total_shares"] = out["ats_shares"] + out["non_ats_shares"]
    out["total_trades"] = out["ats_trades"] + out["non_ats_trades"]
    total = out["total_shares"].where(out["total_shares"] > 0)
    out["ats_share"] = out["ats_shares"] / total
    trades = out["total_trades"].where(out["total_trades"] > 0)
    out["avg_trade_size"] = out["total_shares"] / trades
    for c in ("ats_trades", "non_ats_trades", "total_trades", "venue_count"):
        out[c] = out[c].astype(np.int64)
    return out[list(SymbolWeek.to_schema().columns)]


def venue_share(clean: DataFrame[CleanWeekly]) -> DataFrame[VenueShare]:
    """Per venue (`venue_label`: its MPID, else its CRD number, else its name, within its
    summary type; FINRA's pooled De Minimis row is one venue): its MPID, CRD and name (the
    first given), shares, trades, distinct symbols, `tier_share` (its share of the tier's
    shares that week, ATS and non-ATS together; sums to 1 over a tier-week) and `rank`
    (1 = most shares; ties share the lower rank)."""
    df = clean.assign(venue=venue_label(clean), mpid=reported_mpid(clean))
    keys = ["week_start", "tier", "summary_type", "venue"]
    out = df.groupby(keys, sort=True).agg(
        mpid=("mpid", "first"),
        firm_crd=("firm_crd", "first"),
        participant_name=("participant_name", "first"),
        shares=("shares", "sum"),
        trades=("trades", "sum"),
        symbols=("symbol", "nunique"),
    ).reset_index()
    out["mpid"] = out["mpid"].astype(clean["mpid"].dtype)
    tier_total = out.groupby(["week_start", "tier"])["shares"].transform("sum")
    out["tier_share"] = (out["shares"] / tier_total.where(tier_total > 0)).fillna(0.0)
    out["rank"] = out.groupby(["week_start", "tier"])["shares"].rank(
        method="min", ascending=False).astype(np.int64)
    out["trades"] = out["trades"].astype(np.int64)
    out["symbols"] = out["symbols"].astype(np.int64)
    out = out.sort_values(["rank", "summary_type", "mpid"], kind="mergesort")
    return out[list(VenueShare.to_schema().columns)].reset_index(drop=True)


def symbol_hhi(clean: DataFrame[CleanWeekly]) -> DataFrame[SymbolHHI]:
    """HHI of each security line's venue shares on the 0-10,000 scale (10,000 = a single
    venue), with its venue count, top venue and top venue's share: the lines and venues of
    `symbol_week` (a venue on both tapes of a tape move is one venue; the pooled De Minimis
    row is one venue)."""
    df = clean.assign(venue=venue_label(clean))
    per_venue = df.groupby(SECURITY + ["venue"], dropna=False, sort=False)["shares"].sum()
    per_venue = per_venue.reset_index()
    total = per_venue.groupby(SECURITY, dropna=False)["shares"].transform("sum")
    per_venue["venue_share"] = per_venue["shares"] / total.where(total > 0)
    per_venue["sq"] = (per_venue["venue_share"] * 100) ** 2
    top = per_venue.sort_values("shares", ascending=False, kind="mergesort").drop_duplicates(SECURITY)
    # one row per venue already: the venue count is the group's size. A security with zero
    # shares has NaN squares, which sum to 0 (and its HHI is set to 0 below)
    out = per_venue.groupby(SECURITY, dropna=False, sort=True).agg(
        total_shares=("shares", "sum"),
        venue_count=("venue", "size"),
        hhi=("sq", "sum"),
    ).reset_index()
    out = out.merge(
        top[SECURITY + ["venue", "venue_share"]].rename(
            columns={"venue": "top_venue", "venue_share": "top_venue_share"}),
        on=SECURITY, how="left")
    # A security with zero shares on every venue has no defined concentration.
    out["hhi"] = out["hhi"].fillna(0.0).clip(0, 10_000)
    out["top_venue"] = out["top_venue"].astype(object).where(out["total_shares"] > 0, None)
    out["venue_count"] = out["venue_count"].astype(np.int64)
    return out[list(SymbolHHI.to_schema().columns)]


def tier_summary(venue_share: pd.DataFrame, symbol_week: pd.DataFrame, week_start: pd.Timestamp,
                 tier: str, trading_days: dict) -> pd.DataFrame:
    """One row: the tier's shares and trades (per trading day too), the ATS share, how many
    venues of each type, the HHI of venue shares (0-10,000; the tier's concentration), symbols
    traded and the average trade size."""
    shares = float(venue_share["shares"].sum())
    trades = int(venue_share["trades"].sum())
    ats = venue_share["summary_type"] == ATS
    days = trading_days[week_start]
    share = venue_share["shares"] / shares if shares > 0 else venue_share["shares"] * 0.0
    return pd.DataFrame([{
        "week_start": week_start, "tier": tier, "trading_days": days,
        "total_shares": shares, "total_trades": trades,
        "shares_per_day": shares / days, "trades_per_day": trades / days,
        "ats_share": float(venue_share.loc[ats, "shares"].sum()) / shares if shares > 0 else None,
        "ats_venues": int(ats.sum()), "non_ats_venues": int((~ats).sum()),
        "venue_hhi": min(float(((share * 100) ** 2).sum()), 10_000.0),
        "symbols": int(symbol_week["symbol"].nunique()),
        "avg_trade_size": shares / trades if trades > 0 else None,
    }])


TREND_WEEKS, SHORT_WEEKS = registry.TREND_WEEKS, registry.SHORT_WEEKS  # the windows' lengths
Z_MIN_PRIOR_WEEKS = 3  # a z-score needs this many earlier weeks in the window (the fewest
# whose spread means something), so the first weekly update's 8 weeks already have movers ...
Z_SPREAD_FLOOR = 0.1  # ... and its spread is at least this fraction of their mean, so a
# symbol with near-constant volume (or three quiet weeks) does not score in the hundreds


def symbol_trend(symbol_week: pd.DataFrame, week_start: pd.Timestamp,
                 trading_days: dict) -> pd.DataFrame:
    """Per symbol traded this week (its security lines summed: both issue names of a reused
    ticker are one series, which does not break when an issuer renames): shares and trades per
    trading day, the mean of its weekly shares per trading day over the last 4 and 13 weeks
    (FINRA lists a security only in weeks it was traded off-exchange, so a week without it is
    not in its window; `weeks_in_window` counts the weeks the 13-week mean holds, this one
    included), the z-score of this week against its earlier weeks of the window
    (`weeks_in_window` - 1 of them; null with fewer than Z_MIN_PRIOR_WEEKS = 3), and the
    change against last week (null if it did not trade)."""
    per = symbol_week.groupby(["week_start", "tier", "symbol"], sort=False, observed=True).agg(
        shares=("total_shares", "sum"), trades=("total_trades", "sum"),
        ats=("ats_shares", "sum")).reset_index()
    per["trading_days"] = per["week_start"].map(trading_days).astype(np.int64)
    per["per_day"] = per["shares"] / per["trading_days"]
    age = ((week_start - per["week_start"]).dt.days // 7).astype(np.int64)  # 0 = this week
    keys = ["tier", "symbol"]

    def window(mask):  # each week weighs the same, whatever its trading days
        return per[mask].groupby(keys, sort=False)["per_day"].mean()

    this = per[age == 0].set_index(keys)
    prior = per[(age > 0) & (age < TREND_WEEKS)].groupby(keys, sort=False)["per_day"].agg(
        ["mean", "std", "count"])
    last = per[age == 1].set_index(keys)["per_day"]
    out = this[["week_start", "trading_days", "shares", "trades"]].copy()
    out["shares_per_day"] = this["per_day"]
    out["trades_per_day"] = this["trades"] / this["trading_days"]
    out["ats_share"] = this["ats"] / this["shares"].where(this["shares"] > 0)
    out["mean_4w_shares_per_day"] = window(age < SHORT_WEEKS)
    out["mean_13w_shares_per_day"] = window(age < TREND_WEEKS)
    out["weeks_in_window"] = per[age < TREND_WEEKS].groupby(keys, sort=False).size()
    out = out.join(prior)
    out["prior_shares_per_day"] = out["mean"]
    spread = np.maximum(out["std"].fillna(0.0), Z_SPREAD_FLOOR * out["mean"])
    z = (out["shares_per_day"] - out["mean"]) / spread.where(spread > 0)
    out["z_shares_per_day"] = z.where(out["count"] >= Z_MIN_PRIOR_WEEKS)
    out["wow_change"] = out["shares_per_day"] / last.reindex(out.index).where(lambda v: v > 0) - 1
    out = out.reset_index().sort_values(["tier", "symbol"], kind="mergesort")
    out["trades"] = out["trades"].astype(np.int64)
    out["weeks_in_window"] = out["weeks_in_window"].astype(np.int64)
    return out.reset_index(drop=True)


MOVERS_TOP = 10  # per direction and ranking
MOVERS_MIN_SHARES_PER_DAY = 10_000.0  # this week or its prior mean, whichever is larger


def movers(symbol_trend: pd.DataFrame) -> pd.DataFrame:
    """The MOVERS_TOP largest rises and falls of the week, ranked two ways: by z-score against
    the symbol's own earlier weeks (only symbols with enough of them to have one), and by the
    change in shares per trading day. Symbols whose volume, this week or before, is below
    MOVERS_MIN_SHARES_PER_DAY per day, or with no earlier week, are left out."""
    t = symbol_trend[symbol_trend["prior_shares_per_day"].notna()].copy()
    t = t[np.maximum(t["shares_per_day"], t["prior_shares_per_day"]) >= MOVERS_MIN_SHARES_PER_DAY]
    t["change_shares_per_day"] = t["shares_per_day"] - t["prior_shares_per_day"]
    frames = []
    for ranked_by, column in (("z_score", "z_shares_per_day"),
                              ("shares_per_day", "change_shares_per_day")):
        ranked = t[t[column].notna()]
        for direction, largest in (("rise", True), ("fall", False)):
            side = ranked[ranked[column] > 0] if largest else ranked[ranked[column] < 0]
            side = side.sort_values([column, "symbol"], ascending=[not largest, True],
                                    kind="mergesort").head(MOVERS_TOP)
            frames.append(side.assign(direction=direction, ranked_by=ranked_by,
                                      rank=np.arange(1, len(side) + 1, dtype=np.int64)))
    cols = columns("movers")
    if not any(len(f) for f in frames):
        return empty("movers")
    return pd.concat([f for f in frames if len(f)], ignore_index=True)[cols]


def venue_trend(venue_share: pd.DataFrame, week_start: pd.Timestamp) -> pd.DataFrame:
    """Per venue present this week or the week before: shares, share of the tier and of its
    summary type, mean share of the tier over the last 4 and 13 weeks the tier has (a week the
    venue did not report counts as 0), rank and rank change, and whether it entered (absent
    last week) or exited (absent this week). Without last week in the lake: no_previous_week."""
    v = venue_share.assign(venue=venue_label(venue_share))
    age = ((week_start - v["week_start"]).dt.days // 7).astype(np.int64)
    v = v[age < TREND_WEEKS].assign(age=age)
    weeks = v.groupby("age")["week_start"].first()
    share = v.pivot_table(index="venue", columns="age", values="tier_share", aggfunc="sum",
                          fill_value=0.0)
    share = share.reindex(columns=weeks.index, fill_value=0.0)
    short = [a for a in share.columns if a < SHORT_WEEKS]
    this, last = v[v["age"] == 0].set_index("venue"), v[v["age"] == 1].set_index("venue")
    names = pd.concat([last, this])  # this week's name wins
    names = names[~names.index.duplicated(keep="last")]
    out = pd.DataFrame(index=names.index.union(this.index) if 1 in weeks.index else this.index)
    out["summary_type"] = names["summary_type"]
    out["participant_name"] = names["participant_name"]
    out["shares"] = this["shares"].reindex(out.index).fillna(0.0)
    out["tier_share"] = this["tier_share"].reindex(out.index).fillna(0.0)
    type_total = this.groupby("summary_type")["shares"].sum()
    total = out["summary_type"].map(type_total).fillna(0.0)
    out["type_share"] = (out["shares"] / total.where(total > 0)).fillna(0.0)
    out["mean_4w_tier_share"] = share.reindex(out.index)[short].mean(axis=1).clip(0, 1)
    out["mean_13w_tier_share"] = share.reindex(out.index).mean(axis=1).clip(0, 1)
    out["weeks_in_window"] = v.groupby("venue")["age"].nunique().reindex(out.index).fillna(0)
    out["rank"] = this["rank"].reindex(out.index).astype("Int64")
    out["previous_rank"] = last["rank"].reindex(out.index).astype("Int64")
    out["rank_change"] = (out["previous_rank"] - out["rank"]).astype("Int64")  # + = moved up
    present, before = out.index.isin(this.index), out.index.isin(last.index)
    out["status"] = np.select([present & before, present, before],
                              ["continuing", "entered", "exited"], "continuing")
    if 1 not in weeks.index:
        out["status"] = "no_previous_week"
    out = out.reset_index().rename(columns={"index": "venue"})
    out.insert(0, "tier", v["tier"].iloc[0] if len(v) else None)
    out.insert(0, "week_start", week_start)
    out["weeks_in_window"] = out["weeks_in_window"].astype(np.int64)
    return out.sort_values(["rank", "venue"], na_position="last", kind="mergesort"
                           ).reset_index(drop=True)


def short_volume_weekly(symbol_week: pd.DataFrame, regsho: pd.DataFrame,
                        week_start: pd.Timestamp, trading_days: dict) -> pd.DataFrame:
    """Per symbol of the tier-week: Reg SHO short volume / total volume summed over the week's
    trading days; beside it FINRA's weekly OTC total (ATS + non-ATS) for the symbol, its ATS
    share, and that total as a share of Reg SHO's total volume for the symbol
    (`otc_share_of_regsho`; the two are published separately, so it can exceed 1).

    Reg SHO is keyed by symbol only, so the weekly rows of a symbol (several issue names or
    tapes) are summed first. A symbol with no Reg SHO rows that week has no ratio (null)."""
    weekly = symbol_week.groupby(["week_start", "tier", "symbol"], sort=True).agg(
        ats_shares=("ats_shares", "sum"), otc_total_shares=("total_shares", "sum")).reset_index()
    weekly["ats_share"] = weekly["ats_shares"] / weekly["otc_total_shares"].where(
        weekly["otc_total_shares"] > 0)
    daily = regsho.groupby("symbol").agg(
        short_volume=("short_volume", "sum"), total_volume=("total_volume", "sum"),
        days_with_data=("trade_date", "nunique")).reset_index()
    out = weekly.merge(daily, on="symbol", how="left")
    out[["short_volume", "total_volume"]] = out[["short_volume", "total_volume"]].fillna(0.0)
    out["days_with_data"] = out["days_with_data"].fillna(0).astype(np.int64)
    volume = out["total_volume"].where(out["total_volume"] > 0)
    out["short_ratio"] = out["short_volume"] / volume
    out["otc_share_of_regsho"] = out["otc_total_shares"] / volume
    out["trading_days"] = np.int64(trading_days[week_start])
    return out


# --- running one -------------------------------------------------------------------------------

def schema(name: str):
    return getattr(schemas, registry.get(name).schema).to_schema()


def columns(name: str) -> list[str]:
    return list(schema(name).columns)


def empty(name: str) -> pd.DataFrame:
    """A calculation's output with no rows, its columns typed as its schema says."""
    return pd.DataFrame({c: pd.Series(dtype=col.dtype.type)
                         for c, col in schema(name).columns.items()})


def compute(name: str, inputs: dict[str, pd.DataFrame], **context) -> pd.DataFrame:
    """Run calculation `name` on `inputs` (its registry inputs by name) and the `context` its
    function asks for (week_start, tier, trading_days); return its rows in its schema's column
    order, checked against the schema (a failure names the calculation and the failing rows)."""
    func = globals()[name]
    wanted = inspect.signature(func).parameters
    result = func(**{k: v for k, v in {**inputs, **context}.items() if k in wanted})
    result = result[columns(name)].reset_index(drop=True)
    try:
        return schema(name).validate(result, lazy=True)
    except pandera.errors.SchemaErrors as err:
        raise ValueError(f"calculation {name} broke its schema {registry.get(name).schema}: "
                         f"{err.failure_cases.head(10).to_dict('records')}") from None


# --- the data contract's calculation sections --------------------------------------------------

CONTRACT = Path(__file__).resolve().parents[2] / "docs" / "data-contract.md"
BEGIN = ("<!-- calculations: written by `spine contract` from spine/derive/registry.py, spine/derive/calcs.py "
         "and spine/schemas.py; edit those, not this -->")
END = "<!-- end of calculations -->"


def contract_markdown() -> str:
    """One section per calculation of the registry: what it is, its version, inputs and
    partitioning, the function's own account of it, and its columns as its schema checks them."""
    parts = []
    for entry in registry.CALCS:
        inputs = ", ".join(f"`{i.name}`" + (f" ({i.weeks}-week window)" if i.weeks > 1 else "")
                           for i in entry.inputs)
        doc = inspect.cleandoc(globals()[entry.name].__doc__ or "")
        rows = []
        for col, c in schema(entry.name).columns.items():
            checks = "; ".join(_check_text(ch.error or ch.name) for ch in c.checks)
            dtype = "string" if str(c.dtype).startswith("str") else str(c.dtype)
            rows.append(f"| `{col}` | {dtype} | {'yes' if c.nullable else 'no'} | "
                        f"{checks.replace('|', '/')} |")
        parts.append(
            f"## calc/{entry.name}\n\n{entry.description}\n\n"
            f"Version {entry.version}; reads {inputs}; tiers {', '.join(entry.tiers)}; "
            f"`calc/{entry.name}/tier=<T>/week_start=<YYYY-MM-DD>/part-0.parquet` (the footer's "
            f"`spine.calc_version` says which version made it).\n\n"
            + (f"{doc}\n\n" if doc else "")
            + "| column | type | nullable | checks |\n|---|---|---|---|\n" + "\n".join(rows))
    return "\n\n".join(parts)


def _check_text(text: str) -> str:
    for name, op in (("greater_than_or_equal_to", ">="), ("less_than_or_equal_to", "<="),
                     ("greater_than", ">"), ("less_than", "<"), ("isin", "in")):
        if text.startswith(name + "("):
            return f"{op} {text[len(name) + 1:-1]}"
    return text


def contract(check: bool = False, path: Path = CONTRACT) -> bool:
    """Write the calculation sections of docs/data-contract.md (between BEGIN and END); with
    `check`, only say whether they are current. Returns whether the file was current."""
    text = path.read_text()
    if BEGIN not in text or END not in text:
        raise ValueError(f"{path} has no {BEGIN!r} ... {END!r} block")
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    new = f"{head}{BEGIN}\n\n{contract_markdown()}\n\n{END}{tail}"
    if new == text:
        return True
    if not check:
        path.write_text(new)
    return False
