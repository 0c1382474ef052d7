"""A corpus in the styles of public Airflow 3 repositories (tests/fixtures/real/corpus): what a plain DagBag loads
cleanly, dagops passes without a single error.

Styles: TaskFlow with `airflow.sdk`, default_args with callbacks from an Astronomer-style `include/` package, a
provider example DAG (chain(), watcher and get_test_run imports guarded by try/except), Asset schedules (a list and
an `|` expression), dynamic task mapping (partial/expand, expand_kwargs), a YAML-driven DAG factory registering DAGs
through `globals()`, branching with a reschedule sensor, Airflow 2/3 import shims, Params and templates with a
custom operator, a virtualenv task and `dag.test()` under the main guard; plus the repository's own pytest checks in
`tests/`, which `.airflowignore` keeps from Airflow.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from airflow_dagops.validate import validate

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "real" / "corpus"
DAG_IDS = {
    "assets_consumer",
    "assets_either",
    "assets_producer",
    "branch_and_sensor",
    "compat_both_airflows",
    "everyday_patterns",
    "example_s3_provider_style",
    "factory_finance",
    "factory_marketing",
    "mapped_partitions",
    "params_and_templates",
    "taskflow_orders",
}


@pytest.fixture
def repo(tmp_path) -> Path:
    return Path(shutil.copytree(CORPUS, tmp_path / "repo"))


def test_a_plain_dagbag_loads_the_corpus_cleanly(repo, monkeypatch):
    """Airflow's own loader, as the dag-processor runs it: the repository root on sys.path (the dags folder)."""
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.syspath_prepend(str(repo))
    try:
        bag = DagBag(dag_folder=str(repo), safe_mode=True)
    finally:
        for name in [m for m in sys.modules if m == "include" or m.startswith("include.")]:
            del sys.modules[name]  # the corpus's helper package must not leak into other tests
    assert bag.import_errors == {}
    assert set(bag.dags) == DAG_IDS


def test_dagops_reports_no_error_on_the_corpus(repo, tmp_path):
    report = validate(repo, cache_path=tmp_path / "cache.db")
    assert report.errors == [], [(f.rule, f.file, f.line, f.message) for f in report.errors]
    assert {d.dag_id for d in report.dags} == DAG_IDS
    # Guarded imports of the providers' test utilities are a working shim, not a missing module.
    assert not [f for f in report.findings if f.rule.startswith("missing-module") and f.severity != "info"]
    # The repository's own tests are ignored by .airflowignore: never imported, never a DAG-file finding.
    assert not [f for f in report.findings if f.file == "tests/dag_integrity.py" and f.severity != "info"]
