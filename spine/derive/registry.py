"""The calculations: one entry each, in the order they can be computed.

A calculation is one function in `spine/derive/calcs.py` (named like the calculation), one pandera
schema in `spine/schemas.py` and one entry here. The entry says what the function reads, its
version and where its output goes; everything else takes the list from here: the Snakefile (one
job per calculation, tier and week, its inputs declared from `inputs`), the `calc` notebook, the
weekly report and the data contract's test. Adding a calculation touches no rule
(workflows/development/ADD_CALCULATION.md).

Inputs, each passed to the function as a keyword argument of the same name:
  `clean`              the (tier, week)'s clean partition
  `<calculation>`      another calculation's output for the week; with `weeks=n`, the rows of
                       the window of n weeks ending with it (the weeks clean holds; spine.plan)
  `regsho`             Reg SHO daily short-sale volume of the week's trading days (NMS tiers)
The function may also ask for `week_start` (a Timestamp), `tier`, and `trading_days` (week_start
Timestamp -> XNYS trading days, for every week of its windows).

`version`: bump it when the function's output changes for the same input. Every week of that
calculation is then computed again (its job's parameters changed) and so is what reads it, and
nothing else; the output's Parquet metadata records the version it was made with
(`spine.calc_version`).

This module imports no pandas, so the Snakefile starts quickly.
"""

from __future__ import annotations

from dataclasses import dataclass

from spine.vocabulary import NMS_TIERS, TIERS

SOURCES = ("clean", "regsho")  # inputs that are not calculations
TREND_WEEKS = 13  # the long window of the trend calculations (and the weekly report's charts)
SHORT_WEEKS = 4  # ... and their short one


@dataclass(frozen=True)
class Input:
    name: str  # "clean", "regsho" or a calculation
    weeks: int = 1  # a window of this many weeks, ending with the calculation's week


@dataclass(frozen=True)
class Calc:
    name: str
    version: int
    schema: str  # the pandera model in spine.schemas
    inputs: tuple[Input, ...]
    description: str
    tiers: tuple[str, ...] = TIERS
    partitioning: tuple[str, ...] = ("tier", "week_start")  # calc/<name>/tier=../week_start=..

    @property
    def needs_regsho(self) -> bool:
        return any(i.name == "regsho" for i in self.inputs)


CALCS: tuple[Calc, ...] = (
    Calc("symbol_week", 2, "SymbolWeek", (Input("clean"),),
         "Per security line: ATS and non-ATS shares and trades, venue count, ATS share, "
         "average trade size."),
    Calc("venue_share", 2, "VenueShare", (Input("clean"),),
         "Per venue (MPID, else CRD number, else name, within summary type; the pooled De "
         "Minimis row is one venue): shares, trades, symbols, share of the tier's "
         "shares and rank."),
    Calc("symbol_hhi", 2, "SymbolHHI", (Input("clean"),),
         "Per security line: HHI of its venues' shares (0-10,000), top venue and its share."),
    Calc("tier_summary", 1, "TierSummary", (Input("venue_share"), Input("symbol_week")),
         "Per tier and week: ATS vs non-ATS share, venue counts, HHI of venue shares, symbols "
         "traded, average trade size, shares and trades per trading day."),
    Calc("symbol_trend", 2, "SymbolTrend", (Input("symbol_week", weeks=TREND_WEEKS),),
         "Per symbol: shares and trades per trading day, 4- and 13-week rolling means, z-score "
         "against its own earlier weeks of the 13 (from 3 of them), week-over-week change."),
    Calc("movers", 1, "Movers", (Input("symbol_trend"),),
         "Per tier and week: the symbols with the largest rises and falls against their own "
         "trailing window, by shares per day and by z-score, above minimum-volume floors."),
    Calc("venue_trend", 2, "VenueTrend", (Input("venue_share", weeks=TREND_WEEKS),),
         "Per venue: share of the tier over time, 4- and 13-week mean share, rank change, "
         "entries and exits."),
    Calc("short_volume_weekly", 1, "ShortVolumeWeekly", (Input("symbol_week"), Input("regsho")),
         "Per NMS symbol and week: Reg SHO short ratio, beside FINRA's weekly OTC totals for "
         "the symbol and the share of Reg SHO's volume they account for.", tiers=NMS_TIERS),
)

# A new calculation's entry goes at the end of CALCS above, or below this line as
#   CALCS += (Calc(...),)
# (workflows/development/ADD_CALCULATION.md). Everything below reads CALCS when called.


def names() -> list[str]:
    return [c.name for c in CALCS]


def get(name: str) -> Calc:
    for c in CALCS:
        if c.name == name:
            return c
    raise KeyError(f"no calculation {name!r} in spine/derive/registry.py; known: {', '.join(names())}")


def for_tier(tier: str, regsho: bool) -> list[Calc]:
    """The calculations a held (tier, week) has: all of the tier's, those reading Reg SHO only
    when it is enabled."""
    return [c for c in CALCS if tier in c.tiers and (regsho or not c.needs_regsho)]


def reach(name: str) -> int:
    """How many weeks back a calculation's output depends on (1: its own week only), through
    the calculations it reads."""
    calc = get(name)
    return max(i.weeks - 1 + (reach(i.name) if i.name not in SOURCES else 1)
               for i in calc.inputs)


def longest_reach() -> int:
    return max(reach(c.name) for c in CALCS)


def check() -> None:
    """The registry is well formed: known inputs, each read after it is computed, tiers
    covered. The Snakefile calls it before planning anything."""
    seen: set[str] = set()
    for c in CALCS:
        for i in c.inputs:
            if i.name not in SOURCES and i.name not in seen:
                raise ValueError(f"calculation {c.name!r} reads {i.name!r}, which is not an "
                                 "earlier entry of spine/derive/registry.py CALCS")
            if i.name not in SOURCES and not set(c.tiers) <= set(get(i.name).tiers):
                raise ValueError(f"calculation {c.name!r} runs on tiers {c.tiers} but reads "
                                 f"{i.name!r}, which runs on {get(i.name).tiers}")
            if i.weeks < 1:
                raise ValueError(f"calculation {c.name!r}: input {i.name!r} weeks must be >= 1")
        if c.name in seen or c.name in SOURCES:
            raise ValueError(f"calculation name {c.name!r} is used twice")
        seen.add(c.name)

