# Quick start: `make run` then `make test`. Both bootstrap .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export NUMBA_CACHE_DIR ?= $(CURDIR)/.numba_cache
export MPLBACKEND ?= Agg

.PHONY: run test lint bench bench-batch figures notebooks clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/sim run scenarios/eth_crash.toml

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check sim tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

bench-batch: $(STAMP)
	$(BIN)/python benchmarks/batch.py

# The README's two charts, drawn by the project from the shipped scenarios.
figures: $(STAMP)
	$(BIN)/sim run scenarios/eth_crash.toml --out results/eth_crash
	$(BIN)/sim run scenarios/contagion_exploit.toml --out results/contagion_exploit
	mkdir -p docs/images
	$(BIN)/sim plot results/eth_crash --kind cascade --format png --out docs/images
	$(BIN)/sim plot results/contagion_exploit --kind contagion --format png --out docs/images

# JupyterLab on the notebooks (installs the jupyter extra into .venv first).
notebooks: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[jupyter]"
	$(BIN)/jupyter lab notebooks/

clean:
	rm -rf .numba_cache results/*/ .pytest_cache
