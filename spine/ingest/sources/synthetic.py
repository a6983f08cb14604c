"""The embedded synthetic FINRA source: FINRA-shaped weeks, offline.

Deterministic for (seed, size, tier, week_start, as_of). A week is what FINRA's `weeklySummary`
returns for it: the detail rows (`ATS_W_SMBL_FIRM`, `OTC_W_SMBL_FIRM`) and FINRA's four
aggregates of them (`ATS_W_SMBL`, `OTC_W_SMBL`, `ATS_W_FIRM`, `OTC_W_FIRM`, computed with
`spine.ingest.reconcile.aggregate` after quirks and restatements, so a restated week's
aggregates are restated too; `weekly_rows(..., aggregates=False)` gives the detail rows alone).
The market behind it (universes, volumes, venues, the de minimis pool, fractional shares,
holiday weeks, and the magnitudes they follow) is `spine.ingest.sources.synthetic_market`; this
module adds:
- FINRA's quirks: a symbol that moved tape mid-week appears under both CTS and UTP, a reused
  ticker appears once per issue name (a lowercase suffix is a different security, and
  `issueName` is not trimmed: both from the market's universe);
- `initialPublishedDate` / `lastUpdateDate` from the publication calendar, and restatements
  from a configurable revision schedule: a revised week is published on its revision date
  and rows change, appear and disappear.
Rows are emitted with the FINRA Query API's field names, unsorted, like the API.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from spine import calendar as cal
from spine.ingest import reconcile
from spine.ingest.sources import REGSHO, WEEKLY, Capture, Source, SourceError
from spine.ingest.sources.synthetic_market import (EPOCH, base_rows, seeded, symbol_log_volume,
                                                   universe, week_index)
from spine.schemas import API_FIELDS, normalise_regsho, normalise_weekly
from spine.vocabulary import NMS_TIERS

def _add_quirks(df: pd.DataFrame, seed: int, size: str, tier: str, week_start: dt.date) -> pd.DataFrame:
    """A tape move mid-week (CTS and UTP rows) and a reused ticker (two issue names)."""
    rng = seeded(seed, size, tier, "quirks", week_start.isoformat())
    symbols = df["issueSymbolIdentifier"].unique()
    picks = rng.choice(symbols, size=min(2, len(symbols)), replace=False)
    extra = []
    if tier != "OTCE":
        moved = df[df["issueSymbolIdentifier"] == picks[0]].copy()
        moved["productTypeCode"] = np.where(moved["productTypeCode"] == "CTS", "UTP", "CTS")
        moved["totalWeeklyShareQuantity"] = np.floor(moved["totalWeeklyShareQuantity"] * 0.3) + 1
        moved["totalWeeklyTradeCount"] = np.maximum(1, moved["totalWeeklyTradeCount"] // 3)
        moved["totalNotionalSum"] = np.round(moved["totalNotionalSum"] * 0.3, 2)
        extra.append(moved)
    reused = df[df["issueSymbolIdentifier"] == picks[-1]].head(3).copy()
    reused["issueName"] = "Reused Ticker Acquisition Corp Class A"
    extra.append(reused)
    return pd.concat([df, *extra], ignore_index=True)


def _apply_revision(df: pd.DataFrame, seed: int, size: str, tier: str, week_start: dt.date,
                    revised_on: dt.date) -> pd.DataFrame:
    """A restatement: ~3% of rows change, ~1% disappear, ~1% appear (new symbol-venue pairs)."""
    rng = seeded(seed, size, tier, "revision", week_start.isoformat(), revised_on.isoformat())
    stamp = revised_on.isoformat()
    n = len(df)
    df = df.copy()
    change = rng.random(n) < 0.03
    factor = rng.uniform(0.6, 1.4, change.sum())
    df.loc[change, "totalWeeklyShareQuantity"] = np.maximum(
        1.0, np.floor(df.loc[change, "totalWeeklyShareQuantity"].to_numpy() * factor))
    df.loc[change, "totalWeeklyTradeCount"] = np.maximum(
        1, np.round(df.loc[change, "totalWeeklyTradeCount"].to_numpy() * factor)).astype(np.int64)
    df.loc[change, "totalNotionalSum"] = np.round(
        df.loc[change, "totalNotionalSum"].to_numpy() * factor, 2)
    df.loc[change, "lastUpdateDate"] = stamp
    keep = ~(rng.random(n) < 0.01) | change
    added = df.sample(n=max(1, n // 100), random_state=int(rng.integers(0, 2**31))).copy()
    added["issueSymbolIdentifier"] = [f"{s[:4]}r" for s in added["issueSymbolIdentifier"]]
    added["lastUpdateDate"] = stamp
    added = added.drop_duplicates(subset=["issueSymbolIdentifier", "issueName", "MPID",
                                          "marketParticipantName", "productTypeCode"])
    return pd.concat([df[keep], added], ignore_index=True)


@dataclass(frozen=True)
class Revision:
    tier: str
    week_start: dt.date
    published: dt.date


def parse_revisions(entries: list[dict] | None) -> list[Revision]:
    """Read the `synthetic.revisions` schedule from config."""
    out = []
    for i, e in enumerate(entries or []):
        where = f"synthetic.revisions[{i}]"
        try:
            out.append(Revision(
                tier=cal.check_tier(str(e["tier"])),
                week_start=cal.check_week_start(e["week_start"]),
                published=cal.to_date(e["published"], f"{where}.published"),
            ))
        except KeyError as missing:
            raise ValueError(f"{where} lacks {missing}; give tier, week_start and published") from None
    return out


def scheduled_revisions(tier: str, week_start: dt.date, restate: dict | None) -> list[Revision]:
    """The standing restatement rule (`synthetic.restate`): every `every_nth_week`-th week (by
    week index) is restated `lag_days` after its first publication, so that a weekly update at
    two as-of dates shows a revision whatever today is."""
    if not restate or not restate.get("every_nth_week"):
        return []
    if week_index(week_start) % int(restate["every_nth_week"]) != 0:
        return []
    first = cal.publication_date(tier, week_start)
    return [Revision(tier, week_start, first + dt.timedelta(days=int(restate.get("lag_days", 10))))]


def weekly_rows(tier: str, week_start: dt.date | str, as_of: dt.date | str, *, seed: int = 7,
                size: str = "small", revisions: list[Revision] | None = None,
                restate: dict | None = None, aggregates: bool = True) -> pd.DataFrame:
    """The rows FINRA would return for (tier, week_start) when asked on `as_of`: the detail
    rows and, unless `aggregates` is False, FINRA's four aggregates of them (computed from the
    week as published, restatements included), in one unsorted frame.

    Raises LookupError when the week is not yet published as of `as_of`.
    """
    tier = cal.check_tier(tier)
    week_start = cal.check_week_start(week_start)
    as_of = cal.to_date(as_of, "as_of")
    published = cal.publication_date(tier, week_start)
    if published > as_of:
        raise LookupError(
            f"{tier} week {week_start} is first published on {published}, after as_of={as_of}")
    df = base_rows(seed, size, tier, week_start)
    df = _add_quirks(df, seed, size, tier, week_start)
    df["tierIdentifier"] = tier
    df["tierDescription"] = cal.TIER_DESCRIPTIONS[tier]
    df["weekStartDate"] = week_start.isoformat()
    df["summaryStartDate"] = week_start.isoformat()
    df["initialPublishedDate"] = published.isoformat()
    df["lastUpdateDate"] = published.isoformat()
    df["lastReportedDate"] = published.isoformat()
    revisions = list(revisions or []) + scheduled_revisions(tier, week_start, restate)
    for rev in sorted(revisions, key=lambda r: r.published):
        if rev.tier == tier and rev.week_start == week_start and published < rev.published <= as_of:
            df = _apply_revision(df, seed, size, tier, week_start, rev.published)
            df["lastReportedDate"] = rev.published.isoformat()
    df = normalise_weekly(df[API_FIELDS])
    if aggregates:
        df = pd.concat([df, reconcile.aggregate(df)], ignore_index=True)
    # The API returns rows unsorted.
    order = seeded(seed, tier, week_start.isoformat(), "order").permutation(len(df))
    return df.iloc[order].reset_index(drop=True)


def regsho_rows(trade_date: dt.date | str, *, seed: int = 7, size: str = "small") -> pd.DataFrame:
    """Reg SHO consolidated NMS short-sale volume for one trade date, in the file's layout.

    Total volume is the off-exchange (FINRA facility) volume, consistent with the weekly
    universe of T1 and T2 symbols; the short share of it varies by symbol around 45%.
    """
    day = cal.to_date(trade_date, "trade_date")
    week = cal.week_start_of(day)
    frames = []
    for tier in NMS_TIERS:
        u = universe(seed, size, tier)
        rng = seeded(seed, size, tier, "regsho", day.isoformat())
        weekly = np.exp(symbol_log_volume(u, seed, size, week))
        total = weekly / 5 * np.exp(rng.normal(0, 0.25, len(u.symbols)))
        base_ratio = seeded(seed, size, tier, "short-ratio").beta(9, 11, len(u.symbols))
        ratio = np.clip(base_ratio + rng.normal(0, 0.04, len(u.symbols)), 0.02, 0.98)
        fractional = rng.random(len(u.symbols)) < 0.1
        total = np.where(fractional, np.round(total, 4), np.floor(total) + 1)
        short = np.where(fractional, np.round(total * ratio, 4), np.floor(total * ratio))
        exempt = np.floor(short * rng.uniform(0, 0.02, len(u.symbols)))
        markets = np.array(["B,Q,N", "Q,N", "B,Q", "N", "Q"], dtype=object)
        frames.append(pd.DataFrame({
            "Date": day.strftime("%Y%m%d"), "Symbol": u.symbols, "ShortVolume": short,
            "ShortExemptVolume": exempt, "TotalVolume": total,
            "Market": markets[rng.integers(0, len(markets), len(u.symbols))],
        }))
    df = pd.concat(frames, ignore_index=True).sort_values("Symbol", kind="mergesort")
    return df.reset_index(drop=True)


class SyntheticSource(Source):
    """The embedded source: what FINRA would return, generated deterministically, offline.

    Nothing is received, so a capture has no payload parts: the raw Parquet is the record, and
    the same request always gives the same rows."""

    name = "synthetic"
    datasets = {WEEKLY.name: WEEKLY, REGSHO.name: REGSHO}

    def serves(self, tier: str, week_start, as_of) -> str | None:
        """Every week from EPOCH (2014-01-06, about when FINRA's ATS data begins) on."""
        if cal.check_week_start(week_start) < EPOCH:
            return (f"synthetic: its weeks begin on {EPOCH} (FINRA's ATS data begins in 2014, "
                    "its non-ATS data in 2016)")
        return None

    def _settings(self) -> dict:
        syn = self.config.get("synthetic") or {}
        return {"seed": int(syn.get("seed", 7)), "size": syn.get("size", "small"),
                "revisions": parse_revisions(syn.get("revisions")),
                "restate": syn.get("restate")}

    def fetch(self, dataset: str, partition: dict[str, str]) -> Capture:
        self.dataset(dataset)
        s = self._settings()
        as_of = self.config["as_of"]
        request = {"source": self.name, **partition, "as_of": as_of, "seed": s["seed"],
                   "size": s["size"]}
        if dataset == REGSHO.name:
            day = cal.to_date(partition["trade_date"], "trade_date")
            if day > cal.to_date(as_of, "as_of"):
                raise SourceError(f"Reg SHO {day} is not published as of {as_of}")
            table = normalise_regsho(regsho_rows(day, seed=s["seed"], size=s["size"]))
            return Capture(dataset, dict(partition), table, [], request)
        try:
            table = weekly_rows(partition["tier"], partition["week_start"], as_of,
                                seed=s["seed"], size=s["size"], revisions=s["revisions"],
                                restate=s["restate"])
        except LookupError as err:
            raise SourceError(str(err)) from None
        return Capture(dataset, dict(partition), table, [], request)
