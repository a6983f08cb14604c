"""`spine` command line: small operator tools the Snakefile and runbooks call."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def import_file(args: argparse.Namespace) -> int:
    """Import FINRA files downloaded by hand as one capture of (tier, week), through the gates."""
    from spine import pipeline
    from spine.ingest.sources import SourceError

    from spine.lake.integrity import LakeBusy, lake_lock

    cfg = _config(args.lake_root)
    try:
        with lake_lock(cfg["lake_root"], wait=600):  # one writer of the lake at a time
            receipt, report = pipeline.import_files(cfg, args.paths, args.tier,
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
          f"{_reports(cfg['lake_root'])}")
    return 0


def emulator(args: argparse.Namespace) -> int:
    """Serve the FINRA emulator on loopback until interrupted."""
    import time

    from spine import calendar as cal
    from spine.emulator import Emulator, Faults

    try:
        cal.to_date(args.as_of, "--as-of")
    except ValueError as err:
        print(f"spine emulator: {err}", file=sys.stderr)
        return 2
    faults = Faults(require_token=args.require_token)
    syn = _config(None)["synthetic"]  # the same restatements the synthetic source publishes
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
    print(f"  snakemake --cores 2 --config source=finra_api 'finra_api={{\"base_url\": \"{em.base_url}\"}}'")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        em.stop()
    return 0


def _config(lake_root: str | None) -> dict:
    from spine import config as config_

    return config_.load(lake_root=lake_root) if lake_root else config_.load()


def diff(args: argparse.Namespace) -> int:
    """Print what a revision changed; the first line counts rows."""
    from spine.reports import revision as revisions

    root = _config(args.lake_root)["lake_root"]
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


def pin(args: argparse.Namespace) -> int:
    """Pin clean to a stored capture that passed its gates (recorded, reversible)."""
    from spine import pipeline
    from spine.lake.integrity import LakeBusy, lake_lock
    from spine.status import commands as status_commands

    cfg = _config(args.lake_root)
    try:
        with lake_lock(cfg["lake_root"], wait=600):
            previous = pipeline.pin(cfg, args.tier, args.week_start, args.capture, args.reason)
    except (ValueError, FileNotFoundError, LakeBusy) as err:
        print(f"spine pin: {err}", file=sys.stderr)
        return 2
    print(f"{args.tier} week {args.week_start}: clean pinned to {args.capture} (was "
          f"{previous or 'empty'}). Undo: spine pin --tier {args.tier} --week-start "
          f"{args.week_start} --capture {previous} --reason '...'"
          f"{status_commands(cfg['lake_root'])[1]}. Then run {_reports(cfg['lake_root'])} "
          "to recompute what depends on it.")
    return 0


def _root(args: argparse.Namespace) -> str:
    from spine import config as config_

    if args.lake_root:
        return args.lake_root
    here = Path("config/config.yaml")  # the repository this is run from, as snakemake does
    path = getattr(args, "configfile", None) or (here if here.exists() else config_.CONFIG_PATH)
    return config_.load(path)["lake_root"]


def _reports(root: str) -> str:
    """The command that derives what the ledger now holds, for this lake."""
    from spine.status import commands

    snake = commands(root)[0]
    return "snakemake --cores 2 reports" + (f" --config{snake}" if snake else "")


def _regsho(args: argparse.Namespace) -> bool:
    """Whether the run's config has Reg SHO on (its calculations are then part of the lake)."""
    from spine import config as config_

    here = Path("config/config.yaml")
    path = getattr(args, "configfile", None) or (here if here.exists() else config_.CONFIG_PATH)
    return bool(config_.load(path)["regsho"]["enabled"])


def verify(args: argparse.Namespace) -> int:
    """Check every file of the lake against the manifest and the ledger; exit 1 on damage."""
    from spine.lake import integrity

    root = _root(args)
    started = time.monotonic()
    problems = integrity.verify(root, _regsho(args))
    files = len(integrity.files_on_disk(root))
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
    from spine.lake import integrity

    root = _root(args)
    left = integrity.repair(root, backup=args.backup, refetch=args.refetch,
                            configfile=args.configfile, regsho=_regsho(args))
    return _outcome(root, left, "repair")


def _outcome(root: str, left: list, command: str) -> int:
    if left:
        for p in left:
            print(p.line())
        print(f"spine {command}: {len(left)} problem(s) remain in {root}", file=sys.stderr)
        return 1
    print(f"spine {command}: {root} verifies: every file matches the manifest and the ledger")
    return 0


def backup(args: argparse.Namespace) -> int:
    """Copy what cannot be derived to a folder or object store, incrementally."""
    from spine.lake import integrity

    integrity.backup(_root(args), args.dest)
    return 0


def restore(args: argparse.Namespace) -> int:
    """Bring the records back from a backup, rebuild the rest and verify."""
    from spine.lake import integrity

    root = _root(args)
    left = integrity.restore(args.src, root, configfile=args.configfile, regsho=_regsho(args))
    return _outcome(root, left, "restore")


def regate(args: argparse.Namespace) -> int:
    """Decide captures again under the current gate settings; verdicts go to the ledger."""
    from spine import pipeline, plan
    from spine.lake.integrity import LakeBusy, lake_lock

    cfg = _config(args.lake_root)
    root = cfg["lake_root"]
    if args.all:
        parts = [(t, w) for t, w in plan.LakeState.read(root).accepted() if t in cfg["tiers"]]
    elif args.tier and args.week_start:
        parts = [(args.tier, args.week_start)]
    else:
        print("spine regate: give --tier and --week-start, or --all", file=sys.stderr)
        return 2
    changed = 0
    try:
        with lake_lock(root, wait=600):
            for tier, week in parts:
                before = pipeline.partition_state(root, tier, week).held
                held, report = pipeline.regate(cfg, tier, week, args.capture)
                failed = ", ".join(c.check for c in report.failures)
                changed += held != before
                print(f"{report.status:4}  {tier:4}  {week}  capture {report.capture_id}"
                      + (f"  failed: {failed}" if failed else "")
                      + (f"  -> clean now holds {held or 'nothing'}" if held != before else ""))
    except (ValueError, FileNotFoundError, LakeBusy) as err:
        print(f"spine regate: {err}", file=sys.stderr)
        return 2
    print(f"{len(parts):,} capture(s) decided again, {changed:,} week(s) changed what clean "
          f"holds. Recorded in the ledger; then: {_reports(root)}")
    return 0


def override(args: argparse.Namespace) -> int:
    """Let a refused capture through (or take that back), on record."""
    from spine import pipeline
    from spine.lake.integrity import LakeBusy, lake_lock

    cfg = _config(args.lake_root)
    if not args.revoke and not args.check:
        print("spine override: name the failed check(s) you let through with --check",
              file=sys.stderr)
        return 2
    try:
        with lake_lock(cfg["lake_root"], wait=600):
            checks = [c.strip() for arg in args.check or [] for c in arg.split(",") if c.strip()]
            held = pipeline.override(cfg, args.tier, args.week_start, checks,
                                     args.reason, args.capture, revoke=args.revoke)
    except (ValueError, FileNotFoundError, LakeBusy) as err:
        print(f"spine override: {err}", file=sys.stderr)
        return 2
    what = "override revoked" if args.revoke else "overridden"
    print(f"{args.tier} week {args.week_start}: {what}; clean holds {held or 'nothing'}. "
          f"Recorded in the ledger; then: {_reports(cfg['lake_root'])}")
    return 0


def status(args: argparse.Namespace) -> int:
    """Every week the calendar says should be in the lake: present, or why not and the fix."""
    import json

    from spine import config as config_
    from spine import status as status_

    here = Path("config/config.yaml")
    path = args.configfile or (here if here.exists() else config_.CONFIG_PATH)
    overrides = {k: v for k, v in {"lake_root": args.lake_root, "as_of": args.as_of}.items() if v}
    try:
        cfg = config_.load(path, **overrides)
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


def ats_list(args: argparse.Namespace) -> int:
    """Show FINRA's ATS MPIDs as the repository holds them; --refresh re-reads FINRA's page."""
    import json

    from spine.ingest import ats
    from spine.ingest.sources import SourceError

    path = Path(args.list) if args.list else ats.LIST
    if args.learned:
        found = ats.learned(_config(args.lake_root)["lake_root"])
        listed = ats.mpids(path) if path.is_file() else frozenset()
        print(f"{len(found)} ATS(s) FINRA listed in this lake's captures (ATS_W_FIRM) that the "
              "reference list lacked when gated" + (":" if found else ""))
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
              f"{done['kept']} kept from other sources); new: {', '.join(done['added']) or 'none'}")
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


def parser() -> argparse.ArgumentParser:
    """The command line, built without running a command (the tests read every option's help)."""
    from spine.plan import TIERS

    tiers = f"{', '.join(TIERS[:-1])} or {TIERS[-1]}"
    week = "the week's Monday, YYYY-MM-DD"
    lake = "the lake (default: lake_root of config/config.yaml)"
    parser = argparse.ArgumentParser(prog="spine", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                help="spine COMMAND --help says what it takes")
    p = sub.add_parser("import-file", help="import downloaded FINRA files as a capture")
    p.add_argument("paths", nargs="+", help="download files (ATS and/or non-ATS) or API exports")
    p.add_argument("--tier", required=True, choices=TIERS, help=f"the files' tier: {tiers}")
    p.add_argument("--week-start", required=True, help=week)
    p.add_argument("--summary-type", choices=["ATS_W_SMBL_FIRM", "OTC_W_SMBL_FIRM"],
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
                   "detail rows: ~72k T1, ~168k T2, ~24k OTCE; with FINRA's aggregates a full "
                   "week is about 75k T1, 192k T2, 39k OTCE rows) (default: %(default)s)")
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
                   "(spine.lake.integrity.held_fingerprint); a ledger changed since is an error")
    p.add_argument("--no-regsho", action="store_true",
                   help="Reg SHO is off in the run's config: its calculations are not kept")
    p = sub.add_parser("revision-index", help="write the HTML index of revisions")
    p.add_argument("output", type=Path, help="the HTML page to write")
    p.add_argument("--revisions", required=True,
                   help="JSON list of [tier, week_start, old, new, outcome, ledger time]")
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
    from spine.config import ConfigError

    args = parser().parse_args(argv)
    os.environ.setdefault("SPINE_PRODUCER", f"spine {args.command}")  # the manifest says so
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


def _run(args: argparse.Namespace) -> int:
    refused = _refused(args)
    if refused:
        print(f"spine {args.command}: {refused}", file=sys.stderr)
        return 2
    if args.command in ("verify", "repair", "backup", "restore"):
        return _integrity(args)
    return {"import-file": import_file, "emulator": emulator, "diff": diff, "pin": pin,
            "gate-report": gate_report, "gate-summary": gate_summary, "retract": retract,
            "revision-index": revision_index, "report-index": report_index, "contract": contract, "ats-list": ats_list, "regate": regate,
            "status": status, "override": override}[args.command](args)


def _refused(args: argparse.Namespace) -> str | None:
    """What is wrong with the command's files before it starts: a config that is not there, or
    a lake that is not (the commands that change or compare what a lake holds never create one)."""
    configfile = getattr(args, "configfile", None)
    if configfile and not Path(configfile).is_file():
        return (f"no config file {configfile}; --configfile names the run's config (default: "
                "config/config.yaml)")
    if args.command in ("diff", "pin", "regate", "override"):
        root = _config(args.lake_root)["lake_root"]
        if not Path(root).is_dir():
            return (f"no lake at {root} (lake_root of config/config.yaml, or --lake-root); name "
                    "the lake the pipeline wrote with --lake-root")
    return None


def _integrity(args: argparse.Namespace) -> int:
    """verify, repair, backup, restore: a lake that is not there is named, never created."""
    from spine.lake.integrity import LakeBusy

    if args.command != "restore" and not Path(_root(args)).is_dir():
        where = (f"no lake at {_root(args)} (lake_root of the config, or --lake-root); "
                 "to bring one back from a backup: spine restore SRC")
        if args.command == "verify":  # a first run: nothing written yet
            print(f"{where}. Nothing to verify.")
            return 0
        print(f"spine {args.command}: {where}", file=sys.stderr)
        return 2
    command = {"verify": verify, "repair": repair, "backup": backup, "restore": restore}
    try:
        return command[args.command](args)
    except BrokenPipeError:  # not the lake's: the reader of the output went away (main)
        raise
    except (LakeBusy, FileNotFoundError, ValueError, OSError) as err:
        print(f"spine {args.command}: {err}", file=sys.stderr)
        return 2


def gate_report(args: argparse.Namespace) -> int:
    from spine.ingest import ledger

    ledger.write_gate_report(args.event, args.output)
    return 0


def retract(args: argparse.Namespace) -> int:
    """The run's sweep (rule `retract`): the lake's lock is the run's, so none is taken here."""
    from spine.lake import integrity

    moved = integrity.retract(args.lake_root, not args.no_regsho, args.fingerprint)
    print(f"{len(moved)} derived file(s) the ledger no longer accounts for moved to quarantine"
          if moved else "every derived file is accounted for by the ledger")
    return 0


def gate_summary(args: argparse.Namespace) -> int:
    from spine.reports import report

    report.gate_summary([str(p) for p in args.gates], str(args.output))
    return 0


def contract(args: argparse.Namespace) -> int:
    from spine.derive import calcs

    current = calcs.contract(check=args.check)
    if args.check:
        print(f"{calcs.CONTRACT}: " + ("the calculation sections are current" if current else
                                       "out of date with spine/derive/registry.py; run `spine contract`"))
        return 0 if current else 1
    print(f"{calcs.CONTRACT}: " + ("already current" if current else
                                   "calculation sections written"))
    return 0


def report_index(args: argparse.Namespace) -> int:
    import json

    from spine.reports import report

    listing = json.loads(args.listing)
    report.report_index(listing["weekly"], listing["revisions"], listing["symbols"],
                        str(args.output))
    return 0


def revision_index(args: argparse.Namespace) -> int:
    import json

    from spine.reports import report

    report.revision_index(json.loads(args.revisions), str(args.output))
    return 0


if __name__ == "__main__":  # as a Snakemake job: run by the run's warm server (spine/warm.py)
    from spine import warm

    sys.exit(warm.run("spine.cli", sys.argv[1:]))
