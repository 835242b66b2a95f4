# Two commands on a fresh machine: `make demo` (main job) and `make test` (the test suite).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml constraints/cpu.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints/cpu.txt torch
	$(PY) -m pip install --quiet -c constraints/cpu.txt -e '.[dev,flower,opacus]'
	# byzfl (cross-checks, benchmarks) without its dependencies: its torchvision pulls CUDA torch
	$(PY) -m pip install --quiet --no-deps byzfl==0.0.11
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/trilemma demo
	$(VENV)/bin/trilemma reproduce all --quick --out results --no-progress

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check trilemma tests benchmarks
	$(VENV)/bin/ruff format --check trilemma tests benchmarks
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) benchmarks/bench_accountants.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
