"""The pages that list the reports: reports/index.html (`report_index`, every weekly, revision
and symbol report with each week's status per tier) and reports/revisions/index.html
(`revision_index`); and the run's gate summary (`gate_summary`)."""

from __future__ import annotations

import datetime as dt
import html
from pathlib import Path

from spine import lake
from spine.vocabulary import TIERS


# A tier-week's status in the report index, as `index_listing` (rules/common.smk) derives it
# from the ledger's folded state (spine.ingest.ledger.PartitionState); a week can have several.
INDEX_STATUS = {
    "accepted": "clean holds a capture that passed its gates",
    "held back": "refused by a gate; no version of the week is accepted",
    "revision held back": "a newer capture was refused by a gate; clean keeps the earlier one",
    "overridden": "clean holds a refused capture let through by <code>spine override</code>",
    "pinned": "clean holds the capture <code>spine pin</code> set",
    "restated": "a revision of the week was accepted or let through (every revision of the "
                "week is linked)",
}
ATTENTION = {"held back", "revision held back", "overridden", "pinned"}


def report_index(weekly: list, revisions: list[list[str]], symbols: list[list[str]],
                 output: str) -> None:
    """reports/index.html: every weekly report (newest first) with each tier's status that
    week (INDEX_STATUS) and links to the week's revision reports, every revision report and
    every symbol report, linked relative to the index. `weekly`: [week_start, {tier:
    [status, ...]}] per week (a bare week_start: no statuses known)."""
    def table(head: list[str], rows: list[list[str]]) -> str:
        if not rows:
            return "<p>None yet.</p>"
        return ("<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"
                + "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
                + "</table>")

    def link(href: str, text: str) -> str:
        return f'<a href="{html.escape(href)}">{html.escape(text)}</a>'

    def status(words: list[str]) -> str:
        return ", ".join(f"<b>{w}</b>" if w in ATTENTION else html.escape(w)
                         for w in words) or "-"

    listed = sorted(([w, {}] if isinstance(w, str) else w for w in weekly),
                    key=lambda e: e[0], reverse=True)
    tiers = [t for t in TIERS if any(t in statuses for _, statuses in listed)]
    by_week: dict[str, list[str]] = {}
    for tier, w, old, new, event, _ in sorted(revisions, key=lambda r: (r[5], r[0])):
        by_week.setdefault(w, []).append(link(
            f"revisions/tier={tier}/week_start={w}/{old}_to_{new}.html",
            f"{tier} {old[:8]} to {new[:8]} ({event})"))
    weeks = [[link(f"weekly/week_start={w}.html", f"week of {w}")]
             + [status(statuses.get(t, [])) for t in tiers] + [", ".join(by_week.get(w, []))]
             for w, statuses in listed]
    legend = ("<p>Each tier's status that week:</p><ul>" + "".join(
        f"<li><b>{k}</b>: {v}</li>" if k in ATTENTION else f"<li>{k}: {v}</li>"
        for k, v in INDEX_STATUS.items()) + "</ul>") if tiers else ""
    revs = [[html.escape(w), tier, f"<code>{old}</code> &rarr; <code>{new}</code>", event,
             link(f"revisions/tier={tier}/week_start={w}/{old}_to_{new}.html", "report")]
            for tier, w, old, new, event, _ in sorted(revisions, key=lambda r: r[5],
                                                      reverse=True)]
    syms = [[tier, link(f"symbols/tier={tier}/symbol={sym}.html", sym)]
            for tier, sym in sorted(symbols)]
    page = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>Market Spine reports"
            "</title><style>body{font-family:sans-serif;margin:2em}td,th{padding:4px 10px;"
            "border-bottom:1px solid #ddd;text-align:left}</style></head><body>"
            "<h1>Market Spine: FINRA OTC Transparency reports</h1>"
            f"<h2>Weekly reports ({len(weeks)})</h2>"
            f"{table(['week', *tiers, 'revisions'], weeks)}"
            f"{legend}"
            f"<h2>Revisions ({len(revs)})</h2>"
            f"{table(['week', 'tier', 'captures', 'outcome', ''], revs)}"
            f"<h2>Symbols ({len(syms)})</h2>{table(['tier', 'symbol'], syms)}"
            "<p>A symbol's report: <code>snakemake --cores 2 symbol --config symbol=AAPL "
            "tier=T1</code></p></body></html>")
    lake.write_file_atomic(Path(output), page.encode())


def gate_summary(gate_files: list[str], output: str) -> int:
    """Print one line per gated partition of a run and write them to `output`; returns the
    number of partitions whose capture was refused."""
    lines, failed = [], 0
    for path in sorted(gate_files):
        report = lake.read_json(path)
        bad = [c for c in report["checks"] if c["status"] in ("FAIL", "WARN")]
        failed += report["status"] == "FAIL"
        detail = "; ".join(f"{c['status']} {c['check']}: measured {c['measured']}, limit "
                           f"{c['limit']} ({c['message']})" for c in bad)
        lines.append(f"{report['status']:4}  {report['tier']:4}  {report['week_start']}  "
                     f"capture {report['capture_id']}" + (f"  {detail}" if detail else ""))
    text = (f"Gate summary: {len(gate_files) - failed} passed, {failed} failed\n"
            + "\n".join(lines) + "\n")
    print(text, end="")
    lake.write_file_atomic(Path(output), text.encode())
    return failed



def revision_index(revisions: list[list[str]], output: str) -> None:
    """An HTML page listing every revision (tier, week, old, new, outcome, ledger time),
    newest first, with links to the reports."""
    rows = sorted(revisions, key=lambda r: r[5], reverse=True)
    body = "".join(
        f"<tr><td>{dt.datetime.strptime(at, '%Y%m%dT%H%M%S%f'):%Y-%m-%d %H:%M} UTC</td>"
        f"<td>{tier}</td><td>{week}</td>"
        f"<td><code>{old}</code> &rarr; <code>{new}</code></td><td>{event}</td>"
        f'<td><a href="{html.escape(f"tier={tier}/week_start={week}/{old}_to_{new}.html")}">'
        "report</a></td></tr>"
        for tier, week, old, new, event, at in rows)
    page = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>Market Spine revisions"
            "</title><style>body{font-family:sans-serif;margin:2em}td,th{padding:4px 10px;"
            "border-bottom:1px solid #ddd;text-align:left}</style></head><body>"
            "<h1>FINRA OTC Transparency revisions</h1>"
            f"<p>{len(rows)} revision(s) recorded in the capture ledger, newest first.</p>"
            "<table><tr><th>recorded</th><th>tier</th><th>week</th><th>captures</th>"
            f"<th>outcome</th><th></th></tr>{body}</table></body></html>")
    lake.write_file_atomic(Path(output), page.encode())
