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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="spine", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("render-html", help="render an executed notebook to an offline HTML report")
    p.add_argument("notebook", type=Path)
    p.add_argument("html", type=Path)
    p = sub.add_parser("gate-summary", help="summarise gate reports; exit 1 if any failed")
    p.add_argument("--output", type=Path, required=True)
    p.add_argument("gates", type=Path, nargs="*")
    args = parser.parse_args(argv)
    if args.command == "render-html":
        render_html(args.notebook, args.html)
        return 0
    if args.command == "gate-summary":
        return gate_summary(args.gates, args.output)
    return 2


if __name__ == "__main__":
    sys.exit(main())
