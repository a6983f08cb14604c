"""Fault injection: what the lake survives. Prints figures; asserts nothing.

1. kill -9 at write k of a weekly update that carries a revision (k spread over every write
   the run makes, ingest and derive), then the same command: the run must finish, `-n` must
   have nothing to do, `spine verify` must pass, and the content (clean, every calculation, the
   ledger's verdicts, the revision reports) must equal an uninterrupted run's.
2. damage of each kind (deleted, truncated, bytes flipped, a stray file) to a file of each
   layer, then `spine verify` (must name the file) and `spine repair --backup` (must bring back
   equal content): detected / repaired, rows lost.
3. readers (pandas, pyarrow, DuckDB, Polars) during repeated replacements of a partition.

    python tests/benchmarks/faults.py                 every figure (about 15 minutes)
    python tests/benchmarks/faults.py --kills 4 --skip-readers        quicker
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

from spine import lake
from spine.lake import backup as backup_
from spine.lake import repair, verify
from spine.ingest import ledger

REPO = Path(__file__).resolve().parents[2]
BEFORE, AFTER, RESTATED = "2025-08-14", "2025-08-15", "2025-06-30"


def config(root: Path, as_of: str) -> Path:
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg.update(lake_root=str(root), as_of=as_of, tiers=["T2", "OTCE"],
               revision_lookback_weeks=2)
    cfg["synthetic"].update(size="small", restate={"every_nth_week": 0},
                            revisions=[{"tier": "T2", "week_start": RESTATED,
                                        "published": AFTER}])
    path = root.parent / f"{root.name}-{as_of}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def snakemake(cfg: Path, *args: str, **popen) -> subprocess.Popen:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    return subprocess.Popen([sys.executable, "-m", "snakemake", "--cores", "2", *args,
                             "--configfile", str(cfg)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, **popen)


def run(cfg: Path, *args: str) -> tuple[int, str]:
    proc = snakemake(cfg, *args)
    out, _ = proc.communicate()
    return proc.returncode, out


def writes(root: Path) -> int:
    folder = root / lake.MANIFEST
    return sum(p.read_bytes().count(b"\n") for p in folder.glob("*.jsonl")) if folder.exists() else 0


def digest(root: Path) -> dict:
    """The lake's content: every clean and calculation file's rows (order-free hash), what
    the ledger holds per partition, the revision reports."""
    out = {}
    for layer in ("clean", "calc"):
        for path in sorted((root / layer).rglob("*.parquet")):
            out[path.relative_to(root).as_posix()] = lake.content_hash(pd.read_parquet(path))
    state = ledger.LakeState.read(root)
    out["held"] = {f"{t}/{w}": s.held for (t, w), s in sorted(state.parts.items())}
    out["revisions"] = sorted(p.name for p in (root / "reports" / "revisions").rglob("*_to_*"))
    return out


def rows(root: Path) -> int:
    folder = root / "clean" / "finra_otc_weekly"
    return len(pd.read_parquet(folder)) if folder.exists() else 0


def kills(work: Path, points: int) -> None:
    base = work / "base"
    code, out = run(config(base, BEFORE))
    assert code == 0, out[-3000:]
    ref = work / "ref"
    shutil.copytree(base, ref)
    start = writes(ref)
    code, out = run(config(ref, AFTER))
    assert code == 0, out[-3000:]
    total = writes(ref) - start
    want = digest(ref)
    assert want["revisions"], "the run under test carries a revision"
    ks = sorted({max(1, round(total * (i + 1) / (points + 1))) for i in range(points)})
    print(f"1. kill -9 during a weekly update with a revision ({total} lake writes); "
          f"killed after write k, then the same command:")
    survived = 0
    for k in ks:
        lake_ = work / f"kill-{k}"
        shutil.rmtree(lake_, ignore_errors=True)
        shutil.copytree(base, lake_)
        cfg = config(lake_, AFTER)
        proc = snakemake(cfg)
        while writes(lake_) - start < k and proc.poll() is None:
            time.sleep(0.005)
        killed = proc.poll() is None
        if killed:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        code, out = run(cfg)
        _, dry = run(cfg, "-n")
        problems = verify.verify(lake_)
        same = digest(lake_) == want
        ok = code == 0 and "Nothing to be done" in dry and not problems and same
        survived += ok
        print(f"   k={k:>3}: {'killed' if killed else 'finished first'}; rerun exit {code}, "
              f"dry run {'clean' if 'Nothing to be done' in dry else 'NOT clean'}, verify "
              f"{len(problems)} problem(s), content {'equal' if same else 'DIFFERENT'}"
              f" -> {'survived' if ok else 'LOST'}")
        shutil.rmtree(lake_, ignore_errors=True)
    print(f"   faults injected {len(ks)}, survived {survived}")


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid:mid + 8] = bytes(8) if any(data[mid:mid + 8]) else b"\xff" * 8
    path.write_bytes(bytes(data))


DAMAGES = {
    "deleted": lambda p: p.unlink(),
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: max(1, p.stat().st_size // 3)]),
    "bytes flipped": _flip,
}


def damage(work: Path) -> None:
    ref = work / "ref"
    backup = work / "backup"
    backup_.backup(ref, str(backup), out=open(os.devnull, "w"))
    want, want_rows = digest(ref), rows(ref)
    held = ledger.LakeState.read(ref).parts
    t2 = next(s.held for (t, w), s in held.items() if t == "T2" and str(w) == RESTATED)
    targets = {
        "raw capture": next((ref / "raw").rglob(f"{t2}.parquet")),
        "ledger event": next((ref / "ledger").rglob(f"*-accepted-{t2}.parquet")),
        "fetch receipt": next((ref / "fetches" / "finra_otc_weekly").rglob("*.json")),
        "clean": next((ref / "clean" / "finra_otc_weekly").rglob("part-0.parquet")),
        "calculation": next((ref / "calc" / "venue_share").rglob("part-0.parquet")),
        "multi-week calculation": next((ref / "calc" / "symbol_trend").rglob("part-0.parquet")),
        "gate report": next((ref / "gates" / "finra_otc_weekly").rglob("*.json")),
        "weekly report": next((ref / "reports" / "weekly").glob("*.html")),
        "revision report": next((ref / "reports" / "revisions").rglob("*_to_*.html")),
    }
    print("2. damage, then spine verify and spine repair --backup:")
    detected = repaired = injected = 0
    lost = 0
    cases = [(name, kind) for name in targets for kind in DAMAGES]
    cases += [("stray file in calc/", "unrecorded"), ("manifest", "deleted")]
    for name, kind in cases:
        lake_ = work / "damaged"
        shutil.rmtree(lake_, ignore_errors=True)
        shutil.copytree(ref, lake_)
        if kind == "unrecorded":
            rel = "calc/venue_share/stray.parquet"
            shutil.copy(lake_ / targets["calculation"].relative_to(ref), lake_ / rel)
        elif name == "manifest":
            shutil.rmtree(lake_ / "manifest")
            rel = "manifest/"
        else:
            rel = targets[name].relative_to(ref).as_posix()
            DAMAGES[kind](lake_ / rel)
        injected += 1
        found = [p for p in verify.verify(lake_) if p.path.startswith(rel)]
        seen = bool(found) or name == "manifest"
        if name == "manifest":
            seen = all(p.kind == "unrecorded" for p in verify.verify(lake_))
        with open(work / "repair.log", "w") as log:
            left = repair.repair(lake_, backup=str(backup), configfile=str(config(lake_, AFTER)),
                                    out=log)
        if kind == "unrecorded":  # a stray file is moved aside, not kept
            gone = not (lake_ / rel).exists()
        else:
            gone = True
        same = digest(lake_) == want
        ok = not left and same and gone
        detected += seen
        repaired += ok
        lost += max(0, want_rows - rows(lake_))
        print(f"   {name:<20} {kind:<14} verify {'named it' if seen else 'MISSED it'}; "
              f"repair {'-> equal content' if ok else f'LEFT {len(left)} problem(s)'}")
        shutil.rmtree(lake_, ignore_errors=True)
    print(f"   damage injected {injected}, detected {detected}, repaired {repaired}, "
          f"clean rows lost {lost}")


def readers(seconds: float) -> None:
    from tests.helpers import reads_during_replacements

    root = tempfile.mkdtemp(prefix="market-spine-readers-")
    try:
        reads, failures = reads_during_replacements(root, seconds)
    finally:
        shutil.rmtree(root)
    per = {k: (n, sum(f.startswith(f"{k}:") for f in failures)) for k, n in reads.items()}
    print(f"3. readers during {seconds:.0f} s of partition replacements: "
          + ", ".join(f"{k} {ok} ok / {bad} failed" for k, (ok, bad) in per.items())
          + f"; total {sum(reads.values()) + len(failures)} reads, {len(failures)} failed")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kills", type=int, default=8, help="kill points, spread over the run")
    parser.add_argument("--skip-kills", action="store_true")
    parser.add_argument("--skip-damage", action="store_true")
    parser.add_argument("--skip-readers", action="store_true")
    parser.add_argument("--reader-seconds", type=float, default=40)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="market-spine-faults-"))
    try:
        if not args.skip_kills or not args.skip_damage:
            kills(work, args.kills if not args.skip_kills else 0)
        if not args.skip_damage:
            damage(work)
        if not args.skip_readers:
            readers(args.reader_seconds)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
