"""The commands about the lake as a whole: what it holds and what is missing (status), its
files against the manifest and the ledger (verify, repair), what made a file (explain), its
backups (backup, restore), and the run's sweep of derived files the ledger no longer accounts
for (retract)."""

from __future__ import annotations

import argparse
import json
import sys
import time

from spine import config as config_
from spine import status as status_
from spine.cli.common import configfile, lake_root, regsho_enabled
from spine.lake import backup as backup_
from spine.lake import provenance
from spine.lake import repair as repair_
from spine.lake import verify as verify_


def status(args: argparse.Namespace) -> int:
    """Every week the calendar says should be in the lake: present, or why not and the fix."""
    overrides = {k: v for k, v in {"lake_root": args.lake_root, "as_of": args.as_of}.items() if v}
    try:
        cfg = config_.load(configfile(args), **overrides)
        tiers, absent = status_.scope(cfg, args.tier)
        published = status_.source_weeks(cfg, tiers) if args.ask_source else None
        entries = status_.status(cfg, cfg["as_of"], tiers, args.since, args.grace_days,
                                 published)
    except (config_.ConfigError, ValueError, RuntimeError) as err:  # RuntimeError: SourceError
        print(f"spine status: {err}", file=sys.stderr)
        return 2
    if args.first:
        line = status_.first(entries)
        if line is None:  # said where a person reads it; `eval "$(...)"` gets nothing to run
            in_force = [f"{e.tier} {e.week_start} {e.state}" for e in entries
                        if e.state in ("overridden", "pinned")]
            print(f"spine status --first: nothing needs an operator in {cfg['lake_root']} as "
                  f"of {cfg['as_of']}" + (f" (in force: {'; '.join(in_force)})"
                                          if in_force else ""), file=sys.stderr)
            return 1
        print(line, end="")
        return 0
    if args.json:
        print(json.dumps({"as_of": cfg["as_of"], "lake_root": cfg["lake_root"],
                          "tiers": tiers, "never_fetched": absent,
                          "weeks": status_.as_json(entries)}, indent=1))
    else:
        print(status_.render(entries, cfg["as_of"], absent, cfg["lake_root"]), end="")
    return 1 if any(e.needs_operator for e in entries) else 0


def verify(args: argparse.Namespace) -> int:
    """Check every file of the lake against the manifest and the ledger; exit 1 on damage."""
    root = lake_root(args)
    started = time.monotonic()
    problems = verify_.verify(root, regsho_enabled(args))
    files = len(verify_.files_on_disk(root))
    for p in problems:
        print(p.line())
    took = time.monotonic() - started
    if problems:
        print(f"{len(problems):,} problem(s) in {files:,} files of {root} ({took:.1f} s); "
              "workflows/incident/DATABASE_RECOVERY.md says what each fix does", file=sys.stderr)
        return 1
    print(f"{root}: {files:,} files verified against the manifest and the ledger, no problem "
          f"({took:.1f} s)")
    return 0


def repair(args: argparse.Namespace) -> int:
    """Rebuild what is damaged from raw and the ledger; restore or re-fetch damaged records."""
    root = lake_root(args)
    left = repair_.repair(root, backup=args.backup, refetch=args.refetch,
                          configfile=args.configfile, regsho=regsho_enabled(args))
    return _outcome(root, left, "repair")


def backup(args: argparse.Namespace) -> int:
    """Copy what cannot be derived to a folder or object store, incrementally."""
    backup_.backup(lake_root(args), args.dest)
    return 0


def restore(args: argparse.Namespace) -> int:
    """Bring the records back from a backup, rebuild the rest and verify."""
    root = lake_root(args)
    left = repair_.restore(args.src, root, configfile=args.configfile,
                           regsho=regsho_enabled(args))
    return _outcome(root, left, "restore")


def _outcome(root: str, left: list, command: str) -> int:
    if left:
        for p in left:
            print(p.line())
        print(f"spine {command}: {len(left)} problem(s) remain in {root}", file=sys.stderr)
        return 1
    print(f"spine {command}: {root} verifies: every file matches the manifest and the ledger")
    return 0


def retract(args: argparse.Namespace) -> int:
    """The run's sweep (rule `retract`): the lake's lock is the run's, so none is taken here."""
    moved = repair_.retract(args.lake_root, not args.no_regsho, args.fingerprint)
    print(f"{len(moved)} derived file(s) the ledger no longer accounts for moved to quarantine"
          if moved else "every derived file is accounted for by the ledger")
    return 0


def explain(args: argparse.Namespace) -> int:
    """What made a file: its step, code version, lock hash, config and inputs, back to the
    fetches (spine/lake/provenance.py)."""
    try:
        tree = provenance.explain(args.path)
    except provenance.NotInLake as err:
        print(f"spine explain: {err}", file=sys.stderr)
        return 2
    print(json.dumps(tree, indent=1, sort_keys=True) if args.json else provenance.render(tree),
          end="\n" if args.json else "")
    return 0
