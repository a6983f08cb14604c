"""`python -m spine.cli COMMAND ...`, as a Snakemake job runs it: a thin client that hands the
command to the run's warm server (spine/warm.py), or runs it here when there is none."""

import sys

from spine import warm

if __name__ == "__main__":  # not when imported (a walk over the package's modules)
    sys.exit(warm.run("spine.cli", sys.argv[1:]))
