# Every target bootstraps .venv with uv (installing uv with pip when it is missing), so a fresh
# machine needs nothing but python3 and git.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.dagops-installed
# Cache bytecode in .venv even where the environment disables it: it halves Airflow's start-up.
export PYTHONDONTWRITEBYTECODE :=
PYTEST_ARGS ?=

.PHONY: run stop test test-fast test-slow bench lint audit clean venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	@UV="$$(PYTHON=$(PYTHON) bash scripts/uv.sh)" && \
	  { test -x $(BIN)/python || $$UV venv --quiet --python $(PYTHON) $(VENV); } && \
	  $$UV pip install --quiet --python $(BIN)/python -e ".[dev]"
	@touch $@

# `make run` serves Airflow with dagops at http://localhost:8080 until Ctrl-C or `make stop` (from another shell),
# which end every process it started. DAGOPS_RUN_HOME (default .airflow) picks the instance.
run: $(STAMP)
	bash scripts/run.sh

stop:
	@$(BIN)/python scripts/make_run.py stop "$${DAGOPS_RUN_HOME:-$(CURDIR)/.airflow}"

# `make test` (what README names and CI runs) is the whole suite in one parallel run, so the workers keep busy while
# a `slow` test (multi-process deployments, fault injection, the first hour of `make run`) waits minutes on Airflow's
# scheduler; `make test-fast` leaves the slow ones out, `make test-slow` runs only them. Three pytest-xdist workers
# on 2 cores: the tests sharing one real Airflow (a quarter of the run) mostly wait on its processes, and two workers
# keep the CPUs busy meanwhile (with two, they were half idle for that part); then the `serial` tests that time
# themselves, alone; only their files are collected, and none at all when no test is marked `serial`. TEST_WORKERS=0 runs
# everything in one process. `--dist loadgroup`: the tests sharing one real Airflow (tests/helpers/airflow.py) run on
# one worker, which starts it once; every other test is spread as with the default `load`, the `e2e` and `slow` ones
# first (tests/conftest.py).
TEST_WORKERS ?= 3
XDIST = $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadgroup)
SERIAL_FILES = $$(grep -rlE --include='test_*.py' 'mark\.serial\b' tests)
define serial_tests
	files="$(SERIAL_FILES)"; [ -z "$$files" ] || $(BIN)/pytest -m '$(1)' $$files $(PYTEST_ARGS) || [ $$? -eq 5 ]
endef

test-fast: $(STAMP)
	$(BIN)/pytest -m 'not slow and not serial' $(XDIST) --durations=20 $(PYTEST_ARGS)
	$(call serial_tests,serial and not slow)

test-slow: $(STAMP)
	$(BIN)/pytest -m 'slow and not serial' $(XDIST) --durations=20 $(PYTEST_ARGS)
	$(call serial_tests,serial and slow)

test: $(STAMP)
	$(BIN)/pytest -m 'not serial' $(XDIST) --durations=30 $(PYTEST_ARGS)
	$(call serial_tests,serial)

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run --output BENCHMARKS.md

lint: $(STAMP)
	$(BIN)/ruff check airflow_dagops meta_dags tests benchmarks
	$(BIN)/ruff format --check airflow_dagops meta_dags tests benchmarks
	$(BIN)/bandit -q -r airflow_dagops --severity-level high
	$(BIN)/mypy

# pip-audit over the resolved dependencies; says "skipped" where no vulnerability service answers.
audit: $(STAMP)
	$(BIN)/python scripts/pip_audit.py

clean:
	rm -rf $(VENV) .airflow benchmarks/.work test-artifacts .pytest_cache .ruff_cache
	find . -name __pycache__ -prune -exec rm -rf {} +
