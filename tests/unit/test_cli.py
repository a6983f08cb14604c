"""The `spine` command line as an operator meets it: every option says what it takes, numbers
read as numbers, a closed pipe or a wrong value ends in one line, never a traceback."""

import argparse
import datetime as dt
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from spine import cli, vocabulary
from spine.cli import dispatch
from spine.ingest import decide
from tests.helpers import derive
from spine.ingest import fetch
from spine.reports import revision as revisions
from spine import config as config_
from spine.config import ConfigError

TIER, WEEK = "T2", dt.date(2025, 6, 2)
BEFORE, AFTER = "2025-08-14", "2025-08-15"  # the synthetic source restates the week on AFTER
E_NOTATION = re.compile(r"\d[eE][+-]\d")  # 2.616868e+09, not a capture id's 8e2


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """A lake holding two captures of one week: the first, and FINRA's restatement of it."""
    cfg = config_.load(lake_root=str(tmp_path_factory.mktemp("cli") / "lake"), as_of=BEFORE,
                       synthetic={"size": "small", "restate": {"every_nth_week": 0},
                                  "revisions": [{"tier": TIER, "week_start": WEEK.isoformat(),
                                                 "published": AFTER}]})
    for as_of in (BEFORE, AFTER):
        later = dict(cfg, as_of=as_of)
        receipt = fetch.fetch(later, TIER, WEEK, f"asof-{as_of}")
        decide.gate(later, TIER, WEEK, receipt["capture_id"])
        derive(later, TIER, WEEK)
    return cfg["lake_root"]


@pytest.fixture(autouse=True)
def producer(monkeypatch):
    monkeypatch.setenv("SPINE_PRODUCER", "tests/unit/test_cli.py")  # main() sets it otherwise


def test_every_option_of_every_command_says_what_it_takes():
    top = cli.parser()
    sub = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    said = {a.dest: a.help for a in sub._choices_actions}
    silent = []
    for name, command in sub.choices.items():
        if not (said.get(name) or "").strip():
            silent.append(name)
        for action in command._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            if not (action.help or "").strip():
                silent.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
            if action.dest == "tier":  # one spelling of the tiers, from the vocabulary
                assert tuple(action.choices) == vocabulary.TIERS, name
    assert not silent, f"no help text: {', '.join(silent)}"



def test_help_answers_without_loading_the_commands():
    """spine/cli/__init__.py imports the commands (pandas, pyarrow: about 1 s) only once a
    command is parsed: `spine --help` and `spine COMMAND --help` load argparse and the
    vocabulary, and answer at once."""
    probe = ("import sys; from spine import cli\n"
             "for argv in (['--help'], ['status', '--help']):\n"
             "    try:\n        cli.main(argv)\n    except SystemExit:\n        pass\n"
             "print(sorted(m for m in ('pandas', 'pyarrow', 'spine.config', 'spine.cli.dispatch')"
             " if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]", done.stdout

def test_counts_are_whole_numbers_the_parser_checks(capsys):
    for argv in (["diff", "--tier", TIER, "--week-start", str(WEEK), "--top", "0"],
                 ["status", "--grace-days", "-1"], ["status", "--grace-days", "three"]):
        with pytest.raises(SystemExit) as done:
            cli.parser().parse_args(argv)
        assert done.value.code == 2
        assert "is not a whole number of at least" in capsys.readouterr().err


def test_a_table_writes_numbers_with_separators_and_never_in_e_notation():
    df = pd.DataFrame({"symbol": ["AAA", "BBB", "CCC"],
                       "rows_before": [2_616_868_000, 12, 7],                      # integers
                       "shares_before": [2_616_868_000.0, 1.5, 0.1 + 0.2],        # fractional
                       "shares_after": [2_616_868_000.25, 3.0, np.nan],
                       "shares_change": [0.25, 1.5, np.nan],
                       "notional": [2.616868e9, 1e12, 5.0]})                     # whole floats
    text = revisions.table(df)
    assert not E_NOTATION.search(text), text
    lines = text.splitlines()
    assert lines[1].split() == ["AAA", "2,616,868,000", "2,616,868,000.00", "2,616,868,000.25",
                                "+0.25", "2,616,868,000"]
    # one measure, one number of decimals (before, after and change), as few as show the values
    assert lines[2].split() == ["BBB", "12", "1.50", "3.00", "+1.50", "1,000,000,000,000"]
    assert lines[3].split() == ["CCC", "7", "0.30", "-", "-", "5"]  # float noise is not shown
    assert revisions.table(df.iloc[0:0]) == "(none)"


def test_diff_prints_every_number_with_separators_and_none_in_e_notation(root, capsys):
    assert cli.main(["diff", "--tier", TIER, "--week-start", str(WEEK), "--lake-root", root]) == 0
    out = capsys.readouterr().out
    assert not E_NOTATION.search(out), out
    d = revisions.diff(root, TIER, WEEK)
    assert out.splitlines()[0] == d.headline()
    totals = d.totals()
    assert totals["shares_before"].max() > 1e7  # big enough that pandas would write 2.967374e+07
    for value in [*totals["shares_before"], *totals["shares_after"]]:
        assert re.search(rf"\b{re.escape(f'{int(value):,}')}(\.\d{{1,4}})?\b", out), value
    for value in totals["trades_after"]:
        assert re.search(rf"\b{value:,}\b", out), value


def test_a_closed_pipe_ends_quietly(root):
    argv = ["diff", "--tier", TIER, "--week-start", str(WEEK), "--lake-root", root]
    # the reader leaves before the first line is written: every write meets a closed pipe
    proc = subprocess.Popen([sys.executable, "-m", "spine.cli", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait() == 141 and err == "", err
    # as an operator types it
    head = subprocess.run(["bash", "-o", "pipefail", "-c",
                           f"{sys.executable} -m spine.cli {' '.join(argv)} | head -1"],
                          capture_output=True, text=True)
    assert "Traceback" not in head.stderr and "Broken" not in head.stderr, head.stderr
    assert head.returncode in (0, 141) and re.fullmatch(
        r"[\d,]+ added, [\d,]+ removed, [\d,]+ changed\n", head.stdout)


MISSING = "{missing}"  # a lake that is not there (in the test's temporary folder)
BAD_INPUT = [  # (argv, the value the one line names); {root} is the lake with two captures
    (["diff", "--tier", TIER, "--week-start", "2025-13-01", "--lake-root", "{root}"],
     "2025-13-01"),
    (["diff", "--tier", TIER, "--week-start", "2025-06-03", "--lake-root", "{root}"],
     "2025-06-03"),
    (["diff", "--tier", TIER, "--week-start", str(WEEK), "--old", "nope", "--lake-root",
      "{root}"], "nope"),
    (["diff", "--tier", TIER, "--week-start", str(WEEK), "--lake-root", MISSING], MISSING),
    (["pin", "--tier", TIER, "--week-start", str(WEEK), "--capture", "nope", "--reason", "x",
      "--lake-root", "{root}"], "nope"),
    (["pin", "--tier", TIER, "--week-start", "June 2", "--capture", "nope", "--reason", "x",
      "--lake-root", "{root}"], "June 2"),
    (["pin", "--tier", TIER, "--week-start", str(WEEK), "--capture", "nope", "--reason", "x",
      "--lake-root", MISSING], MISSING),
    (["regate", "--tier", TIER, "--week-start", str(WEEK), "--capture", "nope", "--lake-root",
      "{root}"], "nope"),
    (["regate", "--tier", TIER, "--week-start", "06/02/2025", "--lake-root", "{root}"],
     "06/02/2025"),
    (["regate", "--all", "--lake-root", MISSING], MISSING),
    (["override", "--tier", TIER, "--week-start", str(WEEK), "--check", "schema", "--reason",
      "x", "--capture", "nope", "--lake-root", "{root}"], "nope"),
    (["override", "--tier", TIER, "--week-start", "x", "--check", "schema", "--reason", "x",
      "--lake-root", "{root}"], "'x'"),
    (["override", "--revoke", "--tier", TIER, "--week-start", str(WEEK), "--reason", "x",
      "--lake-root", MISSING], MISSING),
    (["status", "--as-of", "2025-02-30", "--lake-root", "{root}"], "2025-02-30"),
    (["status", "--since", "nope", "--lake-root", "{root}"], "nope"),
    (["status", "--configfile", "/nonexistent/config.yaml"], "/nonexistent/config.yaml"),
    (["verify", "--configfile", "/nonexistent/config.yaml"], "/nonexistent/config.yaml"),
    (["repair", "--lake-root", MISSING], MISSING),
    (["backup", "/nonexistent/backup", "--lake-root", MISSING], MISSING),
    (["restore", "/nonexistent/backup", "--lake-root", MISSING], "/nonexistent/backup"),
    (["import-file", "/nonexistent/file.csv", "--tier", TIER, "--week-start", str(WEEK),
      "--lake-root", MISSING], "/nonexistent/file.csv"),
    (["import-file", "/nonexistent/file.csv", "--tier", TIER, "--week-start", "2025-06-04",
      "--lake-root", MISSING], "2025-06-04"),
    (["emulator", "--as-of", "yesterday"], "yesterday"),
    (["emulator", "--as-of", BEFORE, "--port", "99999"], "99999"),
    (["ats-list", "--list", "/nonexistent/ats.csv"], "/nonexistent/ats.csv"),
]


@pytest.mark.parametrize("argv, value", BAD_INPUT,
                         ids=[" ".join(a[:1] + [v]) for a, v in BAD_INPUT])
def test_an_operators_wrong_value_is_one_line_naming_it_and_exit_2(root, tmp_path, capsys,
                                                                   monkeypatch, argv, value):
    def interrupted(seconds):
        raise KeyboardInterrupt

    if argv[0] == "emulator":  # one that took the value would serve until interrupted
        monkeypatch.setattr("time.sleep", interrupted)
    where = {"root": root, "missing": str(tmp_path / "no-lake")}
    code = cli.main([a.format(**where) for a in argv])  # an exception here is a traceback
    value = value.format(**where)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, err
    assert lines[0].startswith(f"spine {argv[0]}: ") and value in lines[0], err
    assert len(lines) <= 2, err  # import-file adds "Nothing was stored."


@pytest.mark.parametrize("raised, code, said", [
    (KeyboardInterrupt(), 130, "spine diff: interrupted"),
    (ConfigError("config key 'tiers': 'T4' is not one of T1, T2, OTCE"), 2,
     "spine diff: config key 'tiers'"),
])
def test_ctrl_c_and_a_bad_config_end_in_one_line(root, capsys, monkeypatch, raised, code, said):
    def fails(args):
        raise raised

    monkeypatch.setitem(dispatch.COMMANDS, "diff", fails)
    try:
        done = cli.main(["diff", "--tier", TIER, "--week-start", str(WEEK), "--lake-root", root])
    except BaseException as escaped:  # noqa: BLE001 - a KeyboardInterrupt would stop pytest
        pytest.fail(f"main() let {escaped!r} through: a traceback")
    assert done == code
    err = capsys.readouterr().err
    assert err.startswith(said) and len(err.strip().splitlines()) == 1, err
