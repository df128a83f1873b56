# hfsize developer tasks. `make install` sets up .venv; every other target uses it.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The tested versions (constraints.txt); `make test-latest` runs the suite without them in its own venv.
PIN := -c constraints.txt
LATEST_VENV ?= .venv-latest
LATEST := $(LATEST_VENV)/bin

.PHONY: install test test-latest lint format bench sweep clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

# torch is pinned to the CPU build first so no later requirement pulls multi-GB CUDA wheels.
install: $(BIN)/python
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(PIN) torch==2.13.0
	$(BIN)/pip install -q $(PIN) -e '.[exact,test]'

test: install
	$(BIN)/python -m pytest -q

# The suite against the newest releases hfsize's bounds allow (torch stays the pinned CPU build: the newest one
# on PyPI is a CUDA build of several GB); prints each version that differs from constraints.txt before the tests.
test-latest:
	rm -rf $(LATEST_VENV)
	$(PY) -m venv $(LATEST_VENV)
	echo 'torch==2.13.0' > $(LATEST_VENV)/torch-pin.txt
	$(LATEST)/pip install -q --upgrade pip
	$(LATEST)/pip install -q -c $(LATEST_VENV)/torch-pin.txt torch
	$(LATEST)/pip install -q -c $(LATEST_VENV)/torch-pin.txt --upgrade --upgrade-strategy eager -e '.[exact,test]'
	$(LATEST)/pip freeze --exclude-editable | $(LATEST)/python scripts/versions.py constraints.txt
	$(LATEST)/python -m pytest -q

lint: install
	$(BIN)/ruff check inspector tests scripts
	$(BIN)/ruff format --check inspector tests scripts

format: install
	$(BIN)/ruff format inspector tests scripts
	$(BIN)/ruff check --fix inspector tests scripts

# hf-mem, the peer the benchmark runs side by side, in its own venv (it must never share hfsize's packages).
HFMEM_VENV ?= .venv-hfmem

$(HFMEM_VENV)/bin/hf-mem:
	$(PY) -m venv $(HFMEM_VENV)
	$(HFMEM_VENV)/bin/pip install -q hf-mem==0.5.6

bench: install $(HFMEM_VENV)/bin/hf-mem
	$(BIN)/python scripts/bench.py --hf-mem-python $(HFMEM_VENV)/bin/python

# Every causal-LM model type of the installed transformers: hfsize's cache figure vs transformers' own cache
# (about 5 minutes on 2 cores); rewrites the committed table.
sweep: install
	$(BIN)/python scripts/sweep_cache.py --out docs/cache-sweep.md

clean:
	rm -rf $(VENV) $(LATEST_VENV) $(HFMEM_VENV) .pytest_cache build *.egg-info
