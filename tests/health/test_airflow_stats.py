"""The one piece of Airflow's private state dagops reads (airflow_dagops/metrics.py `set_up_by_airflow`): whether a
process's Stats module was set up by Airflow. Airflow has no public way to ask; if it renames or drops what this
relies on, these tests fail and name the function to update, instead of metrics quietly going to a second backend."""

from __future__ import annotations

import importlib
import types

import pytest

from airflow_dagops import metrics


@pytest.mark.parametrize("module_name", metrics.AIRFLOW_STATS_MODULES)
def test_airflows_initialize_is_what_set_up_by_airflow_sees(module_name, monkeypatch):
    module = importlib.import_module(module_name)
    from airflow._shared.observability.metrics.base_stats_logger import NoStatsLogger

    # Keep this process's Stats as it was, whatever the test does to it.
    for name in ("_factory", "_backend", "_export_legacy_names"):
        monkeypatch.setattr(module, name, getattr(module, name))
    monkeypatch.setattr(module, "_factory", None)
    assert metrics.set_up_by_airflow(module) is False
    module.initialize(factory=NoStatsLogger, export_legacy_names=True)  # what Airflow's processes call
    assert metrics.set_up_by_airflow(module) is True


def test_a_stats_module_of_unknown_shape_fails_loudly():
    changed = types.ModuleType("airflow._shared.observability.metrics.stats")
    with pytest.raises(RuntimeError, match="set_up_by_airflow"):
        metrics.set_up_by_airflow(changed)


def test_the_public_stats_names_are_the_modules_dagops_checks():
    """`_set_up_core_stats` initializes through Airflow's public module; `_stats` then finds it set up under the
    private name it checks: the public functions must be that module's own."""
    from airflow.observability import stats as core
    from airflow.sdk.observability import stats as task_sdk

    sdk_private, core_private = (importlib.import_module(name) for name in metrics.AIRFLOW_STATS_MODULES)
    assert core.initialize is core_private.initialize and core.incr is core_private.incr
    assert task_sdk.initialize is sdk_private.initialize
