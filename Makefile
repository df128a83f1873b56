# hfsize developer tasks. `make install` sets up .venv; every other target uses it.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install test lint format bench sweep clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

# torch is pinned to the CPU build first so no later requirement pulls multi-GB CUDA wheels.
install: $(BIN)/python
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test]'

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check inspector tests scripts
	$(BIN)/ruff format --check inspector tests scripts

format: install
	$(BIN)/ruff format inspector tests scripts
	$(BIN)/ruff check --fix inspector tests scripts

bench: install
	$(BIN)/python scripts/bench.py

# Every causal-LM model type of the installed transformers: hfsize's cache figure vs transformers' own cache
# (about 5 minutes on 2 cores); rewrites the committed table.
sweep: install
	$(BIN)/python scripts/sweep_cache.py --out docs/cache-sweep.md

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
