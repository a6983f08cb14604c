"""A venue of the clean layout: who traded, as the gates compare weeks and the calculations
count venues.

A venue is one reporting MPID (else CRD number, else name) within one summary type; FINRA's
pooled "De Minimis Firms" row is one venue of its own (docs/data-contract.md, "How each
calculation treats FINRA's special rows").
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from spine.vocabulary import ATS, NON_ATS


# Before the week of 2019-11-11 (FINRA Regulatory Notice 19-29) FINRA pooled the small non-ATS
# firms of each symbol into one row without MPID or CRD number, named "De Minimis Firms". The
# calculations count it as one venue (docs/data-contract.md, "How each calculation treats
# FINRA's special rows"), labelled so that no ranking shows it as a firm.
DE_MINIMIS_NAME = "De Minimis Firms"
DE_MINIMIS_LABEL = "De Minimis Firms (pooled)"


def reported_mpid(rows: pd.DataFrame) -> pd.Series:
    """The MPID, null where it is missing or blank (a firm that reports only a CRD number)."""
    mpid = rows["mpid"].astype("string")
    return mpid.mask((mpid.str.strip().fillna("") == "").to_numpy(dtype=bool))


def de_minimis(rows: pd.DataFrame) -> pd.Series:
    """Whether each row is FINRA's pooled "De Minimis Firms" row: non-ATS, no MPID, no CRD
    number, that name (any case or spacing). A firm without MPID whose own name merely starts
    with "De Minimis" is a firm, not the pool."""
    pooled = ((rows["summary_type"] == NON_ATS).to_numpy(dtype=bool)
              & reported_mpid(rows).isna().to_numpy(dtype=bool)
              & rows["firm_crd"].isna().to_numpy(dtype=bool))
    if pooled.any():  # the name only where it can matter: normalising every row's costs 0.3 s
        names = rows["participant_name"].iloc[np.flatnonzero(pooled)].astype("string")
        names = names.str.split().str.join(" ").str.casefold()
        pooled[np.flatnonzero(pooled)] = (names == DE_MINIMIS_NAME.casefold()).fillna(
            False).to_numpy(dtype=bool)
    return pd.Series(pooled, index=rows.index)


def venue_label(clean: pd.DataFrame) -> pd.Series:
    """A venue is one reporting MPID (or `CRD <number>` for a firm that reports without one,
    a blank MPID counting as none; or its name when neither is known) within one summary type,
    so a firm that runs an ATS and also trades as a non-ATS dealer counts as two venues:
    `GSCO ATS` and `GSCO non-ATS`. FINRA's pooled De Minimis row is one venue, labelled
    `De Minimis Firms (pooled) non-ATS`."""
    crd = "CRD " + clean["firm_crd"].astype("string")
    ident = reported_mpid(clean).fillna(crd).fillna(clean["participant_name"].astype("string"))
    ident = ident.mask(de_minimis(clean).to_numpy(), DE_MINIMIS_LABEL)
    return ident + np.where(clean["summary_type"] == ATS, " ATS", " non-ATS")
