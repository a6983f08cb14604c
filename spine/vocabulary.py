"""The words of Market Spine, each declared once: tiers, datasets, summary types, steps, report
kinds. Everything else takes them from here: the calendar, the schemas, the plan, the registry,
the CLI's choices, the Snakefile's wildcard constraints and the config schema's enums
(`config/schema.yaml` is generated from this module by `spine schema`; a test holds it current).

Standard library only: the Snakefile and the CLI import it before anything else.
"""

from __future__ import annotations

# FINRA's tiers (`tierIdentifier`): NMS Tier 1, NMS Tier 2, OTC equity
TIERS = ("T1", "T2", "OTCE")
NMS_TIERS = ("T1", "T2")  # the tiers Reg SHO short-sale volume covers

# the datasets of the lake (its folder names under raw/, ledger/, clean/)
DATASET_WEEKLY = "finra_otc_weekly"  # FINRA's weekly OTC Transparency summary
DATASET_REGSHO = "finra_regsho_daily"  # FINRA's daily Reg SHO short-sale volume
DATASETS = (DATASET_WEEKLY, DATASET_REGSHO)

# FINRA's summary types (`summaryTypeCode`): the detail rows, one per security and firm ...
ATS = "ATS_W_SMBL_FIRM"
NON_ATS = "OTC_W_SMBL_FIRM"
DETAIL_SUMMARY_TYPES = (ATS, NON_ATS)
# ... and FINRA's own aggregates of them, per security (`*_SMBL`) and per firm (`*_FIRM`)
SIDES = {"ATS": {"detail": ATS, "symbol": "ATS_W_SMBL", "firm": "ATS_W_FIRM"},
         "non-ATS": {"detail": NON_ATS, "symbol": "OTC_W_SMBL", "firm": "OTC_W_FIRM"}}
AGGREGATE_SUMMARY_TYPES = tuple(s[k] for s in SIDES.values() for k in ("symbol", "firm"))
SUMMARY_TYPES = DETAIL_SUMMARY_TYPES + AGGREGATE_SUMMARY_TYPES

# the steps: one rule, one notebook (notebooks/<step>.ipynb) and one entry of
# spine.notebooks.STEPS each, in the order a week goes through them
STEPS = ("fetch", "gate", "clean", "calc", "fetch_regsho", "weekly_report", "revision_report",
         "symbol_report")
# the kinds of run, the Snakefile's targets that fetch (spine.plan has a function of each name)
RUN_KINDS = ("weekly", "backfill", "refetch")
# the kinds of report a reviewer reads (the last three steps) and the index over them
REPORTS = ("weekly_report", "revision_report", "symbol_report", "report_index")
