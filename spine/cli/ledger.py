"""The commands that change or compare what the ledger records for a week: import downloaded
files through the gates, decide captures again, let a refused capture through, pin clean to a
capture, and show what a revision changed."""

from __future__ import annotations

import argparse
import sys

from spine.ingest.ledger import LakeState
from spine.ingest import decide
from spine.cli.common import load_config, reports_command
from spine.ingest.sources import SourceError
from spine.lake import LakeBusy, lake_lock
from spine.reports import revision as revisions
from spine.status import commands as status_commands
from spine.ingest import ledger


def import_file(args: argparse.Namespace) -> int:
    """Import FINRA files downloaded by hand as one capture of (tier, week), through the gates."""
    cfg = load_config(args.lake_root)
    try:
        with lake_lock(cfg["lake_root"], wait=600):  # one writer of the lake at a time
            receipt, report = decide.import_files(cfg, args.paths, args.tier,
                                                    args.week_start, args.summary_type)
    except (SourceError, ValueError, LakeBusy) as err:
        print(f"spine import-file: {err}", file=sys.stderr)
        print("Nothing was stored.", file=sys.stderr)
        return 2
    state = "new capture" if receipt["new_capture"] else "identical to a stored capture"
    print(f"captured {receipt['rows']:,} rows of {args.tier} week {receipt['week_start']} as "
          f"{receipt['capture_id']} ({state}) in {cfg['lake_root']}/{receipt['file']}")
    print(f"gate: {report.status}")
    for check in report.checks:
        print(f"  {check.status:4}  {check.check}: {check.message}")
    if report.status != "PASS":
        print("The week was not advanced to clean; see "
              "workflows/incident/RESOLVE_QUALITY_GATE.md.", file=sys.stderr)
        return 1
    print("recorded as accepted; to update clean, calculations and reports: "
          f"{reports_command(cfg['lake_root'])}")
    return 0


def regate(args: argparse.Namespace) -> int:
    """Decide captures again under the current gate settings; verdicts go to the ledger."""
    cfg = load_config(args.lake_root)
    root = cfg["lake_root"]
    if args.all:
        parts = [(t, w) for t, w in ledger.LakeState.read(root).accepted() if t in cfg["tiers"]]
    elif args.tier and args.week_start:
        parts = [(args.tier, args.week_start)]
    else:
        print("spine regate: give --tier and --week-start, or --all", file=sys.stderr)
        return 2
    changed = 0
    try:
        with lake_lock(root, wait=600):
            for tier, week in parts:
                before = LakeState.read(root).get(tier, week).held
                held, report = decide.regate(cfg, tier, week, args.capture)
                failed = ", ".join(c.check for c in report.failures)
                changed += held != before
                print(f"{report.status:4}  {tier:4}  {week}  capture {report.capture_id}"
                      + (f"  failed: {failed}" if failed else "")
                      + (f"  -> clean now holds {held or 'nothing'}" if held != before else ""))
    except (ValueError, FileNotFoundError, LakeBusy) as err:
        print(f"spine regate: {err}", file=sys.stderr)
        return 2
    print(f"{len(parts):,} capture(s) decided again, {changed:,} week(s) changed what clean "
          f"holds. Recorded in the ledger; then: {reports_command(root)}")
    return 0


def override(args: argparse.Namespace) -> int:
    """Let a refused capture through (or take that back), on record."""
    cfg = load_config(args.lake_root)
    if not args.revoke and not args.check:
        print("spine override: name the failed check(s) you let through with --check",
              file=sys.stderr)
        return 2
    try:
        with lake_lock(cfg["lake_root"], wait=600):
            checks = [c.strip() for arg in args.check or [] for c in arg.split(",") if c.strip()]
            held = decide.override(cfg, args.tier, args.week_start, checks,
                                     args.reason, args.capture, revoke=args.revoke)
    except (ValueError, FileNotFoundError, LakeBusy) as err:
        print(f"spine override: {err}", file=sys.stderr)
        return 2
    what = "override revoked" if args.revoke else "overridden"
    print(f"{args.tier} week {args.week_start}: {what}; clean holds {held or 'nothing'}. "
          f"Recorded in the ledger; then: {reports_command(cfg['lake_root'])}")
    return 0


def pin(args: argparse.Namespace) -> int:
    """Pin clean to a stored capture that passed its gates (recorded, reversible)."""
    cfg = load_config(args.lake_root)
    try:
        with lake_lock(cfg["lake_root"], wait=600):
            previous = decide.pin(cfg, args.tier, args.week_start, args.capture, args.reason)
    except (ValueError, FileNotFoundError, LakeBusy) as err:
        print(f"spine pin: {err}", file=sys.stderr)
        return 2
    print(f"{args.tier} week {args.week_start}: clean pinned to {args.capture} (was "
          f"{previous or 'empty'}). Undo: spine pin --tier {args.tier} --week-start "
          f"{args.week_start} --capture {previous} --reason '...'"
          f"{status_commands(cfg['lake_root'])[1]}. Then run {reports_command(cfg['lake_root'])} "
          "to recompute what depends on it.")
    return 0


def diff(args: argparse.Namespace) -> int:
    """Print what a revision changed; the first line counts rows."""
    root = load_config(args.lake_root)["lake_root"]
    try:
        d = revisions.diff(root, args.tier, args.week_start, args.old, args.new)
    except (ValueError, FileNotFoundError) as err:
        print(f"spine diff: {err}", file=sys.stderr)
        return 2
    print(d.headline())
    print(f"{args.tier} week {d.week_start}: capture {d.old_capture} -> {d.new_capture}\n")
    print(revisions.table(d.totals()), "\n")
    print("largest symbol changes:\n" + revisions.table(d.largest("symbol", args.top)))
    print("\nlargest venue changes:\n" + revisions.table(d.largest("venue", args.top)))
    for name in ("added", "removed", "changed"):
        rows = d.shown(name, args.top)
        if len(rows):
            print(f"\n{name} (first {len(rows):,}):\n" + revisions.table(rows))
    return 0
