# Market Spine: the commands a newcomer needs (`make help` lists them). Everything runs in .venv,
# installed from requirements.lock: every package pinned with its hashes, for Python 3.11 on
# Linux x86_64, nothing resolved at install time. pyproject.toml declares the dependencies;
# `make lock` re-pins them. `make` alone builds .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LOCK := requirements.lock
CORES ?= 2
UV_VERSION ?= 0.13.9
# Commands run with .venv/bin first on PATH (Snakemake starts papermill and jupyter from it).
RUN := PATH="$(CURDIR)/$(BIN):$$PATH"
# Jupyter refuses to start as root (containers, CI machines) without --allow-root.
ALLOW_ROOT = $(if $(filter 0,$(shell id -u)),--allow-root)

.PHONY: venv run test test-fast lab sync-notebooks bench faults lint clean-lake lock help

## venv: build .venv from requirements.lock (plain `make` does this; every target below does it first)
venv: $(BIN)/snakemake

# A changed lock rebuilds .venv from scratch, since pip never removes a package that a new lock
# drops; a changed pyproject.toml re-installs the project. `pip check` then fails when the lock
# no longer satisfies pyproject.toml.
$(BIN)/snakemake: $(VENV)/.lock-installed pyproject.toml
	$(BIN)/python -m pip install -qq --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check || { echo "$(LOCK) does not satisfy pyproject.toml: run 'make lock'" >&2; exit 1; }
	touch $@

$(VENV)/.lock-installed: $(LOCK)
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11) and "$(LOCK) is for Python 3.11: make PYTHON=python3.11")'
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --no-deps --require-hashes -r $(LOCK)
	touch $@

## run: the weekly update on the embedded synthetic source, then where the reports are
run: $(BIN)/snakemake
	$(RUN) $(BIN)/snakemake --cores $(CORES) $(ARGS)
	@echo ""
	@echo "Reports: $(CURDIR)/data/reports/weekly/"
	@ls -1 data/reports/weekly/ 2>/dev/null | sed 's/^/  /'

## test: the whole test suite (PYTEST_ARGS="-q -k gates" passes options on)
test: $(BIN)/snakemake
	$(RUN) $(BIN)/python -m pytest $(PYTEST_ARGS)

## test-fast: the suite without the tests that start Snakemake (marker e2e)
test-fast: $(BIN)/snakemake
	$(RUN) $(BIN)/python -m pytest -m "not e2e" $(PYTEST_ARGS)

## lab: JupyterLab on the notebooks (LAB_ARGS="--no-browser --port 8890" passes options on)
lab: $(BIN)/snakemake
	$(RUN) $(BIN)/jupyter lab notebooks/ $(ALLOW_ROOT) $(LAB_ARGS)

## sync-notebooks: re-sync each notebook with its py:percent text in notebooks/text/ (the newer of the two wins; JupyterLab does this on save)
sync-notebooks: $(BIN)/snakemake
	$(BIN)/jupytext --sync notebooks/*.ipynb

## bench: the year: a week and a 52-week backfill of three tiers from empty lakes, the warm runner's per-step overhead, Snakemake's floor, a version bump, no-op and dry runs, the first `make run`, peak memory; on 52 weeks: spine verify, every calculation in process; the reconciliation's share of a full week's gate
bench: $(BIN)/snakemake
	$(RUN) $(BIN)/python tests/benchmarks/gates.py
	$(RUN) $(BIN)/python tests/benchmarks/weekly_update.py
	$(RUN) $(BIN)/python tests/benchmarks/verify.py
	$(RUN) $(BIN)/python tests/benchmarks/derive.py

## faults: kill -9 at write k, damage to every layer, readers during writes (prints what survived)
faults: $(BIN)/snakemake
	$(RUN) $(BIN)/python tests/benchmarks/faults.py

# Snakemake's advice to give every rule a conda environment or container does not apply: the
# whole DAG runs in this one locked .venv. Any other lint, or a Snakefile that does not load,
# fails the target.
LINT_ADVICE := Specify a conda environment or container for each rule.

## lint: Snakemake's own linter on the Snakefile (its per-rule conda/container advice passes)
lint: $(BIN)/snakemake
	@out="$$($(RUN) $(BIN)/snakemake --lint 2>&1)"; status=$$?; printf '%s\n' "$$out"; \
	if [ $$status -ne 0 ] && ! printf '%s\n' "$$out" | grep -q '^Lints for'; then exit $$status; fi; \
	if printf '%s\n' "$$out" | grep '^ *\* ' | grep -vqF '$(LINT_ADVICE)'; then exit 1; fi

## clean-lake: delete the generated lake (data/) and Snakemake's state (.snakemake/); needs CONFIRM=yes
clean-lake:
	@found="$$(ls -d data .snakemake 2>/dev/null)"; \
	if [ -z "$$found" ]; then echo "Nothing to delete: no data/ or .snakemake/ here."; exit 0; fi; \
	if [ "$(CONFIRM)" = yes ]; then echo "Deleting:"; else echo "Would delete:"; fi; \
	du -sh $$found | sed 's/^/  /'; \
	if [ "$(CONFIRM)" != yes ]; then echo "Nothing deleted: run 'make clean-lake CONFIRM=yes'." >&2; exit 1; fi; \
	rm -rf -- $$found

## lock: re-pin requirements.lock from pyproject.toml (LOCK_ARGS=--upgrade moves every pin to the newest release)
# The exact command (uv 0.13.9 = UV_VERSION, installed into .venv; pip and the setuptools that
# builds the project are pinned too, from stdin), run in the repository root:
#   printf 'pip\nsetuptools>=68\n' | uv pip compile pyproject.toml - --extra dev \
#     --python-version 3.11 --python-platform x86_64-unknown-linux-gnu --generate-hashes \
#     --custom-compile-command "make lock" --output-file requirements.lock
# It reads [tool.uv] in pyproject.toml, which keeps rfc3987-syntax out (see the comment there),
# and keeps the lock's current pins where they still fit unless LOCK_ARGS says otherwise.
# "3.11" means every 3.11.x, so a release that needs a later 3.11.x is not picked (soupsieve
# stays at 2.x: 3.x needs 3.11.5).
lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv==$(UV_VERSION)
	printf 'pip\nsetuptools>=68\n' | $(BIN)/uv pip compile pyproject.toml - --extra dev \
	  --python-version 3.11 --python-platform x86_64-unknown-linux-gnu --generate-hashes \
	  --custom-compile-command "make lock" --output-file $(LOCK) --quiet $(LOCK_ARGS)
	@if grep -q '^rfc3987-syntax==' $(LOCK); then echo "rfc3987-syntax is in $(LOCK): see [tool.uv] in pyproject.toml" >&2; exit 1; fi

## help: this list
help:
	@awk 'sub(/^## /, "") { i = index($$0, ": "); printf "  make %-14s %s\n", substr($$0, 1, i - 1), substr($$0, i + 2) }' $(MAKEFILE_LIST)
