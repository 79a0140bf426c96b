# Quick start: `make run` then `make test`. Both bootstrap .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export NUMBA_CACHE_DIR ?= $(CURDIR)/.numba_cache
export MPLBACKEND ?= Agg

.PHONY: run test test-portable lint bench bench-batch figures notebooks docs clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/sim run scenarios/eth_crash.toml

test: $(STAMP)
	$(BIN)/python -m pytest -q

# The suite as another x86-64 CPU computes it (README, "Reproducibility"): numba compiles for
# a generic CPU (no AVX, no FMA), numpy's SIMD loops above its baseline are switched off (the
# ones this CPU has, e.g. X86_V3 X86_V4 AVX512_ICL), OpenBLAS uses its Sandy Bridge kernels
# and glibc's libm its non-FMA variants. Results then differ in the last bits; the tests'
# tolerances must hold. Own numba cache: code compiled for the host must not be reused.
NPY_SIMD := from numpy.core._multiarray_umath import __cpu_dispatch__ as d, __cpu_features__ as f
test-portable: $(STAMP)
	NUMBA_CACHE_DIR=$(CURDIR)/.numba_cache_portable NUMBA_CPU_NAME=generic \
	NPY_DISABLE_CPU_FEATURES="$$($(BIN)/python -W ignore -c '$(NPY_SIMD); print(*[x for x in d if f.get(x)])')" \
	OPENBLAS_CORETYPE=Sandybridge GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX2,-FMA \
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check sim tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

bench-batch: $(STAMP)
	$(BIN)/python benchmarks/batch.py

# The two charts of docs/charts.md, drawn by the project from the shipped scenarios.
figures: $(STAMP)
	$(BIN)/sim run scenarios/eth_crash.toml --out results/eth_crash
	$(BIN)/sim run scenarios/contagion_exploit.toml --out results/contagion_exploit
	mkdir -p docs/images
	$(BIN)/sim plot results/eth_crash --kind cascade --format png --out docs/images
	$(BIN)/sim plot results/contagion_exploit --kind contagion --format png --out docs/images

# The field reference of scenario files, written from the schema (a test checks it is current).
docs: $(STAMP)
	$(BIN)/sim schema --markdown > docs/scenario-fields.md

# JupyterLab on the notebooks (installs the jupyter extra into .venv first).
notebooks: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[jupyter]"
	$(BIN)/jupyter lab notebooks/

clean:
	rm -rf .numba_cache .numba_cache_portable results/*/ .pytest_cache
