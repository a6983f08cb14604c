"""Benchmark: the weekly update against a limit proxy. Prints figures beside their targets
(2-core machine); it asserts nothing.

1. limit proxy: one week of T1, T2 and OTCE in FINRA's pipe-delimited download layout (rendered
   before the clock starts), parsed with pyarrow.csv, written to Parquet, then symbol totals,
   venue shares and HHI per symbol in plain pyarrow.compute. Best of 3.
2. the full weekly update of that week from an empty lake (`snakemake backfill`): wall time and
   ratio to the proxy (target <= 15x);
3. a no-op rerun of the same command (target <= 2 s), and whether `-n` says "Nothing to be done";
4. a 4-week backfill in a fresh lake (target <= 60 s), seconds per week, 52-week extrapolation;
5. peak memory per job (target <= 1024 MB), from Snakemake's `benchmark:` records
   (<lake>/benchmarks/<step>/...tsv; max_rss covers papermill and its kernel);
6. with --first-run: `make run` as a fresh clone does it (the weekly update as of 2025-08-29,
   8 weeks of lookback, three tiers) from an empty lake (target <= 3 minutes).

    make bench                                   (python tests/benchmarks/weekly_update.py)
    python tests/benchmarks/weekly_update.py --size small --skip-backfill     quick check
    python tests/benchmarks/weekly_update.py --first-run                      adds figure 6
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv
import pyarrow.parquet as pq
import yaml

from spine.sources import finra_files, synthetic

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO  # the checkout whose Snakefile runs (--repo: an earlier commit, for "before")
TIERS = ["T1", "T2", "OTCE"]
STEPS = ["fetch", "gate", "clean", "calc", "regsho", "report"]  # print order (others after)
# Snakemake starts papermill and jupyter from PATH: the interpreter's bin directory comes first.
ENV = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent),
                                             os.environ.get("PATH", "")]))


def render_files(week: str, as_of: str, size: str, out: Path) -> dict[str, list[Path]]:
    """The week's download files per tier (one per summary type), written before any timing."""
    files: dict[str, list[Path]] = {}
    for tier in TIERS:
        df = synthetic.weekly_rows(tier, week, as_of, seed=7, size=size)
        for kind, summary_type in finra_files.KINDS.items():
            path = out / f"{tier}_{week}_{kind}.txt"
            path.write_text(finra_files.render_download(df[df["summaryTypeCode"] == summary_type]))
            files.setdefault(tier, []).append(path)
    return files


def proxy_once(files: dict[str, list[Path]], out: Path) -> int:
    """Parse, write Parquet, symbol totals, venue shares, HHI per symbol; returns rows read."""
    rows = 0
    parse = pv.ParseOptions(delimiter="|", quote_char=False)
    for tier, paths in files.items():
        table = pa.concat_tables([pv.read_csv(p, parse_options=parse) for p in paths])
        rows += table.num_rows
        pq.write_table(table, out / f"{tier}.parquet")
        shares = table["totalWeeklyShareQuantity"].cast(pa.float64())
        t = pa.table({"symbol": table["issueSymbolIdentifier"],
                      "venue": table["marketParticipantName"], "shares": shares})
        symbols = t.group_by("symbol").aggregate([("shares", "sum")])
        venues = t.group_by("venue").aggregate([("shares", "sum")])
        venues = venues.append_column(  # each venue's share of the tier's volume
            "share", pc.divide(venues["shares_sum"], pc.sum(shares)))
        pairs = t.group_by(["symbol", "venue"]).aggregate([("shares", "sum")])
        pairs = pairs.join(symbols.rename_columns(["symbol", "symbol_total"]), "symbol")
        sq = pc.power(pc.divide(pairs["shares_sum"], pairs["symbol_total"]), 2)
        hhi = pa.table({"symbol": pairs["symbol"], "sq": sq}).group_by("symbol").aggregate(
            [("sq", "sum")])
        hhi = hhi.append_column("hhi", pc.multiply(hhi["sq_sum"], 10_000))
        assert symbols.num_rows == hhi.num_rows and venues.num_rows > 0
    return rows


def snakemake(configfile: Path, *args: str, config: list[str]) -> tuple[float, str]:
    """One Snakemake run in the repo: (wall seconds, its output). A failing run prints the last
    40 lines of its output and ends the benchmark."""
    cmd = [sys.executable, "-m", "snakemake", *args, "--cores", "2", "--configfile",
           str(configfile), "--config", *config]
    start = time.perf_counter()
    try:
        done = subprocess.run(cmd, cwd=WORKFLOW, env=ENV, check=True, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    except subprocess.CalledProcessError as err:
        print(f"\nFAILED (exit {err.returncode}): {' '.join(cmd)}\n--- last 40 lines ---")
        print("\n".join(err.stdout.splitlines()[-40:]), flush=True)
        raise SystemExit(1) from None
    return time.perf_counter() - start, done.stdout


def lake_config(tmp: Path, name: str, **cfg) -> tuple[Path, Path]:
    """A config file for a fresh lake under tmp: (config file, lake root)."""
    lake, configfile = tmp / name / "lake", tmp / name / "config.yaml"
    configfile.parent.mkdir(parents=True)
    configfile.write_text(yaml.safe_dump({"lake_root": str(lake), "tiers": TIERS, **cfg}))
    return configfile, lake


def jobs(lake: Path) -> list[tuple[str, str, float, float]]:
    """(step, job, seconds, max RSS MB) per job from the lake's Snakemake benchmark records."""
    def number(x: str) -> float:
        return float(x) if x.strip() not in ("", "NA", "-") else 0.0
    out = []
    for tsv in sorted((lake / "benchmarks").rglob("*.tsv")):
        header, values = tsv.read_text().splitlines()[:2]
        rec = dict(zip(header.split("\t"), values.split("\t")))
        rel = tsv.relative_to(lake / "benchmarks")
        out.append((rel.parts[0], str(rel.with_suffix("")), number(rec["s"]),
                    number(rec.get("max_rss", "NA"))))
    return out


def print_jobs(label: str, lake: Path, top: int = 5) -> float:
    """The slowest jobs and a per-step summary of one run; returns its max RSS in MB."""
    records = jobs(lake)
    print(f"\n{label}: {len(records)} jobs; slowest:")
    for step, job, s, rss in sorted(records, key=lambda r: -r[2])[:top]:
        print(f"  {s:7.1f} s {rss:7.0f} MB  {job}")
    print(f"  {'step':14} {'jobs':>5} {'total s':>8} {'mean s':>7} {'max RSS MB':>10}")
    steps = sorted({r[0] for r in records}, key=lambda s: (STEPS + [s]).index(s))
    for step in steps:
        rs = [r for r in records if r[0] == step]
        total = sum(r[2] for r in rs)
        print(f"  {step:14} {len(rs):5} {total:8.1f} {total / len(rs):7.1f} "
              f"{max(r[3] for r in rs):10.0f}")
    return max((r[3] for r in records), default=0.0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--week", default="2025-06-02")
    ap.add_argument("--as-of", default="2025-08-01")
    ap.add_argument("--size", choices=["full", "small"], default="full")
    ap.add_argument("--skip-backfill", action="store_true", help="skip the 4-week backfill")
    ap.add_argument("--first-run", action="store_true", help="add `make run` from an empty lake")
    ap.add_argument("--repo", type=Path, default=REPO,
                    help="run the Snakefile of another checkout (e.g. `git worktree add "
                         "/tmp/before <commit>`) to measure before and after in one session")
    args = ap.parse_args()
    global WORKFLOW
    WORKFLOW = args.repo.resolve()
    print(f"Snakefile: {WORKFLOW / 'Snakefile'} ({subprocess.run(['git', 'log', '-1', '--format=%h %s'], cwd=WORKFLOW, capture_output=True, text=True).stdout.strip()})")
    synth = {"seed": 7, "size": args.size, "revisions": []}
    table: list[tuple[str, str, str, str]] = []  # figure, measured, target, met

    def figure(name: str, measured: str, target: str = "-", met: bool | None = None) -> None:
        table.append((name, measured, target, "-" if met is None else "yes" if met else "NO"))
        print(f"{name}: {measured}   target {target}" + ("" if met is None else
                                                          f"   met: {table[-1][3]}"), flush=True)

    tmp = Path(tempfile.mkdtemp(prefix="spine-bench-"))
    try:
        files = render_files(args.week, args.as_of, args.size, tmp)
        rows, best = 0, float("inf")
        for _ in range(3):
            start = time.perf_counter()
            rows = proxy_once(files, tmp)
            best = min(best, time.perf_counter() - start)
        print(f"Week {args.week}, size {args.size}: {rows:,} rows in "
              f"{sum(p.stat().st_size for ps in files.values() for p in ps) / 1e6:.1f} MB of "
              "download files")
        figure("1. limit proxy (pyarrow, best of 3)", f"{best:.2f} s")

        configfile, lake = lake_config(tmp, "week", as_of=args.as_of, synthetic=synth)
        span = [f"start={args.week}", f"end={args.week}"]
        full, _ = snakemake(configfile, "backfill", config=span)
        figure("2. weekly update, 1 week x 3 tiers", f"{full:.1f} s = {full / best:.1f}x proxy",
               f"<= 15x ({15 * best:.1f} s)", full / best <= 15)
        noop, _ = snakemake(configfile, "backfill", config=span)
        figure("3. no-op rerun", f"{noop:.2f} s", "<= 2 s", noop <= 2)
        _, dry = snakemake(configfile, "backfill", "-n", config=span)
        nothing = "Nothing to be done" in dry
        figure("3. dry run says 'Nothing to be done'", "yes" if nothing else "no", "yes", nothing)
        peak = print_jobs("Jobs of the weekly update", lake)

        if not args.skip_backfill:
            configfile, lake = lake_config(tmp, "backfill", as_of=args.as_of, synthetic=synth)
            wall, _ = snakemake(configfile, "backfill",
                                config=["start=2025-06-02", "end=2025-06-23"])
            figure("4. backfill, 4 weeks x 3 tiers", f"{wall:.1f} s = {wall / best:.1f}x proxy",
                   "<= 60 s", wall <= 60)
            figure("4. per week / extrapolated to 52 weeks",
                   f"{wall / 4:.1f} s / {wall / 4 * 52 / 60:.1f} min")
            peak = max(peak, print_jobs("Jobs of the 4-week backfill", lake))

        if args.first_run:
            configfile, lake = lake_config(tmp, "first", revision_lookback_weeks=8,
                                           synthetic={"seed": 7, "size": args.size})
            wall, _ = snakemake(configfile, config=["as_of=2025-08-29"])
            figure("6. first `make run` (8 weeks, empty lake)", f"{wall:.1f} s", "<= 180 s",
                   wall <= 180)
            peak = max(peak, print_jobs("Jobs of the first `make run`", lake))
        figure("5. peak RSS of any job", f"{peak:,.0f} MB", "<= 1024 MB", peak <= 1024)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    widths = [max(len(r[i]) for r in table + [("figure", "measured", "target", "met")])
              for i in range(4)]
    print()
    for r in [("figure", "measured", "target", "met"), tuple("-" * w for w in widths), *table]:
        print(" | ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
