"""The commands the Snakefile's small rules run to write a run's pages: a capture's gate
report, the run's gate summary, the index of revisions and the index of every report."""

from __future__ import annotations

import argparse
import json

from spine import lake
from spine.ingest import decide
from spine.lake import stamp
from spine.reports import index


def _made_from(paths: list) -> dict[str, str]:
    """What the files a command writes are made from, for the manifest (its lake's files)."""
    root = lake.root_of(paths[0]) if paths else None
    return lake.made_from(root, *paths) if root is not None else {}


def gate_report(args: argparse.Namespace) -> int:
    with stamp.reading(_made_from([args.event])):  # the verdict event it is written from
        decide.write_gate_report(args.event, args.output)
    return 0


def gate_summary(args: argparse.Namespace) -> int:
    index.gate_summary([str(p) for p in args.gates], str(args.output))  # a record: no inputs
    return 0


def revision_index(args: argparse.Namespace) -> int:
    with stamp.reading(_made_from(args.inputs)):  # the revision reports it links
        index.revision_index(json.loads(args.revisions), str(args.output))
    return 0


def report_index(args: argparse.Namespace) -> int:
    listing = json.loads(args.listing)
    with stamp.reading(_made_from(args.inputs)):  # the reports it links
        index.report_index(listing["weekly"], listing["revisions"], listing["symbols"],
                           str(args.output))
    return 0
