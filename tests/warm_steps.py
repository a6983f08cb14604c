"""Steps for the warm runner's tests (tests/unit/test_warm.py): each is `main(argv)`, run by
`spine.warm.run("tests.warm_steps", argv)` in the run's server or in its own process.

    state             print what a step finds: environment, cwd, a module global, matplotlib's
                      state, pid and thread count (JSON on stdout)
    dirty             change all of those, leak 200 MB, then print the state
    fail              raise an error (a failed step)
    exit N            return N
    sleep PIDFILE     write its pid (and the pid of a child it starts) to PIDFILE, then sleep
"""

import json
import os
import sys
import time

import matplotlib

GLOBAL = {"touched": False}
LEAK = []


def state() -> dict:
    import matplotlib.pyplot as plt

    return {"env": os.environ.get("WARM_TEST_DIRTY"), "cwd": os.getcwd(),
            "global": GLOBAL["touched"], "rc": matplotlib.rcParams["lines.linewidth"],
            "figures": len(plt.get_fignums()), "pid": os.getpid(),
            "threads": len(os.listdir("/proc/self/task")), "argv": sys.argv,
            "stdin": sys.stdin.readline().strip() if not sys.stdin.isatty() else None}


def main(argv):
    what = argv[0]
    if what == "state":
        print(json.dumps(state()))
        return 0
    if what == "dirty":
        import matplotlib.pyplot as plt

        os.environ["WARM_TEST_DIRTY"] = "1"
        os.chdir("/")
        GLOBAL["touched"] = True
        matplotlib.rcParams["lines.linewidth"] = 9.0
        plt.figure()
        LEAK.append(bytearray(200 * 1024 * 1024))
        print(json.dumps(state()))
        return 0
    if what == "fail":
        raise ValueError("this step fails on purpose")
    if what == "exit":
        return int(argv[1])
    if what == "sleep":
        import subprocess

        grandchild = subprocess.Popen(["sleep", "60"])
        with open(argv[1] + ".tmp", "w") as out:
            out.write(f"{os.getpid()} {grandchild.pid}")
        os.rename(argv[1] + ".tmp", argv[1])
        time.sleep(60)
        return 0
    raise SystemExit(f"unknown test step {what!r}")
