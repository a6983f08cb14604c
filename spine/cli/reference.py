"""The commands about what the pipeline reads and writes besides the lake: FINRA's ATS list
(the gates' reference), the calculation sections of docs/data-contract.md, and the FINRA
emulator that stands in for FINRA's API."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from spine import calendar as cal
from spine.cli.common import load_config
from spine.derive import calcs
from spine.emulator import Emulator, Faults
from spine.ingest import ats, ledger
from spine.ingest.sources import SourceError
from spine.vocabulary import SIDES


def ats_list(args: argparse.Namespace) -> int:
    """Show FINRA's ATS MPIDs as the repository holds them; --refresh re-reads FINRA's page."""
    path = Path(args.list) if args.list else ats.LIST
    if args.learned:
        found = ats.learned(ledger.LakeState.read(load_config(args.lake_root)["lake_root"]))
        listed = ats.mpids(path) if path.is_file() else frozenset()
        print(f"{len(found)} ATS(s) FINRA listed in this lake's captures ({SIDES['ATS']['firm']}) "
              "that the reference list lacked when gated" + (":" if found else ""))
        for r in found:
            now = "in the list now" if r["mpid"] in listed else "not in the list yet"
            print(f"  {r['mpid']:<5} {r['name']:<36} first seen {r['tier']} week "
                  f"{r['first_week']} ({r['weeks']} week(s)); {now}")
        return 0
    if args.refresh:
        try:
            done = ats.refresh(args.url, path)
        except SourceError as err:
            print(f"spine ats-list: {err}", file=sys.stderr)
            return 2
        print(f"{path}: {done['rows']} ATS MPIDs ({done['from_page']} from {args.url}, "
              f"{done['kept']} kept from other sources); new: "
              f"{', '.join(done['added']) or 'none'}")
        return 0
    if not path.is_file():
        print(f"spine ats-list: no list file {path}; --list names one that `spine ats-list "
              "--refresh --list FILE` wrote (default: spine/ingest/reference/ats_mpids.csv)",
              file=sys.stderr)
        return 2
    rows = ats.read(path)
    source = json.loads(path.with_name(path.stem + ".source.json").read_text())
    print(f"{path}: {len(rows)} ATS MPIDs, from {source['url']} (retrieved "
          f"{source['retrieved_at']}); refresh: spine ats-list --refresh")
    for r in rows:
        print(f"  {r['mpid']:<5} {r['ats_name']:<36} {r['note'] or ''}")
    return 0


def contract(args: argparse.Namespace) -> int:
    current = calcs.contract(check=args.check)
    if args.check:
        print(f"{calcs.CONTRACT}: " + ("the calculation sections are current" if current else
                                       "out of date with spine/derive/registry.py; run "
                                       "`spine contract`"))
        return 0 if current else 1
    print(f"{calcs.CONTRACT}: " + ("already current" if current else
                                   "calculation sections written"))
    return 0


def emulator(args: argparse.Namespace) -> int:
    """Serve the FINRA emulator on loopback until interrupted."""
    try:
        cal.to_date(args.as_of, "--as-of")
    except ValueError as err:
        print(f"spine emulator: {err}", file=sys.stderr)
        return 2
    faults = Faults(require_token=args.require_token)
    syn = load_config(None)["synthetic"]  # the same restatements the synthetic source publishes
    em = Emulator(as_of=args.as_of, size=args.size, seed=args.seed, port=args.port,
                  faults=faults, revisions=syn.get("revisions") or [],
                  restate=syn.get("restate"))
    try:
        em.start()
    except (OSError, OverflowError) as err:  # in use, not allowed, or not a port
        print(f"spine emulator: cannot listen on 127.0.0.1 port {args.port} ({err}); choose "
              "another with --port (0: any free port)", file=sys.stderr)
        return 2
    print(f"FINRA emulator on {em.base_url} (as of {args.as_of}, {args.size} synthetic data)")
    print("  snakemake --cores 2 --config source=finra_api "
          f"'finra_api={{\"base_url\": \"{em.base_url}\"}}'")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        em.stop()
    return 0
