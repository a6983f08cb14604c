"""`spine` command line: small operator tools the Snakefile and runbooks call."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from spine import lake


def render_html(notebook: Path, html: Path) -> None:
    """Executed notebook -> a self-contained HTML report: input cells hidden, plots embedded as
    PNG data, and no script loaded from the network, so the file opens offline."""
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab")
    exporter.exclude_input = True
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    exporter.embed_images = True
    exporter.mathjax_url = ""
    exporter.require_js_url = ""
    exporter.widget_renderer_url = ""
    body, _ = exporter.from_notebook_node(nbformat.read(notebook, as_version=4))
    lake.write_file_atomic(html, body.encode())


def gate_summary(gate_files: list[Path], output: Path) -> int:
    """Print one line per gated partition; exit 1 if any failed (the run then ends non-zero)."""
    lines, failed = [], 0
    for path in sorted(gate_files):
        report = lake.read_json(path)
        bad = [c for c in report["checks"] if c["status"] == "FAIL"]
        failed += bool(bad)
        detail = "; ".join(f"{c['check']}: measured {c['measured']}, limit {c['limit']} "
                           f"({c['message']})" for c in bad)
        lines.append(f"{report['status']:4}  {report['tier']:4}  {report['week_start']}  "
                     f"capture {report['capture_id']}" + (f"  {detail}" if detail else ""))
    text = "\n".join(lines) + "\n"
    print(f"Gate summary: {len(gate_files) - failed} passed, {failed} failed")
    print(text, end="")
    if failed:
        print(f"{failed} week(s) failed a gate and were not advanced to clean. "
              "Their gate reports are under the lake's gates/ folder; see "
              "workflows/operational/WEEKLY_DATA_UPDATE.md (Rollback).", file=sys.stderr)
        return 1
    lake.write_file_atomic(output, text.encode())
    return 0


def import_file(args: argparse.Namespace) -> int:
    """Import FINRA files downloaded by hand as one capture of (tier, week), through the gates."""
    from spine import pipeline
    from spine.sources import SourceError

    cfg = _config(args.lake_root)
    try:
        receipt, report = pipeline.import_files(cfg, args.paths, args.tier, args.week_start,
                                                args.summary_type)
    except (SourceError, ValueError) as err:
        print(f"spine import-file: {err}", file=sys.stderr)
        print("Nothing was stored.", file=sys.stderr)
        return 2
    state = "new capture" if receipt["new_capture"] else "identical to a stored capture"
    print(f"captured {receipt['rows']} rows of {args.tier} week {receipt['week_start']} as "
          f"{receipt['capture_id']} ({state}) in {cfg['lake_root']}/{receipt['file']}")
    print(f"gate: {report.status}")
    for check in report.checks:
        print(f"  {check.status:4}  {check.check}: {check.message}")
    if report.status != "PASS":
        print("The week was not advanced to clean; see "
              "workflows/operational/WEEKLY_DATA_UPDATE.md (Rollback).", file=sys.stderr)
        return 1
    print("clean and calculations updated; render reports with: snakemake --cores 2")
    return 0


def emulator(args: argparse.Namespace) -> int:
    """Serve the FINRA emulator on loopback until interrupted."""
    import time

    from spine.emulator import Emulator, Faults

    faults = Faults(require_token=args.require_token)
    syn = _config(None)["synthetic"]  # the same restatements the synthetic source publishes
    em = Emulator(as_of=args.as_of, size=args.size, seed=args.seed, port=args.port,
                  faults=faults, revisions=syn.get("revisions") or [],
                  restate=syn.get("restate")).start()
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
    from spine import revisions

    root = _config(args.lake_root)["lake_root"]
    try:
        d = revisions.diff(root, args.tier, args.week_start, args.old, args.new)
    except (ValueError, FileNotFoundError) as err:
        print(f"spine diff: {err}", file=sys.stderr)
        return 2
    print(d.headline())
    print(f"{args.tier} week {d.week_start}: capture {d.old_capture} -> {d.new_capture}\n")
    with pd_options():
        print(d.totals().to_string(index=False), "\n")
        print("largest symbol changes:\n" + d.largest("symbol", args.top).to_string(index=False))
        print("\nlargest venue changes:\n" + d.largest("venue", args.top).to_string(index=False))
        for name in ("added", "removed", "changed"):
            rows = d.shown(name, args.top)
            if len(rows):
                print(f"\n{name} (first {len(rows)}):\n" + rows.to_string(index=False))
    return 0


def pd_options():
    import pandas as pd

    return pd.option_context("display.width", 200, "display.max_columns", 20,
                             "display.max_colwidth", 40)


def pin(args: argparse.Namespace) -> int:
    """Pin clean to a stored capture that passed its gates (recorded, reversible)."""
    from spine import pipeline

    cfg = _config(args.lake_root)
    try:
        previous = pipeline.pin(cfg, args.tier, args.week_start, args.capture, args.reason)
    except (ValueError, FileNotFoundError) as err:
        print(f"spine pin: {err}", file=sys.stderr)
        return 2
    print(f"{args.tier} week {args.week_start}: clean pinned to {args.capture} (was "
          f"{previous or 'empty'}). Undo: spine pin --tier {args.tier} --week-start "
          f"{args.week_start} --capture {previous} --reason '...'. Then run snakemake --cores 2 "
          "reports to recompute what depends on it.")
    return 0


def revision_index(lake_root: str, output: Path) -> None:
    """An HTML page listing every revision, newest first, with links to the reports."""
    import html

    from spine import ledger, targets

    ev = ledger.events(lake_root, lake.DATASET)
    rows = []
    for tier, week, old, new in targets.recorded_revisions(lake_root):
        hit = ev[(ev["capture_id"] == new) & (ev["previous_capture"] == old)
                 & ev["event"].isin(["accepted", "refused"])].iloc[-1]
        link = f"tier={tier}/week_start={week}/{old}_to_{new}.html"
        rows.append((hit["recorded_at"], tier, week, old, new, hit["event"], link))
    rows.sort(key=lambda r: r[0], reverse=True)
    body = "".join(
        f"<tr><td>{at:%Y-%m-%d %H:%M} UTC</td><td>{tier}</td><td>{week}</td>"
        f"<td><code>{old}</code> &rarr; <code>{new}</code></td><td>{event}</td>"
        f'<td><a href="{html.escape(link)}">report</a></td></tr>'
        for at, tier, week, old, new, event, link in rows)
    page = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>Market Spine revisions"
            "</title><style>body{font-family:sans-serif;margin:2em}td,th{padding:4px 10px;"
            "border-bottom:1px solid #ddd;text-align:left}</style></head><body>"
            "<h1>FINRA OTC Transparency revisions</h1>"
            f"<p>{len(rows)} revision(s) recorded in the capture ledger, newest first.</p>"
            "<table><tr><th>recorded</th><th>tier</th><th>week</th><th>captures</th>"
            f"<th>outcome</th><th></th></tr>{body}</table></body></html>")
    lake.write_file_atomic(output, page.encode())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="spine", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("render-html", help="render an executed notebook to an offline HTML report")
    p.add_argument("notebook", type=Path)
    p.add_argument("html", type=Path)
    p = sub.add_parser("gate-summary", help="summarise gate reports; exit 1 if any failed")
    p.add_argument("--output", type=Path, required=True)
    p.add_argument("gates", type=Path, nargs="*")
    p = sub.add_parser("import-file", help="import downloaded FINRA files as a capture")
    p.add_argument("paths", nargs="+", help="download files (ATS and/or non-ATS) or API exports")
    p.add_argument("--tier", required=True, choices=["T1", "T2", "OTCE"])
    p.add_argument("--week-start", required=True, help="the week's Monday, YYYY-MM-DD")
    p.add_argument("--summary-type", choices=["ATS_W_SMBL_FIRM", "OTC_W_SMBL_FIRM"],
                   help="for a download file whose name does not say ATS or non-ATS")
    p.add_argument("--lake-root", help="default: lake_root in config/config.yaml")
    p = sub.add_parser("emulator", help="serve the FINRA emulator on loopback")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--as-of", required=True)
    p.add_argument("--size", choices=["small", "full"], default="small")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--require-token", action="store_true")
    p = sub.add_parser("diff", help="what a revision changed, between two captures")
    p.add_argument("--tier", required=True, choices=["T1", "T2", "OTCE"])
    p.add_argument("--week-start", required=True)
    p.add_argument("--old", help="capture id (default: the second most recent)")
    p.add_argument("--new", help="capture id (default: the most recent)")
    p.add_argument("--top", type=int, default=10)
    p.add_argument("--lake-root")
    p = sub.add_parser("pin", help="pin a week's clean version to a stored capture")
    p.add_argument("--tier", required=True, choices=["T1", "T2", "OTCE"])
    p.add_argument("--week-start", required=True)
    p.add_argument("--capture", required=True)
    p.add_argument("--reason", required=True)
    p.add_argument("--lake-root")
    p = sub.add_parser("revision-index", help="write the HTML index of revisions")
    p.add_argument("--output", type=Path, required=True,
                   help="<lake_root>/reports/revisions/index.html")
    args = parser.parse_args(argv)
    if args.command == "diff":
        return diff(args)
    if args.command == "pin":
        return pin(args)
    if args.command == "revision-index":
        depth = len(Path(lake.LAYOUT["revision_index"]).parts)
        revision_index(str(args.output.resolve().parents[depth - 1]), args.output)
        return 0
    if args.command == "import-file":
        return import_file(args)
    if args.command == "emulator":
        return emulator(args)
    if args.command == "render-html":
        render_html(args.notebook, args.html)
        return 0
    if args.command == "gate-summary":
        return gate_summary(args.gates, args.output)
    return 2


if __name__ == "__main__":
    sys.exit(main())
