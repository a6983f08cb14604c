"""Running a parsed command: what is refused before it starts, the function of each command,
and how it ends (a reader gone away, Ctrl-C, a config error: one line, never a traceback)."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path

from spine import config as config_
from spine.cli import lake, ledger, reference, reports
from spine.cli.common import configfile, lake_root, load_config
from spine.config import ConfigError
from spine.lake import LakeBusy, store

COMMANDS = {"import-file": ledger.import_file, "diff": ledger.diff, "pin": ledger.pin,
            "regate": ledger.regate, "override": ledger.override,
            "status": lake.status, "retract": lake.retract, "explain": lake.explain,
            "ats-list": reference.ats_list, "contract": reference.contract,
            "emulator": reference.emulator,
            "gate-report": reports.gate_report, "gate-summary": reports.gate_summary,
            "revision-index": reports.revision_index, "report-index": reports.report_index}
# the lake's files against its manifest and ledger: run by _integrity
INTEGRITY = {"verify": lake.verify, "repair": lake.repair, "backup": lake.backup,
             "restore": lake.restore}
# the commands that read (False) or write (True) a lake: with `lake_store` in the config they
# pull its working copy first, and the writers push it after, holding the store's lock
LAKE_COMMANDS = {"diff": False, "status": False, "verify": False, "backup": False,
                 "import-file": True, "pin": True, "regate": True, "override": True,
                 "retract": True, "repair": True, "restore": True}


def run(args: argparse.Namespace) -> int:
    """Run the parsed command; its exit status."""
    try:
        code = _run(args)
        sys.stdout.flush()  # here, so that a reader gone away is met inside the try
    except BrokenPipeError:  # spine diff | head: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # for the exit's flush
        return 141  # 128 + SIGPIPE: what the shell reports for any command cut off this way
    except KeyboardInterrupt:
        print(f"spine {args.command}: interrupted", file=sys.stderr)
        return 130
    except ConfigError as err:  # the config file, or a value given for one of its keys
        print(f"spine {args.command}: {err}", file=sys.stderr)
        return 2
    return code


def _run(args: argparse.Namespace) -> int:
    config = getattr(args, "configfile", None)
    if config and not Path(config).is_file():
        print(f"spine {args.command}: no config file {config}; --configfile names the run's "
              "config (default: config/config.yaml)", file=sys.stderr)
        return 2
    try:
        with _store(args):
            refused = _refused(args)
            if refused:
                print(f"spine {args.command}: {refused}", file=sys.stderr)
                return 2
            if args.command in INTEGRITY:
                return _integrity(args)
            return COMMANDS[args.command](args)
    except (LakeBusy, store.StoreError) as err:  # the lake store's lock or working copy
        print(f"spine {args.command}: {err}", file=sys.stderr)
        return 2


def _store(args: argparse.Namespace):
    """The lake store's session for a command that reads or writes the lake (spine/lake/store.py);
    nothing for the others, or when the config names no `lake_store`."""
    if args.command not in LAKE_COMMANDS or store.held_by_parent():
        return contextlib.nullcontext()
    overrides = {"lake_root": args.lake_root} if getattr(args, "lake_root", None) else {}
    cfg = config_.load(configfile(args), **overrides)
    return store.session(cfg, write=LAKE_COMMANDS[args.command])


def _refused(args: argparse.Namespace) -> str | None:
    """What is wrong with the command's lake before it starts: a lake that is not there (the
    commands that change or compare what a lake holds never create one)."""
    if args.command in ("diff", "pin", "regate", "override"):
        root = load_config(args.lake_root)["lake_root"]
        if not Path(root).is_dir():
            return (f"no lake at {root} (lake_root of config/config.yaml, or --lake-root); name "
                    "the lake the pipeline wrote with --lake-root")
    return None


def _integrity(args: argparse.Namespace) -> int:
    """verify, repair, backup, restore: a lake that is not there is named, never created."""
    if args.command != "restore" and not Path(lake_root(args)).is_dir():
        where = (f"no lake at {lake_root(args)} (lake_root of the config, or --lake-root); "
                 "to bring one back from a backup: spine restore SRC")
        if args.command == "verify":  # a first run: nothing written yet
            print(f"{where}. Nothing to verify.")
            return 0
        print(f"spine {args.command}: {where}", file=sys.stderr)
        return 2
    try:
        return INTEGRITY[args.command](args)
    except BrokenPipeError:  # not the lake's: the reader of the output went away (run)
        raise
    except (LakeBusy, FileNotFoundError, ValueError, OSError) as err:
        print(f"spine {args.command}: {err}", file=sys.stderr)
        return 2
