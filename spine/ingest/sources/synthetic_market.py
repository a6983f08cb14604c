"""The simulated market behind the synthetic source: who trades what, and how much, each week.

Deterministic for (seed, size, tier, week_start). `base_rows` gives a week's detail rows
(`ATS_W_SMBL_FIRM`, `OTC_W_SMBL_FIRM`) before FINRA's quirks and restatements, which
`spine.ingest.sources.synthetic` adds. What makes it realistic:
- per-tier symbol universes that persist week to week (a symbol trades on mostly the same venues);
- autocorrelated, heavy-tailed weekly volumes (AR(1) in log space around a heavy-tailed level);
- real ATS MPIDs per tier (every one is in spine/ingest/reference/ats_mpids.csv) and plausible
  non-ATS firms, two of them small firms that report with a CRD number and no MPID;
- the data as it was: before the week of 2019-11-11 (FINRA Regulatory Notice 19-29) the small
  non-ATS firms are pooled into one "De Minimis Firms" row per symbol, with no MPID and no CRD
  (its shares, trades and notional the pooled firms' sums); from that week every firm reports
  itself. Share quantities are whole until the week of 2026-02-23, when the consolidated tape
  starts carrying fractional sizes; from then about 13% of rows are fractional;
- fewer shares in holiday weeks.

Magnitudes, and where they come from (/work/shared/FINRA_FACTS.md):
- rows per full week (section "What the data is"): ~72k T1, ~168k T2, ~24k OTCE detail rows
  (`size="full"`; the aggregates add about one row per security line and side, and one per
  firm); an OTCE ATS file of ~5,000 rows and ~10 ATS MPIDs (here the 9 it names);
- about 33 active NMS ATSs (section "Magnitudes"): `size="full"` T1 and T2 use 33;
- the ATS share of off-exchange shares, ATS / (ATS + non-ATS), about 16-31% in recent years
  (section "Magnitudes"): the ATS venues' weights are scaled so that the expected share is
  `TierShape.ats_share` (25% for T1 and T2, and for OTCE, where FINRA_FACTS gives no figure);
- non-ATS volume concentrated in a few wholesalers (section "Magnitudes", no figure given): the
  weights in `NON_ATS_FIRMS` are this module's own illustration, the top 2 firms carrying about
  55% and the top 5 about 80% of non-ATS shares.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from spine import calendar as cal
from spine.vocabulary import ATS, NON_ATS

EPOCH = dt.date(2014, 1, 6)  # a Monday; week indices count from here
AR_PHI = 0.8
AR_LAGS = 30
DE_MINIMIS_UNTIL = dt.date(2019, 11, 11)  # the first week every non-ATS firm reports itself
DE_MINIMIS_NAME = "De Minimis Firms"
FRACTIONAL_FROM = dt.date(2026, 2, 23)  # the first week with fractional share quantities
FRACTIONAL_ROWS = 0.13  # fraction of rows with a fractional quantity from then

# Real ATS MPIDs and names (spine/ingest/reference/ats_mpids.csv), the largest first: NMS (T1, T2)
# and OTCE.
ATS_MPIDS = {
    "NMS": [
        ("SGMT", "SIGMA X2"), ("INCR", "INTELLIGENT CROSS ASPEN"), ("UBSA", "UBS ATS"),
        ("JPMX", "JPM-X"), ("JPBX", "JPB-X"), ("MLIX", "INSTINCT X"), ("EBXL", "LEVEL ATS"),
        ("CROS", "CROSSFINDER"), ("IATS", "IBKR ATS"), ("CGXS", "ONECHRONOS"),
        ("MSPL", "MS POOL"), ("MSTX", "MS TRAJECTORY CROSS"), ("BIDS", "BIDS ATS"),
        ("ICBX", "INSTINET CBX"), ("PURE", "PURESTREAM"), ("CODA", "CODA MARKETS ATS"),
        ("ONEC", "CITI-ONE ATS"), ("LMNX", "LUMINEX TRADING"), ("MSRP", "MS RPOOL"),
        ("KCGM", "VIRTU MATCHIT"), ("XSTM", "CROSSSTREAM"), ("CXCX", "CITI CROSS"),
        ("LATS", "THE BARCLAYS ATS"), ("BLKX", "INSTINET BLOCKCROSS"),
        ("XIST", "INSTINET CROSSING"), ("ITGP", "POSIT"), ("LQNA", "LIQUIDNET H2O ATS"),
        ("PJCX", "XE"), ("LQPT", "DASH ATS"), ("AXTN", "AX TRADING"), ("MLCX", "GCX"),
        ("CBLC", "CITIBLOC"), ("AQUA", "AQUA"),
    ],
    "OTCE": [
        ("OTCN", "OTC LINK NQB IDQS"), ("OTCX", "OTC LINK ECN"), ("ARCA", "GLOBAL OTC"),
        ("PPEX", "PURE X"), ("PROS", "PROSPER"), ("ALTS", "ALTERNATIVE TRADING SYSTEM"),
        ("SWCL", "SWITCHBLADE"), ("STEN", "STENO"),
        ("SMKT", "DISTRIBUTED TECHNOLOGY MARKETS ATS"),
    ],
}

# Non-ATS firms: (MPID, name, weight). The weight is the firm's part of a symbol's non-ATS
# shares where it trades (illustrative: a few wholesalers carry most of them). The last two are
# small firms that report with a CRD number and no MPID; OTCE uses the first 16 and those two.
NON_ATS_FIRMS = [
    ("CDRG", "CITADEL SECURITIES LLC", 0.310), ("NITE", "VIRTU AMERICAS LLC", 0.240),
    ("ETMM", "G1 EXECUTION SERVICES LLC", 0.110), ("JNST", "JANE STREET CAPITAL LLC", 0.100),
    ("SOHO", "TWO SIGMA SECURITIES LLC", 0.070), ("UBSS", "UBS SECURITIES LLC", 0.025),
    ("GSCO", "GOLDMAN SACHS & CO LLC", 0.020), ("MSCO", "MORGAN STANLEY & CO LLC", 0.018),
    ("IBKR", "INTERACTIVE BROKERS LLC", 0.015), ("HRTF", "HRT FINANCIAL LP", 0.015),
    ("NFSC", "NATIONAL FINANCIAL SERVICES LLC", 0.012),
    ("JPMS", "J.P. MORGAN SECURITIES LLC", 0.012),
    ("MLCO", "BOFA SECURITIES INC", 0.010), ("WEXX", "WOLVERINE EXECUTION SERVICES LLC", 0.007),
    ("INCA", "INSTINET LLC", 0.007), ("RBCM", "RBC CAPITAL MARKETS LLC", 0.006),
    ("JEFF", "JEFFERIES LLC", 0.005), ("NMRA", "NOMURA SECURITIES INTERNATIONAL INC", 0.003),
    ("BARD", "BARCLAYS CAPITAL INC", 0.003), ("CANT", "CANTOR FITZGERALD & CO", 0.003),
    ("SNEY", "STIFEL NICOLAUS & CO INC", 0.002), ("LEKS", "LEK SECURITIES CORP", 0.002),
    ("DBAB", "DEUTSCHE BANK SECURITIES INC", 0.002), ("PUMA", "PUMA CAPITAL LLC", 0.001),
    (None, "NORTHBRIDGE CAPITAL MARKETS LLC", 0.001), (None, "HARBORVIEW SECURITIES INC", 0.001),
]
# Before DE_MINIMIS_UNTIL, the firms below this weight are pooled into the "De Minimis Firms"
# row (FINRA pooled the firms with fewer than 200 non-ATS trades a day on average; here, the
# smallest firms, the two CRD-only ones among them).
DE_MINIMIS_WEIGHT = 0.005


@dataclass(frozen=True)
class TierShape:
    symbols: int
    ats_rows: int  # expected ATS_W_SMBL_FIRM rows per week
    otc_rows: int  # expected OTC_W_SMBL_FIRM rows per week
    n_ats: int
    n_firms: int
    log_volume: tuple[float, float]  # mean, sd of a symbol's log weekly off-exchange shares
    log_price: tuple[float, float]
    trade_size: float  # typical shares per trade
    ats_share: float = 0.25  # expected ATS / (ATS + non-ATS) of the tier's shares


# Full sizes follow a real week: ~72k detail rows T1, ~168k T2, ~24k OTCE (ATS ~5k rows, ~3.1k
# symbols, ~10 ATSs: the 9 real OTCE ATS MPIDs FINRA_FACTS names); 33 NMS ATSs.
SHAPES = {
    "full": {
        "T1": TierShape(1500, 40_000, 32_000, 33, 26, (15.5, 1.1), (4.2, 0.8), 150),
        "T2": TierShape(9000, 100_000, 68_000, 33, 26, (11.8, 1.6), (2.7, 1.2), 260),
        "OTCE": TierShape(12000, 5_000, 19_000, 9, 18, (11.0, 2.0), (-1.2, 2.0), 4000),
    },
    "small": {
        "T1": TierShape(40, 700, 500, 12, 10, (15.5, 1.1), (4.2, 0.8), 150),
        "T2": TierShape(80, 900, 600, 12, 10, (11.8, 1.6), (2.7, 1.2), 260),
        "OTCE": TierShape(60, 120, 260, 6, 8, (11.0, 2.0), (-1.2, 2.0), 4000),
    },
}


_WORDS = [
    "Acme", "Apex", "Atlas", "Blue", "Bright", "Cedar", "Crest", "Delta", "Eagle", "Echo",
    "Everest", "First", "Frontier", "Global", "Golden", "Granite", "Harbor", "Horizon", "Iron",
    "Keystone", "Liberty", "Lunar", "Meridian", "Nova", "Oak", "Orion", "Pacific", "Pioneer",
    "Quantum", "Redwood", "River", "Sierra", "Silver", "Summit", "Terra", "Titan", "Union",
    "Vector", "Vista", "Zenith",
]
_KINDS = [
    "Holdings", "Technologies", "Pharmaceuticals", "Energy", "Bancorp", "Resources", "Mining",
    "Therapeutics", "Industries", "Capital", "Brands", "Systems",
]


def seeded(*parts: object) -> np.random.Generator:
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return np.random.default_rng(int.from_bytes(digest, "little"))


def _solve_scale(weights: np.ndarray, target: float) -> float:
    """Scale such that sum(clip(weights * scale, 0, 0.97)) is close to target."""
    lo, hi = 0.0, 1.0
    while np.clip(weights * hi, 0, 0.97).sum() < target and hi < 1e12:
        hi *= 2
    for _ in range(60):
        mid = (lo + hi) / 2
        if np.clip(weights * mid, 0, 0.97).sum() < target:
            lo = mid
        else:
            hi = mid
    return hi


def _ats_factor(volume: np.ndarray, presence: np.ndarray, weight: np.ndarray,
                is_ats: np.ndarray, target: float) -> float:
    """Multiplier of the ATS venues' weights such that the expected ATS share of the tier's
    shares, ATS / (ATS + non-ATS) summed over symbols by volume, is `target` (bisection)."""
    ats = presence[:, is_ats] @ weight[is_ats]
    non_ats = presence[:, ~is_ats] @ weight[~is_ats]

    def share(factor: float) -> float:
        return float((volume * factor * ats / (factor * ats + non_ats)).sum() / volume.sum())

    lo, hi = 1e-6, 1e6
    for _ in range(80):
        mid = float(np.sqrt(lo * hi))
        lo, hi = (mid, hi) if share(mid) < target else (lo, mid)
    return float(np.sqrt(lo * hi))


@dataclass(frozen=True)
class Universe:
    tier: str
    symbols: np.ndarray
    issue_names: np.ndarray
    product_types: np.ndarray
    level: np.ndarray  # mean log weekly volume per symbol
    log_price: np.ndarray
    venue_mpid: np.ndarray  # object array, None for CRD-only firms
    venue_name: np.ndarray
    venue_crd: np.ndarray  # float: every venue has a CRD in FINRA data
    venue_is_ats: np.ndarray
    venue_weight: np.ndarray  # a venue's part of a symbol's shares where it trades
    venue_pooled: np.ndarray  # a small non-ATS firm: in "De Minimis Firms" before 2019-11-11
    presence: np.ndarray  # (symbols, venues) probability a symbol trades on a venue in a week
    core: np.ndarray  # (symbols, venues) uniform draw fixing persistent participation


def _tickers(rng: np.random.Generator, n: int, lengths: list[int], taken: set[str]) -> list[str]:
    letters = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    out: list[str] = []
    while len(out) < n:
        length = int(rng.choice(lengths))
        ticker = "".join(rng.choice(letters, size=length))
        if ticker not in taken:
            taken.add(ticker)
            out.append(ticker)
    return out


@lru_cache(maxsize=8)
def _nms_tickers(seed: int, size: str) -> dict[str, list[str]]:
    """T1 and T2 draw from one pool so no ticker is in both NMS tiers."""
    rng = seeded(seed, size, "nms-tickers")
    taken: set[str] = set()
    t1 = _tickers(rng, SHAPES[size]["T1"].symbols, [1, 2, 3, 3, 4, 4], taken)
    t2 = _tickers(rng, SHAPES[size]["T2"].symbols, [3, 4, 4, 4], taken)
    return {"T1": t1, "T2": t2}


@lru_cache(maxsize=8)
def universe(seed: int, size: str, tier: str) -> Universe:
    if size not in SHAPES:
        raise ValueError(f"synthetic size={size!r} is unknown; use one of {', '.join(SHAPES)}")
    shape = SHAPES[size][cal.check_tier(tier)]
    rng = seeded(seed, size, tier, "universe")
    n = shape.symbols
    if tier == "OTCE":
        symbols = _tickers(rng, n, [4, 5, 5], set())
        product_types = np.full(n, "OTC", dtype=object)
    else:
        symbols = _nms_tickers(seed, size)[tier]
        product_types = np.where(rng.random(n) < 0.45, "UTP", "CTS").astype(object)
    symbols = np.array(symbols, dtype=object)
    # A lowercase suffix is a different security (e.g. a preferred or a when-issued line).
    n_suffix = max(1, n // 200)
    idx = rng.choice(n, size=n_suffix, replace=False)
    symbols[idx] = [s[:3] + "p" + s[3:4] if len(s) >= 3 else s + "w" for s in symbols[idx]]
    symbols[idx] = [s if s not in set(symbols[np.setdiff1d(np.arange(n), idx)]) else s + "w"
                    for s in symbols[idx]]
    names = []
    for _ in range(n):
        a, b = rng.choice(_WORDS, size=2, replace=False)
        kind = rng.choice(_KINDS)
        sep = "  " if rng.random() < 0.03 else " "  # issueName is not trimmed in FINRA data
        names.append(f"{a} {b}{sep}{kind} Inc Common Stock")
    issue_names = np.array(names, dtype=object)

    mean, sd = shape.log_volume
    # Student-t levels (clipped): a heavier tail than lognormal, a few symbols dominate.
    z = np.clip(rng.standard_t(df=6, size=n), -4, 4)
    level = mean + sd * z * 0.8
    # Cheap OTC stocks trade the most shares; large NMS names are both liquid and pricier.
    rho = -0.5 if tier == "OTCE" else 0.3
    p_mean, p_sd = shape.log_price
    log_price = p_mean + p_sd * (rho * z / z.std() + np.sqrt(1 - rho**2) * rng.normal(size=n))

    ats_pool = ATS_MPIDS["OTCE" if tier == "OTCE" else "NMS"][: shape.n_ats]
    firms = NON_ATS_FIRMS[: shape.n_firms - 2] + NON_ATS_FIRMS[-2:]
    mpids = [m for m, _ in ats_pool] + [m for m, _, _ in firms]
    vnames = [nm for _, nm in ats_pool] + [nm for _, nm, _ in firms]
    is_ats = np.array([True] * len(ats_pool) + [False] * len(firms))
    crd_rng = seeded(seed, "crd")  # one CRD per firm name, the same in every tier
    every_name = [nm for _, nm in ATS_MPIDS["NMS"] + ATS_MPIDS["OTCE"]]
    every_name += [nm for _, nm, _ in NON_ATS_FIRMS]
    crd_of = {nm: int(c) for nm, c in zip(every_name, crd_rng.choice(
        np.arange(1000, 330000), size=len(every_name), replace=False))}
    crds = np.array([crd_of[nm] for nm in vnames], dtype=float)
    # Venue weights: Zipf-like within the ATSs, the firms' own within non-ATS.
    weight = np.empty(len(mpids))
    weight[is_ats] = 1.0 / np.arange(1, is_ats.sum() + 1) ** 1.1
    weight[~is_ats] = [w for _, _, w in firms]
    pooled = ~is_ats & (weight < DE_MINIMIS_WEIGHT)
    breadth = weight ** 0.5  # the scale per group is solved below
    activity = np.exp((level - level.mean()) / (2 * level.std()))
    base = activity[:, None] * breadth[None, :]
    presence = np.zeros_like(base)
    for mask, target in ((is_ats, shape.ats_rows), (~is_ats, shape.otc_rows)):
        # Weekly churn (see base_rows) keeps ~92% of the expected pairs: aim a little higher.
        scale = _solve_scale(base[:, mask], target * 1.09)
        presence[:, mask] = np.clip(base[:, mask] * scale, 0, 0.97)
    # Where ATSs and firms trade a symbol together, the ATSs' part sets the tier's ATS share.
    weight[is_ats] *= _ats_factor(np.exp(level), presence, weight, is_ats, shape.ats_share)
    core = rng.random(presence.shape)
    return Universe(
        tier=tier, symbols=symbols, issue_names=issue_names, product_types=product_types,
        level=level, log_price=log_price,
        venue_mpid=np.array(mpids, dtype=object), venue_name=np.array(vnames, dtype=object),
        venue_crd=crds, venue_is_ats=is_ats, venue_weight=weight, venue_pooled=pooled,
        presence=presence, core=core,
    )


def week_index(week_start: dt.date) -> int:
    return (week_start - EPOCH).days // 7


def symbol_log_volume(u: Universe, seed: int, size: str, week_start: dt.date) -> np.ndarray:
    """AR(1) deviation around each symbol's level, as a truncated sum of weekly shocks."""
    k = week_index(week_start)
    n = len(u.symbols)
    dev = np.zeros(n)
    for lag in range(AR_LAGS):
        shocks = seeded(seed, size, u.tier, "shock", k - lag).standard_normal(n)
        dev += AR_PHI**lag * shocks
    return u.level + 0.35 * np.sqrt(1 - AR_PHI**2) * dev


def base_rows(seed: int, size: str, tier: str, week_start: dt.date) -> pd.DataFrame:
    u = universe(seed, size, tier)
    shape = SHAPES[size][tier]
    rng = seeded(seed, size, tier, "week", week_start.isoformat())
    # Mostly persistent participation, with some venues coming and going each week.
    weekly = rng.random(u.presence.shape)
    present = (u.core < u.presence * 0.9) | (weekly < u.presence * 0.1)
    s_idx, v_idx = np.nonzero(present)
    n_rows = len(s_idx)

    days = cal.trading_days(week_start)
    volume = np.exp(symbol_log_volume(u, seed, size, week_start)) * days / 5
    w = u.venue_weight[v_idx] * np.exp(rng.normal(0, 0.5, n_rows))
    w_sum = np.bincount(s_idx, weights=w, minlength=len(u.symbols))
    shares = volume[s_idx] * w / w_sum[s_idx]
    shares = np.maximum(shares, 1.0 + rng.integers(0, 300, n_rows))
    fractional = (rng.random(n_rows) < FRACTIONAL_ROWS) & (week_start >= FRACTIONAL_FROM)
    shares = np.where(fractional, np.round(shares, 4), np.floor(shares))
    shares = np.where(shares <= 0, 1.0, shares)
    size_per_trade = shape.trade_size * np.exp(rng.normal(0, 0.6, n_rows))
    trades = np.clip(np.round(shares / size_per_trade), 1, np.maximum(1, np.ceil(shares)))
    price = np.exp(u.log_price[s_idx] + rng.normal(0, 0.01, n_rows))
    notional = np.round(shares * price, 2)

    df = pd.DataFrame({
        "issueSymbolIdentifier": u.symbols[s_idx],
        "issueName": u.issue_names[s_idx],
        "firmCRDNumber": u.venue_crd[v_idx],
        "MPID": u.venue_mpid[v_idx],
        "marketParticipantName": u.venue_name[v_idx],
        "totalWeeklyTradeCount": trades.astype(np.int64),
        "totalWeeklyShareQuantity": shares,
        "totalNotionalSum": notional,
        "productTypeCode": u.product_types[s_idx],
        "summaryTypeCode": np.where(u.venue_is_ats[v_idx], ATS, NON_ATS),
    })
    if week_start < DE_MINIMIS_UNTIL:
        df = _pool_de_minimis(df, u.venue_pooled[v_idx])
    return df


def _pool_de_minimis(df: pd.DataFrame, pooled: np.ndarray) -> pd.DataFrame:
    """Before 2019-11-11: the small firms' rows of a symbol as one "De Minimis Firms" row, with
    no MPID and no CRD, its shares, trades and notional their sums."""
    line = ["issueSymbolIdentifier", "issueName", "productTypeCode", "summaryTypeCode"]
    values = ["totalWeeklyTradeCount", "totalWeeklyShareQuantity", "totalNotionalSum"]
    pool = df[pooled].groupby(line, sort=True)[values].sum().reset_index()
    pool[values[-1]] = pool[values[-1]].round(2)
    pool = pool.assign(firmCRDNumber=np.nan, MPID=None, marketParticipantName=DE_MINIMIS_NAME)
    return pd.concat([df[~pooled], pool[df.columns]], ignore_index=True)
