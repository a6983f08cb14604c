"""Benchmark: what a run costs, against the targets of the warm-runner issue (2-core machine,
full size, three tiers). Prints each figure beside its target; asserts nothing. In one run:

1. limit proxy: one week of T1, T2 and OTCE in FINRA's pipe-delimited download layout (rendered
   before the clock starts), parsed with pyarrow.csv, written to Parquet, then symbol totals,
   venue shares and HHI per symbol in plain pyarrow.compute. Best of 3.
2. one full week of three tiers from an empty lake (`snakemake backfill`), through the warm
   runner ("after") and with SPINE_WARM=0, every step in its own process ("before");
3. the per-step overhead, from launching a step's command to its notebook's first cell (the
   executed notebook's first code cell's start time), median of 10, warm and plain;
4. a real 52-week backfill of three tiers from an empty lake (run, not extrapolated), its job
   count, the gate job's time and the longest job;
5. Snakemake's own floor: as many trivial `shell:` jobs as that backfill ran;
6. a version bump of one calculation (symbol_hhi, read by the weekly reports) over the 52 weeks;
7. a no-op rerun and a dry run of the backfill on that lake;
8. the first `make run` from an empty lake (8 weeks of lookback as of 2025-08-29);
9. peak memory: the warm server's RSS (sampled during the runs) and any step's peak RSS (the
   steps' benchmark records; a forked step's figure includes the pages it shares with the
   server, so the two added are an upper bound).

The 52-week part runs in a scratch copy of the checkout (its own `.snakemake/` metadata, so
the version bump is seen as a changed parameter, as in a user's checkout).

    make bench                                   (python tests/benchmarks/weekly_update.py)
    python tests/benchmarks/weekly_update.py --size small --weeks 4     quick check
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import statistics
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

from spine import warm
from spine.ingest.sources import finra_files, synthetic
from spine.ingest import ledger

REPO = Path(__file__).resolve().parents[2]
TIERS = ["T1", "T2", "OTCE"]
STEPS = ["fetch", "gate", "clean", "calc", "regsho", "weekly_report"]  # print order (others after)
# Snakemake starts papermill and jupyter from PATH: the interpreter's bin directory comes first.
ENV = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent),
                                             os.environ.get("PATH", "")]))


def render_files(week: str, as_of: str, size: str, out: Path) -> dict[str, list[Path]]:
    """The week's download files per tier (one per summary type), written before any timing."""
    files: dict[str, list[Path]] = {}
    for tier in TIERS:
        df = synthetic.weekly_rows(tier, week, as_of, seed=7, size=size, aggregates=False)
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


def snakemake(configfile: Path, *args: str, config: list[str] = (), cwd: Path = REPO,
              env: dict | None = None, sample: Path | None = None) -> tuple[float, str]:
    """One Snakemake run: (wall seconds, its output). With `sample` (a lake), the warm server's
    RSS is sampled while it runs (PEAK["server"]). A failing run prints the last 40 lines of
    its output and ends the benchmark."""
    cmd = [sys.executable, "-m", "snakemake", *args, "--cores", "2", "--configfile",
           str(configfile)] + (["--config", *config] if config else [])
    start = time.perf_counter()
    out = tempfile.TemporaryFile("w+")
    proc = subprocess.Popen(cmd, cwd=cwd, env={**ENV, **(env or {})}, text=True, stdout=out,
                            stderr=subprocess.STDOUT)
    while proc.poll() is None:
        if sample is not None:
            try:
                PEAK["server"] = max(PEAK["server"],
                                     warm.status(warm.socket_path(str(sample)))["rss_mb"])
            except OSError:
                pass
        time.sleep(0.5)
    wall = time.perf_counter() - start
    out.seek(0)
    text = out.read()
    if proc.returncode != 0:
        print(f"\nFAILED (exit {proc.returncode}): {' '.join(cmd)}\n--- last 40 lines ---")
        print("\n".join(text.splitlines()[-40:]), flush=True)
        raise SystemExit(1)
    return wall, text


PEAK = {"server": 0.0}


def lake_config(tmp: Path, name: str, **cfg) -> tuple[Path, Path]:
    """A config file for a fresh lake under tmp: (config file, lake root)."""
    lake, configfile = tmp / name / "lake", tmp / name / "config.yaml"
    configfile.parent.mkdir(parents=True)
    configfile.write_text(yaml.safe_dump({"lake_root": str(lake), "tiers": TIERS, **cfg}))
    return configfile, lake


def jobs(lake: Path) -> list[tuple[str, str, float, float]]:
    """(step, job, seconds, max RSS MB) per step from the lake's benchmark records."""
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


def ran(output: str) -> int:
    """How many jobs a run executed (Snakemake's `N of N steps (100%) done`)."""
    found = re.findall(r"(\d+) of (\d+) steps \(100%\) done", output)
    return int(found[-1][1]) if found else 0


def print_jobs(label: str, lake: Path, top: int = 5) -> float:
    """The slowest steps and a per-step summary of one lake; returns the max RSS in MB."""
    records = jobs(lake)
    print(f"\n{label}: {len(records)} notebook steps; slowest:")
    for step, job, s, rss in sorted(records, key=lambda r: -r[2])[:top]:
        print(f"  {s:7.1f} s {rss:7.0f} MB  {job}")
    print(f"  {'step':14} {'jobs':>5} {'total s':>8} {'mean s':>7} {'max RSS MB':>10}")
    steps = sorted({r[0] for r in records}, key=lambda s: (STEPS + [s]).index(s))
    for step in steps:
        rs = [r for r in records if r[0] == step]
        total = sum(r[2] for r in rs)
        print(f"  {step:14} {len(rs):5} {total:8.1f} {total / len(rs):7.1f} "
              f"{max(r[3] for r in rs):10.0f}", flush=True)
    return max((r[3] for r in records), default=0.0)


def first_cell_overhead(lake: Path, env: dict, runs: int = 10) -> tuple[list[float], list[float]]:
    """Seconds from launching `python -m spine.notebooks clean ...` (the command a job runs) to
    its notebook's first code cell, and to the command's end, for a T1 week of `lake`."""
    from spine import config as config_
    from spine import steps

    state = ledger.LakeState.read(lake)
    tier, week = next((t, w) for t, w in state.accepted() if t == "T1")
    cfg = config_.load(lake_root=str(lake))
    params = steps.parameters("clean", cfg, tier=tier, week_start=week.isoformat(),
                                  capture_id=state.held(tier, week))
    out, whole = [], []
    for i in range(runs):
        executed = lake.parent / f"overhead-{i}.ipynb"
        launched = time.time()
        subprocess.run([sys.executable, "-m", "spine.notebooks", "clean", str(executed),
                        "--params", params], check=True, cwd=REPO, env=env,
                       stdout=subprocess.DEVNULL)
        whole.append(time.time() - launched)
        nb = json.loads(executed.read_text())
        first = next(c for c in nb["cells"] if c["cell_type"] == "code")
        started = dt.datetime.fromisoformat(first["metadata"]["papermill"]["start_time"])
        out.append(started.timestamp() - launched)
    return out, whole


def trivial_floor(tmp: Path, n: int) -> float:
    """Wall seconds of `n` trivial `shell:` jobs in Snakemake, 2 cores, with the scheduler
    settings of our profile."""
    work = tmp / "floor"
    work.mkdir()
    (work / "Snakefile").write_text(
        f"rule all:\n    input: expand('out/{{i}}.txt', i=range({n}))\n\n"
        "rule one:\n    output: 'out/{i}.txt'\n    shell: 'touch {output}'\n")
    profile = yaml.safe_load((REPO / "profiles" / "default" / "config.yaml").read_text())
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "--quiet", "--scheduler",
           profile["scheduler"], "--scheduler-subsample", str(profile["scheduler-subsample"])]
    start = time.perf_counter()
    subprocess.run(cmd, cwd=work, env=ENV, check=True, capture_output=True)
    return time.perf_counter() - start


def scratch_checkout(tmp: Path) -> Path:
    work = tmp / "repo"
    shutil.copytree(REPO, work, ignore=shutil.ignore_patterns(
        ".git", ".venv", "data", ".snakemake", "__pycache__"))
    return work


def bump(work: Path, name: str) -> None:
    """Bump one calculation's version in the scratch checkout's registry."""
    path = work / "spine" / "registry.py"
    text = path.read_text()
    old = re.search(rf'Calc\("{name}", (\d+),', text)
    path.write_text(text.replace(old[0], f'Calc("{name}", {int(old[1]) + 1},', 1))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--week", default="2025-06-02")
    ap.add_argument("--as-of", default="2025-08-01")
    ap.add_argument("--size", choices=["full", "small"], default="full")
    ap.add_argument("--weeks", type=int, default=52, help="the backfill's weeks (figure 4)")
    args = ap.parse_args()
    commit = subprocess.run(["git", "log", "-1", "--format=%h %s"], cwd=REPO,
                            capture_output=True, text=True).stdout.strip()
    print(f"Checkout: {REPO} ({commit[:80]})")
    # when and on what: the README's figures say both
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
               platform.processor() or "?") if Path("/proc/cpuinfo").exists() else "?"
    print(f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {platform.node()}: "
          f"{len(os.sched_getaffinity(0))} cores ({cpu}), "
          f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.1f} GiB, "
          f"Python {platform.python_version()}")
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

        span = [f"start={args.week}", f"end={args.week}"]
        walls, lakes = {}, {}
        for name, env in (("plain", {"SPINE_WARM": "0"}), ("warm", {})):
            configfile, lakes[name] = lake_config(tmp, f"week-{name}", as_of=args.as_of,
                                                  synthetic=synth)
            walls[name], out = snakemake(configfile, "backfill", config=span, env=env,
                                         sample=lakes[name])
            walls[name + " jobs"] = ran(out)
        figure("2. one full week x 3 tiers, empty lake, before (SPINE_WARM=0)",
               f"{walls['plain']:.1f} s ({walls['plain jobs']} jobs)")
        figure("2. one full week x 3 tiers, empty lake, warm runner",
               f"{walls['warm']:.1f} s ({walls['warm jobs']} jobs)", "<= 12 s",
               walls["warm"] <= 12)
        peak = print_jobs("Steps of the week (warm)", lakes["warm"])

        plain, plain_whole = first_cell_overhead(lakes["plain"], dict(ENV, SPINE_WARM="0"))
        warm.start(str(lakes["warm"]))  # as the Snakefile's onstart does
        try:
            hot, hot_whole = first_cell_overhead(lakes["warm"], dict(os.environ, **{
                k: v for k, v in ENV.items() if k == "PATH"}))
        finally:
            warm.stop()
        figure("3. per-step overhead to the first cell, before (own process), median of 10",
               f"{statistics.median(plain):.2f} s")
        figure("3. per-step overhead to the first cell, warm runner, median of 10",
               f"{statistics.median(hot):.3f} s (max {max(hot):.3f})", "<= 0.15 s",
               statistics.median(hot) <= 0.15)
        figure("3. the same step (clean of a T1 week) start to end, median of 10",
               f"{statistics.median(plain_whole):.2f} s in its own process, "
               f"{statistics.median(hot_whole):.2f} s warm (the first waits for the server's "
               f"imports: {hot_whole[0]:.2f} s)")

        work = scratch_checkout(tmp)
        configfile, lake = lake_config(tmp, "year", as_of="2025-08-01", synthetic=synth)
        last = dt.date.fromisoformat("2025-06-23")
        first = last - dt.timedelta(weeks=args.weeks - 1)
        year = [f"start={first}", f"end={last}"]
        wall, out = snakemake(configfile, "backfill", config=year, cwd=work, sample=lake)
        n = ran(out)
        target = 360 * args.weeks / 52
        figure(f"4. {args.weeks}-week backfill x 3 tiers, empty lake",
               f"{wall:.1f} s ({wall / 60:.1f} min, {n} jobs)", f"<= {target:.0f} s",
               wall <= target)
        records = jobs(lake)
        gate = max((r for r in records if r[0] == "gate"), key=lambda r: r[2])
        longest = max(records, key=lambda r: r[2])
        figure("4. the gate job / the longest step",
               f"{gate[2]:.1f} s / {longest[2]:.1f} s ({longest[1]})")
        peak = max(peak, print_jobs(f"Steps of the {args.weeks}-week backfill", lake))

        floor = trivial_floor(tmp, n)
        figure(f"5. Snakemake's floor: {n} trivial shell jobs", f"{floor:.1f} s "
               f"({floor / n * 1000:.0f} ms a job); the backfill: {wall / n * 1000:.0f} ms a job "
               f"on 2 cores, {(wall - floor) / n * 1000:.0f} ms more than the floor")

        bump(work, "symbol_hhi")
        wall, out = snakemake(configfile, "backfill", config=year, cwd=work, sample=lake)
        figure(f"6. version bump of symbol_hhi, {args.weeks} weeks",
               f"{wall:.1f} s ({ran(out)} jobs)", f"<= {60 * args.weeks / 52:.0f} s",
               wall <= 60 * args.weeks / 52)

        noop, _ = snakemake(configfile, "backfill", config=year, cwd=work)
        figure(f"7. no-op rerun, {args.weeks}-week lake", f"{noop:.2f} s", "<= 2 s", noop <= 2)
        dry, out = snakemake(configfile, "backfill", "-n", config=year, cwd=work)
        nothing = "Nothing to be done" in out
        figure(f"7. dry run, {args.weeks}-week lake", f"{dry:.2f} s, "
               + ("'Nothing to be done'" if nothing else "WORK LEFT"), "<= 5 s",
               dry <= 5 and nothing)

        configfile, lake = lake_config(tmp, "first", revision_lookback_weeks=8,
                                       synthetic={"seed": 7, "size": args.size})
        wall, out = snakemake(configfile, config=["as_of=2025-08-29"], sample=lake)
        figure("8. first `make run` (8 weeks x 3 tiers, empty lake)",
               f"{wall:.1f} s ({ran(out)} jobs)", "<= 90 s", wall <= 90)
        peak = max(peak, print_jobs("Steps of the first `make run`", lake, top=3))

        figure("9. peak RSS: warm server / any step / both",
               f"{PEAK['server']:,.0f} MB / {peak:,.0f} MB / {PEAK['server'] + peak:,.0f} MB",
               "<= 1,536 MB together", PEAK["server"] + peak <= 1536)
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
