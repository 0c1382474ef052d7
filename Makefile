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

.PHONY: run stop test test-slow bench lint audit clean venv

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

# `slow` tests (multi-process deployments, fault injection) run in their own target; CI calls both.
# Two pytest-xdist workers (most tests wait on git, Airflow and sandboxes, not on the CPU), then the few
# `serial` tests that time themselves, alone. TEST_WORKERS=0 runs everything in one process.
# `--dist loadgroup`: the e2e tests sharing one real Airflow (tests/helpers/airflow.py) run on one worker, which
# starts it once; every other test is spread as with the default `load`.
TEST_WORKERS ?= 2
test: $(STAMP)
	$(BIN)/pytest -m 'not slow and not serial' $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadgroup) --durations=20 $(PYTEST_ARGS)
	$(BIN)/pytest -m 'serial and not slow' $(PYTEST_ARGS) || [ $$? -eq 5 ]

test-slow: $(STAMP)
	$(BIN)/pytest -m slow $(PYTEST_ARGS)

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
