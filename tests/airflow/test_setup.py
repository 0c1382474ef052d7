"""`dagops init`, the dagops DAG bundle in airflow.cfg, provider metadata and the system DAG."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from airflow_dagops import paths
from airflow_dagops.airflow import setup as airflow_setup
from airflow_dagops.airflow.provider_info import get_provider_info
from airflow_dagops.airflow.setup import set_option
from airflow_dagops.settings import OPTIONS


def test_set_option_replaces_a_multi_line_value_and_keeps_the_rest():
    text = (
        '# comment\n[core]\nx = 1\n\n[dag_processor]\n# keep me\ndag_bundle_config_list = [\n    {"a": 1}\n  ]\n'
        "other = 2\n"
    )
    updated = set_option(text, "dag_processor", "dag_bundle_config_list", "[]")
    assert updated == "# comment\n[core]\nx = 1\n\n[dag_processor]\n# keep me\ndag_bundle_config_list = []\nother = 2\n"
    assert set_option("[core]\nx = 1\n", "dag_processor", "k", "v") == "[core]\nx = 1\n\n[dag_processor]\nk = v\n"
    assert set_option("[dag_processor]\nz = 1\n", "dag_processor", "k", "v") == "[dag_processor]\nk = v\nz = 1\n"


def test_the_bundle_is_added_once_and_keeps_other_bundles():
    others = [
        {"name": "dags-folder", "classpath": "x", "kwargs": {}},
        {"name": "dagops", "classpath": "old", "kwargs": {"path": "/old"}},
    ]
    bundles = airflow_setup.with_dagops_bundle(others)  # publish_mode = bundle, the default
    assert [b["name"] for b in bundles] == ["dags-folder", "dagops", paths.RELEASES_BUNDLE]
    assert bundles[1]["kwargs"]["path"] == str(paths.meta_dags_dir())
    assert [b["name"] for b in airflow_setup.with_dagops_bundle(others, mode="symlinks")] == ["dags-folder", "dagops"]
    assert (paths.meta_dags_dir() / "dagops_sync.py").is_file()


def test_dagops_init_writes_airflow_cfg_idempotently(dagops_env):
    env = {**dagops_env.env()}
    env.pop("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", None)
    for _ in range(2):
        result = subprocess.run(
            [sys.executable, "-m", "airflow_dagops.cli.main", "init"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
    cfg = (dagops_env.airflow_home / "airflow.cfg").read_text()
    options = [line for line in cfg.splitlines() if line.startswith("dag_bundle_config_list")]
    assert len(options) == 1
    value = json.loads(options[0].split("dag_bundle_config_list = ", 1)[1])
    # Airflow's own defaults were written first, as any `airflow` command would: among them the JWT secret every
    # Airflow process must share (a file with only our option would leave each process making up its own).
    assert re.search(r"^jwt_secret = \S+", cfg, re.MULTILINE)
    assert [b["name"] for b in value] == ["dags-folder", "dagops", paths.RELEASES_BUNDLE]  # the default mode's
    assert "already configured" in result.stdout
    for folder in ("mirrors", "releases", "locks"):
        assert (dagops_env.dagops_home / folder).is_dir()


def test_provider_info_lists_every_option_and_matches_airflows_schema():
    import airflow
    import jsonschema

    info = get_provider_info()
    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    jsonschema.validate(info, schema)  # an invalid provider info breaks every `airflow` command
    options = info["config"]["dagops"]["options"]
    assert set(options) == set(OPTIONS) and options["releases_to_keep"]["default"] == "5"


def test_the_system_dag_parses_with_sense_then_mapped_sync(dagops_env, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(paths.meta_dags_dir()))
    assert bag.import_errors == {}
    dag = bag.dags["dagops_sync"]
    assert dag.max_active_runs == 1 and dag.catchup is False
    assert set(dag.task_dict) == {"sense", "sync"}
    assert dag.task_dict["sync"].upstream_task_ids == {"sense"}
    assert "dagops" in dag.tags


def test_airflow_lists_the_plugin_the_provider_and_the_dagops_config(dagops_env):
    env = {**dagops_env.env(), "AIRFLOW__DAGOPS__RELEASES_TO_KEEP": "7"}
    airflow = str(Path(sys.executable).parent / "airflow")

    def run(*args: str) -> str:
        result = subprocess.run([airflow, *args], env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert run("config", "get-value", "dagops", "releases_to_keep").strip() == "7"
    assert "git_timeout" in run("config", "list", "--section", "dagops")
    assert "airflow-dagops" in run("providers", "list")
    # JSON, not the table: the table is cut to the terminal's width.
    plugins = {plugin["name"]: plugin for plugin in json.loads(run("plugins", "--output", "json"))}
    assert "airflow_dagops.plugin:DagOpsPlugin" in plugins["dagops"]["source"]
