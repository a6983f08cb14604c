# Market Spine: the commands a newcomer needs. Everything runs in .venv, built from pyproject.toml.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= 2

.PHONY: run test lab bench lint clean-lake

$(BIN)/snakemake: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

## run: the weekly update on the embedded synthetic source, then where the reports are
run: $(BIN)/snakemake
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/snakemake --cores $(CORES) $(ARGS)
	@echo ""
	@echo "Reports: $(CURDIR)/data/reports/weekly/"
	@ls -1 data/reports/weekly/ 2>/dev/null | sed 's/^/  /'

## test: the whole test suite
test: $(BIN)/snakemake
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest $(PYTEST_ARGS)

## lab: JupyterLab on the notebooks
lab: $(BIN)/snakemake
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/jupyter lab notebooks/

## bench: one full week of all three tiers from an empty lake, then a no-op rerun
bench: $(BIN)/snakemake
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python benchmarks/weekly_update.py

## lint: Snakemake's own linter on the Snakefile
lint: $(BIN)/snakemake
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/snakemake --lint
