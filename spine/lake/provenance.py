"""What made a lake file: `spine explain PATH`.

Every manifest record (spine/lake/__init__.py `record`) names the file's step and producer, the
code version, requirements.lock's hash and the config keys the step read (`made`,
spine/lake/stamp.py), and the files it was made from with their SHA-256 (`inputs`): clean its
raw capture; a calculation its clean, other calculations and Reg SHO days; a gate report its
verdict event; a report the files rules/derive.smk declares it reads. `explain` follows the
inputs back to the raw captures, and a raw capture to its fetch: the ledger's `captured` event
(source, request, when) and the fetch receipts under fetches/ that name it. An executed notebook
(runs/) keeps the same in its metadata (`spine`, written by spine.notebooks).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from spine import lake
from spine.ingest import ledger
from spine.lake import verify

RUNS = "runs"  # executed notebooks: spine.lake.LAYOUT["executed"]


class NotInLake(ValueError):
    """The path lies in no lake, or the lake's manifest does not know it."""


def locate(path: str | Path) -> tuple[Path, str]:
    """(the lake root, the lake-relative path) of a file of a lake."""
    absolute = Path(path).absolute()
    root = lake.root_of(absolute)
    if root is None:  # an executed notebook: <root>/runs/<step>/<job>.ipynb
        root = next((p.parent for p in absolute.parents if p.name == RUNS), None)
    if root is None:
        raise NotInLake(f"{path} is not in a lake: a lake's files lie under its folders "
                        f"{', '.join(lake.LAYERS)} (or {RUNS}/ for executed notebooks)")
    return root, absolute.relative_to(root).as_posix()


def explain(path: str | Path) -> dict:
    """What made the file at `path`, and what made its inputs, back to the fetches: a tree of
    nodes (see `_node`)."""
    root, rel = locate(path)
    records = verify.manifest(root)
    if rel.startswith(RUNS + "/"):
        return _notebook(root, rel, records)
    if rel not in records:
        raise NotInLake(f"{rel}: the manifest of {root} does not know this file (it was not "
                        "written by the pipeline, or its record is lost); run `spine verify "
                        f"--lake-root {root}` to see what it holds")
    return _node(root, rel, records, set())


def _node(root: Path, rel: str, records: dict, seen: set[str], sha: str | None = None) -> dict:
    """One file: path, when, by, sha256, made (stamp), its inputs' nodes; a raw capture's fetch;
    a ledger event's capture. `changed`: the file now differs from the version its reader was
    made from (`spine verify` calls the reader stale); `repeat`: shown earlier in the tree."""
    rec = records.get(rel)
    node: dict = {"path": rel}
    if rec is None:
        node["unknown"] = "the manifest has no record of it"
        return node
    node |= {"at": _when(rec["at"]), "by": rec["by"], "sha256": rec.get("sha256"),
             "made": rec.get("made")}
    if rec.get("removed"):
        node["removed"] = rec["removed"]
    if sha and rec.get("sha256") != sha:
        node["changed"] = "rewritten since its reader was made"
    if rel in seen:
        node["repeat"] = True
        return node
    seen.add(rel)
    inputs = dict(rec.get("inputs") or {})
    if not inputs and rel.startswith("clean/"):  # Reg SHO days: the capture their footer names
        capture = _held(root, rel)
        if capture:
            inputs[capture] = None
    node["inputs"] = [_node(root, src, records, seen, digest)
                      for src, digest in sorted(inputs.items())]
    if rel.startswith("raw/"):
        node["fetch"] = _fetch(root, rel)
    elif rel.startswith("ledger/") and rel.endswith(".parquet"):
        folder, _, file = rel.rpartition("/")
        capture = "raw/" + folder.removeprefix("ledger/") + "/" + _capture_id(file) + ".parquet"
        if capture in records and file.split("-")[1] not in ("captured", "seen_again"):
            node["capture"] = _node(root, capture, records, seen)
    return node


def _notebook(root: Path, rel: str, records: dict) -> dict:
    """An executed notebook: what its metadata says made it, and what it wrote."""
    import nbformat  # only for executed notebooks (a report step's import, 0.1 s)

    try:
        meta = nbformat.read(str(root / rel), as_version=4).metadata.get("spine")
    except (OSError, ValueError) as err:
        raise NotInLake(f"{rel}: cannot be read as a notebook ({err})") from None
    if not meta:
        raise NotInLake(f"{rel}: this executed notebook records nothing of what made it (it "
                        "was run before provenance was kept, or not by spine.notebooks)")
    seen: set[str] = set()
    return {"path": rel, "made": meta["made"], "wrote": meta.get("wrote", {}),
            "inputs": [_node(root, src, records, seen, digest)
                       for src, digest in sorted(meta.get("inputs", {}).items())]}


def _capture_id(event_file: str) -> str:
    """The capture an event file is about: <time>-<event>-<capture_id>.parquet."""
    return Path(event_file).stem.rsplit("-", 1)[-1]


def _held(root: Path, rel: str) -> str | None:
    """The raw capture a clean file holds (its footer's capture id), lake-relative."""
    try:
        capture = lake.held_capture(root / rel)
    except Exception:  # noqa: BLE001 - an unreadable footer: no capture to point at
        return None
    folder = rel.rpartition("/")[0].removeprefix("clean/")
    return f"raw/{folder}/{capture}.parquet" if capture else None


def _fetch(root: Path, rel: str) -> dict:
    """Where a raw capture came from: its ledger `captured` event (source, request, when, the
    run that fetched it) and the fetch receipts naming it (the first fetch, then re-fetches
    that found the same content)."""
    folder, _, file = rel.rpartition("/")
    partition, capture_id = folder.removeprefix("raw/"), Path(file).stem
    out: dict = {"capture_id": capture_id}
    events = sorted((root / "ledger" / partition).glob(f"*-captured-{capture_id}.parquet"))
    if events:
        event = ledger.read_event(events[0])
        at = event.get("recorded_at")
        out |= {"event": events[0].relative_to(root).as_posix(), "source": event.get("source"),
                "request": event.get("request"), "retrieved_at": str(at) if at else None,
                "run": event.get("run")}
    receipts = []
    for path in sorted((root / "fetches" / partition).glob("*.json")):
        try:
            receipt = json.loads(path.read_text())
        except ValueError:
            continue
        if receipt.get("capture_id") == capture_id:
            receipts.append((not receipt.get("new_capture"), receipt.get("retrieved_at", ""),
                             path.relative_to(root).as_posix(), receipt))
    receipts.sort(key=lambda r: r[:2])
    out["receipts"] = [r[2] for r in receipts]
    if receipts and "request" not in out:  # no ledger event: the receipt has the request
        first = receipts[0][3]
        out |= {"source": first["request"].get("source"), "request": first["request"],
                "retrieved_at": first.get("retrieved_at")}
    if not events and not receipts:
        out["unknown"] = "neither the ledger nor fetches/ records this capture's fetch"
    return out


def _when(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


# -- the tree as text ----------------------------------------------------------------------------
def render(tree: dict) -> str:
    """The tree, indented two spaces a level: each file, what made it, then its inputs."""
    lines: list[str] = []
    _render(tree, 0, lines)
    return "\n".join(lines) + "\n"


def _render(node: dict, depth: int, lines: list[str]) -> None:
    pad = "  " * depth
    lines.append(pad + node["path"])
    pad += "  "
    if "unknown" in node:
        lines.append(f"{pad}not known: {node['unknown']}")
        return
    made = node.get("made") or {}
    when = f", written {node['at']}" if "at" in node else ""
    by = f" by {node['by']}" if node.get("by") not in (None, made.get("step")) else ""
    lines.append(f"{pad}step {made.get('step', '?')}{when}{by}")
    code = made.get("code")
    version = (f"{code['commit'][:12]}{' (dirty)' if code.get('dirty') else ''}"
               if isinstance(code, dict) else (code or "not recorded"))
    lock = made.get("lock")
    lines.append(f"{pad}code {version}; requirements.lock "
                 + (f"sha256 {lock[:16]}" if lock else "not recorded"))
    if made.get("config"):
        lines.append(f"{pad}config " + ", ".join(
            f"{k}={json.dumps(v, sort_keys=True)}" for k, v in sorted(made["config"].items())))
    for flag in ("removed", "changed"):
        if node.get(flag):
            lines.append(f"{pad}{flag}: {node[flag]}")
    if node.get("repeat"):
        lines.append(f"{pad}(its inputs are shown above)")
        return
    if node.get("wrote"):
        lines.append(f"{pad}wrote " + ", ".join(sorted(node["wrote"])))
    fetch = node.get("fetch")
    if fetch:
        if "unknown" in fetch:
            lines.append(f"{pad}fetch: {fetch['unknown']}")
        else:
            lines.append(f"{pad}fetched from {fetch.get('source')} at {fetch.get('retrieved_at')}"
                         f": {json.dumps(fetch.get('request'), sort_keys=True)}")
            for where in [fetch.get("event")] + fetch["receipts"]:
                if where:
                    lines.append(f"{pad}  recorded in {where}")
    if node.get("capture"):
        lines.append(f"{pad}about the capture:")
        _render(node["capture"], depth + 2, lines)
    if node.get("inputs"):
        lines.append(f"{pad}made from:")
        for child in node["inputs"]:
            _render(child, depth + 2, lines)
