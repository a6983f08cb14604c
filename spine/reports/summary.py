"""The last lines of a run (`run_summary`): what it fetched, what the gates decided, the weeks no
configured source holds, where the reports are and what to do next."""

from __future__ import annotations

from pathlib import Path

from spine.ingest.sources import HISTORY_RUNBOOK
from spine.status import commands


def run_summary(root: str, run: str, as_of: str, record: dict | None, state,
                summary: str | None, coverage=None) -> str:
    """The last lines of a run: what it fetched, what the gates decided of the new captures
    (accepted, restated, held back, with the failed checks), the weeks it covers that no
    configured source holds (per run of weeks, with why: `coverage`, the run's
    spine.plan.Coverage), where the reports are, and the next command. `record` is the run's
    ingest record, `state` the ledger after it (spine.ingest.ledger.LakeState), `summary` the
    run's gate summary (spine.reports.index.gate_summary's file); `record` and `summary` are
    None for a run that fetched nothing because no configured source holds any week it
    covers."""
    flag = commands(root)[1]
    unheld = [f"  {line}" for line in coverage.unheld_lines()] if coverage is not None else []

    def next_(refused: list) -> str:
        todo = [f"spine status --first{flag}, then workflows/incident/RESOLVE_QUALITY_GATE.md"
                ] if refused else []
        if unheld:
            todo.append(f"for the weeks no configured source holds, {coverage.remedy}, then "
                        f"the same command again ({HISTORY_RUNBOOK})")
        return "Next: " + ("; ".join(todo) or "nothing to do")

    if record is None:
        return "\n".join([f"Run summary ({run}, as of {as_of}): nothing fetched: no configured "
                          f"source holds any of the {len(coverage.unheld)} partition(s) it "
                          "covers", *unheld, next_([])])
    head, *rows = summary.splitlines()
    summary = head.removeprefix("Gate summary: ")
    failed_checks = {}  # capture -> "FAIL rows_in_band: measured ..., limit ... (...)"
    for row in rows:
        if "  capture " in row:
            capture, _, detail = row.split("  capture ", 1)[1].partition("  ")
            failed_checks[capture] = detail
    parts = record["partitions"]
    new = [p for p in parts if p["new_capture"]]
    refused = [p for p in new if p["status"] == "FAIL"]
    revised = {(t, w.isoformat(), n): o for t, w, o, n in state.revisions()}
    restated = [p for p in new if p["status"] != "FAIL"
                and (p["tier"], p["week_start"], p["capture_id"]) in revised]
    lines = [f"Run summary ({run}, as of {as_of}): {len(parts)} partition(s) fetched, "
             f"{len(new)} new capture(s): {len(new) - len(refused)} accepted "
             f"({len(restated)} restating an earlier version), {len(refused)} held back"]
    for p in restated:
        lines.append(f"  restated   {p['tier']:4}  {p['week_start']}  "
                     f"{revised[(p['tier'], p['week_start'], p['capture_id'])]} -> "
                     f"{p['capture_id']}")
    for p in refused:
        lines.append(f"  held back  {p['tier']:4}  {p['week_start']}  capture {p['capture_id']} "
                     f"(clean keeps {p['clean_holds'] or 'nothing'}): "
                     f"{failed_checks.get(p['capture_id'], 'see its gate report')}")
    lines += unheld
    lines.append(f"Gate summary: {summary}; reports: {Path(root) / 'reports' / 'index.html'}")
    lines.append(next_(refused))
    return "\n".join(lines)
