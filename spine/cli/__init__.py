"""`spine` command line: small operator tools the Snakefile and runbooks call."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from spine.vocabulary import DETAIL_SUMMARY_TYPES, TIERS


def parser() -> argparse.ArgumentParser:
    """The command line, built without running a command (the tests read every option's help)."""
    tiers = f"{', '.join(TIERS[:-1])} or {TIERS[-1]}"
    week = "the week's Monday, YYYY-MM-DD"
    lake = "the lake (default: lake_root of config/config.yaml)"
    # a full synthetic week's rows per tier: the detail rows, and with FINRA's aggregates
    detail = ", ".join(f"~{n}k {t}" for n, t in zip((72, 168, 24), TIERS, strict=True))
    whole = ", ".join(f"{n}k {t}" for n, t in zip((75, 192, 39), TIERS, strict=True))
    parser = argparse.ArgumentParser(prog="spine", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                help="spine COMMAND --help says what it takes")
    p = sub.add_parser("import-file", help="import downloaded FINRA files as a capture")
    p.add_argument("paths", nargs="+", help="download files (ATS and/or non-ATS) or API exports")
    p.add_argument("--tier", required=True, choices=TIERS, help=f"the files' tier: {tiers}")
    p.add_argument("--week-start", required=True, help=week)
    p.add_argument("--summary-type", choices=DETAIL_SUMMARY_TYPES,
                   help="for a download file whose name does not say ATS or non-ATS (default: "
                   "from the file's name)")
    p.add_argument("--lake-root", help=lake)
    p = sub.add_parser("emulator", help="serve the FINRA emulator on loopback")
    p.add_argument("--port", type=int, default=8080,
                   help="the loopback port to listen on (default: %(default)s; 0: any free port)")
    p.add_argument("--as-of", required=True, help="serve the weeks FINRA had published by this "
                   "day, as they were then, YYYY-MM-DD")
    p.add_argument("--size", choices=["small", "full"], default="small",
                   help="the synthetic data: small (tests and demos) or full (a real week's "
                   f"detail rows: {detail}; with FINRA's aggregates a full week is about "
                   f"{whole} rows) (default: %(default)s)")
    p.add_argument("--seed", type=int, default=7, help="the synthetic data's seed: the same seed "
                   "serves the same data (default: %(default)s, as synthetic.seed in the config)")
    p.add_argument("--require-token", action="store_true",
                   help="refuse data requests without an OAuth2 bearer token, as FINRA's API does "
                   "(the test client's id and secret: spine.emulator.Faults)")
    p = sub.add_parser("diff", help="what a revision changed, between two captures")
    p.add_argument("--tier", required=True, choices=TIERS, help=f"the week's tier: {tiers}")
    p.add_argument("--week-start", required=True, help=week)
    p.add_argument("--old", help="capture id (default: the second most recent distinct capture "
                   "fetched)")
    p.add_argument("--new", help="capture id (default: the most recent)")
    p.add_argument("--top", type=_positive, default=10, help="rows in each list: symbols, "
                   "venues, added, removed, changed (default: %(default)s)")
    p.add_argument("--lake-root", help=lake)
    p = sub.add_parser("pin", help="pin a week's clean version to a stored capture")
    p.add_argument("--tier", required=True, choices=TIERS, help=f"the week's tier: {tiers}")
    p.add_argument("--week-start", required=True, help=week)
    p.add_argument("--capture", required=True, help="the capture id clean is to hold; it must "
                   "have passed its gates (spine diff and the revision reports name captures)")
    p.add_argument("--reason", required=True, help="why, in words; the ledger keeps it")
    p.add_argument("--lake-root", help=lake)
    p = sub.add_parser("gate-report", help="write a capture's gate report from its ledger event")
    p.add_argument("event", type=Path, help="the capture's accepted/refused ledger event file")
    p.add_argument("output", type=Path, help="the gate report to write (JSON)")
    p = sub.add_parser("gate-summary", help="print and keep a run's gate verdicts")
    p.add_argument("output", type=Path, help="the file to keep the printed lines in")
    p.add_argument("gates", type=Path, nargs="*", help="the run's gate reports")
    p = sub.add_parser("retract", help="move derived files the ledger no longer accounts for "
                       "to quarantine (every snakemake run does this; so does spine repair)")
    p.add_argument("--lake-root", required=True, help="the lake")
    p.add_argument("--fingerprint", help="the ledger state the run planned from "
                   "(spine.lake.verify.held_fingerprint); a ledger changed since is an error")
    p.add_argument("--no-regsho", action="store_true",
                   help="Reg SHO is off in the run's config: its calculations are not kept")
    p = sub.add_parser("revision-index", help="write the HTML index of revisions")
    p.add_argument("output", type=Path, help="the HTML page to write")
    p.add_argument("--revisions", required=True,
                   help="JSON list of [tier, week_start, old, new, outcome, ledger time]")
    p.add_argument("--inputs", nargs="*", default=[], help="the revision reports it links (its "
                   "rule's inputs), recorded in the manifest as what it was made from")
    p = sub.add_parser("contract", help="write the calculation sections of docs/data-contract.md "
                       "from spine/derive/registry.py and the schemas")
    p.add_argument("--check", action="store_true",
                   help="only check they are current (exit 1 if not)")
    p = sub.add_parser("report-index", help="write reports/index.html: every weekly, revision "
                       "and symbol report")
    p.add_argument("output", type=Path, help="the HTML page to write")
    p.add_argument("--listing", required=True,
                   help='JSON {"weekly": [[week_start, {tier: [status, ...]}]], "revisions": '
                        '[[tier, week_start, old, new, outcome, ledger time]], "symbols": '
                        '[[tier, symbol]]}')
    p.add_argument("--inputs", nargs="*", default=[], help="the reports it links (its rule's "
                   "inputs), recorded in the manifest as what it was made from")
    p = sub.add_parser("status", help="what the lake holds, each gap, why, and the fix")
    p.add_argument("--as-of", help="the day to judge from, YYYY-MM-DD (default: as_of of the "
                   "config; empty there means today)")
    p.add_argument("--tier", action="append", choices=TIERS,
                   help=f"{tiers}; repeat for several (default: the configured tiers)")
    p.add_argument("--since", help="the first week to list, its Monday, YYYY-MM-DD (default: "
                   "the lake's first week)")
    p.add_argument("--grace-days", type=_whole, default=3,
                   help="days after publication before a missing week is stale (default: "
                   "%(default)s)")
    p.add_argument("--ask-source", action="store_true",
                   help="ask the source which weeks it has published (FINRA API)")
    p.add_argument("--json", action="store_true",
                   help="print JSON (as_of, lake_root, and each week) instead of text")
    p.add_argument("--first", action="store_true",
                   help="the first week needing an operator as shell variables TIER WEEK STATE "
                   "CHECKS FIX (exit 1 if there is none)")
    p.add_argument("--lake-root", help="the lake (default: lake_root of --configfile)")
    p.add_argument("--configfile", help="the run's config (default: config/config.yaml)")
    p = sub.add_parser("regate", help="decide captures again under the current gate settings")
    p.add_argument("--tier", choices=TIERS, help=f"the week's tier: {tiers} (with --week-start)")
    p.add_argument("--week-start", help=f"{week} (with --tier)")
    p.add_argument("--capture", help="the capture id to decide again (default: the capture "
                   "clean holds, else the latest gated)")
    p.add_argument("--all", action="store_true", help="every week clean holds, configured tiers")
    p.add_argument("--lake-root", help=lake)
    p = sub.add_parser("override", help="let a refused capture through, on record")
    p.add_argument("--tier", required=True, choices=TIERS, help=f"the week's tier: {tiers}")
    p.add_argument("--week-start", required=True, help=week)
    p.add_argument("--check", action="append",
                   help="a failed check to let through (repeat, or separate with commas)")
    p.add_argument("--reason", required=True, help="why, in words; the ledger keeps it")
    p.add_argument("--capture", help="the refused capture id to let through (default: the "
                   "week's latest refused capture)")
    p.add_argument("--revoke", action="store_true", help="take the override back")
    p.add_argument("--lake-root", help=lake)
    p = sub.add_parser("ats-list", help="FINRA's ATS MPIDs (the gates' reference list)")
    p.add_argument("--refresh", action="store_true", help="re-read FINRA's ATS page")
    p.add_argument("--url", default="https://www.finra.org/filing-reporting/otc-transparency/"
                   "ats-equity-firms", help="FINRA's ATS page (default: %(default)s)")
    p.add_argument("--list", help="the list file (default: spine/ingest/reference/ats_mpids.csv)")
    p.add_argument("--learned", action="store_true", help="the ATSs FINRA listed in this lake's "
                   "captures that the list lacked, with the week each was first seen")
    p.add_argument("--lake-root", help=lake)
    p = sub.add_parser("explain", help="what made a lake file: step, code version, config, "
                       "inputs, back to the fetches")
    p.add_argument("path", help="a file of a lake (clean, calc, a report, a raw capture, an "
                   "executed notebook under runs/, ...)")
    p.add_argument("--json", action="store_true", help="print the tree as JSON")
    p = sub.add_parser("verify", help="check the lake against its manifest and ledger")
    p = sub.add_parser("repair", help="rebuild damaged files from raw and the ledger")
    p.add_argument("--backup", help="a backup (folder or URL) to take damaged records from")
    p.add_argument("--refetch", action="store_true",
                   help="download again a damaged raw capture that no backup holds")
    p = sub.add_parser("backup", help="copy what cannot be derived to a folder or object store")
    p.add_argument("dest", help="a folder, file:// or s3:// URL")
    p = sub.add_parser("restore", help="bring a lake back from a backup, then verify")
    p.add_argument("src", help="the folder or URL `spine backup` wrote to")
    for name in ("verify", "repair", "backup", "restore"):
        p = sub.choices[name]
        p.add_argument("--lake-root", help="default: lake_root of --configfile")
        p.add_argument("--configfile", help="the run's config (default config/config.yaml); "
                       "repair and restore run Snakemake with it")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    os.environ.setdefault("SPINE_PRODUCER", f"spine {args.command}")  # the manifest says so
    # deferred: the commands' imports (pandas, pyarrow: 1 s) wait for a parsed command, so that
    # `spine --help` answers at once (tests/unit/test_cli.py pins it)
    from spine.cli import dispatch

    return dispatch.run(args)


def _positive(text: str) -> int:
    """argparse type: a whole number above zero (argparse names the option when refused)."""
    return _whole(text, low=1)


def _whole(text: str, low: int = 0) -> int:
    """argparse type: a whole number, at least `low`."""
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if value < low:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least {low}")
    return value
