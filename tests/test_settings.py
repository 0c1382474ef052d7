"""settings.py's fast reader answers every setting dagops reads as Airflow's own `conf` does, on the same
environment and airflow.cfg, defaults included; where it cannot be sure, Airflow answers.

Airflow's `conf` is read in a fresh subprocess per case: this test process imported Airflow (and froze its
AIRFLOW_HOME) at start-up, so only a new interpreter sees each case's environment as a `dagops` command would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_dagops import settings

# Every setting dagops reads through settings.py: its own [dagops] options and Airflow's that it knows.
SETTINGS = [(settings.SECTION, name, option.default) for name, option in settings.OPTIONS.items()]
SETTINGS += [(section, key, "") for section, key in settings.AIRFLOW_OPTIONS]

AIRFLOW_ANSWERS = """
import json, sys
from airflow.configuration import conf
wanted = json.loads(sys.argv[1])
print(json.dumps([conf.get(section, key, fallback=fallback) for section, key, fallback in wanted]))
"""

CFG = """\
[core]
dags_folder = $DAGS_ROOT/dags
unit_test_mode = False
load_examples = False

[api]
base_url = https://airflow.example.com/

[dagops]
dagops_home = ~/dagops-home
sql_alchemy_conn = postgresql+psycopg2://dagops:p%%40ss@db/dagops
releases_to_keep = 7
allowed_protocols = https:ssh
validation_skip = security , policy
"""


def _clean_environment(home: Path, extra: dict[str, str]) -> dict[str, str]:
    """The test process's environment without any Airflow setting, pointed at `home`, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "AIRFLOW_CONFIG"))}
    return {**env, "AIRFLOW_HOME": str(home), "DAGS_ROOT": str(home / "root"), **extra}


def _airflow_answers(env: dict[str, str]) -> list[str | None]:
    wanted = json.dumps([[section, key, fallback] for section, key, fallback in SETTINGS])
    done = subprocess.run(
        [sys.executable, "-c", AIRFLOW_ANSWERS, wanted], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _use(env: dict[str, str], monkeypatch) -> None:
    """Make `env` this process's whole environment for the test."""
    for key in list(os.environ):
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)


def _fast_answers(env: dict[str, str], monkeypatch) -> list[str | None]:
    _use(env, monkeypatch)
    reader = settings._FastReader()
    return [reader.get(section, key, fallback) for section, key, fallback in SETTINGS]


CASES = {
    "defaults: no airflow.cfg, no variables": ({}, None),
    "airflow.cfg only (%% and $VAR and ~ in values)": ({}, CFG),
    "variables over airflow.cfg, expanded": (
        {
            "AIRFLOW__DAGOPS__DAGOPS_HOME": "$DAGS_ROOT/from-env",
            "AIRFLOW__DAGOPS__GIT_TIMEOUT": "30",
            "AIRFLOW__CORE__DAGS_FOLDER": "~/env-dags",
            "AIRFLOW__API__BASE_URL": "",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "false",
        },
        CFG,
    ),
    "AIRFLOW_CONFIG names another file": ({"AIRFLOW_CONFIG": "$DAGS_ROOT/elsewhere.cfg"}, CFG),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_the_fast_reader_answers_as_airflow_does(case, tmp_path, monkeypatch):
    extra, cfg = CASES[case]
    env = _clean_environment(tmp_path, extra)
    (tmp_path / "root").mkdir()
    if cfg is not None:
        target = tmp_path / "root" / "elsewhere.cfg" if "AIRFLOW_CONFIG" in extra else tmp_path / "airflow.cfg"
        target.write_text(cfg)
    expected = _airflow_answers(env)
    assert _fast_answers(env, monkeypatch) == expected
    if cfg is not None:  # the case really read the file (not only defaults)
        assert "postgresql+psycopg2://dagops:p%40ss@db/dagops" in expected


def test_airflow_default_airflow_cfg_is_read_fast(tmp_path, monkeypatch):
    """The airflow.cfg Airflow writes on its first run holds `unit_test_mode = False` and a [dagops] section."""
    env = _clean_environment(tmp_path, {})
    subprocess.run(
        [sys.executable, "-m", "airflow", "config", "list"], env=env, capture_output=True, check=True, timeout=120
    )
    assert "unit_test_mode = False" in (tmp_path / "airflow.cfg").read_text()
    assert _fast_answers(env, monkeypatch) == _airflow_answers(env)


@pytest.mark.parametrize(
    ("extra", "cfg"),
    [
        ({"AIRFLOW__DAGOPS__SQL_ALCHEMY_CONN_CMD": "echo sqlite://"}, None),
        ({"AIRFLOW__DAGOPS__SQL_ALCHEMY_CONN_SECRET": "dagops/db"}, None),
        ({}, "[dagops]\nsql_alchemy_conn_cmd = echo sqlite://\n"),
        ({}, "[dagops]\nsql_alchemy_conn_secret = dagops/db\n"),
        ({"AIRFLOW__CORE__UNIT_TEST_MODE": "True"}, None),
        ({}, "[core]\nunit_test_mode = true\n"),
        ({}, "[core]\nairflow_home = /elsewhere\n"),
        ({}, "[dagops]\nsql_alchemy_conn = 50%\n"),  # a bad %-interpolation: Airflow raises its own error
        ({}, "[dagops]\nsql_alchemy_conn = a\nsql_alchemy_conn = b\n"),  # configparser's strict mode refuses
    ],
)
def test_the_fast_reader_leaves_what_only_airflow_resolves_to_airflow(extra, cfg, tmp_path, monkeypatch):
    env = _clean_environment(tmp_path, extra)
    if cfg is not None:
        (tmp_path / "airflow.cfg").write_text(cfg)
    with pytest.raises(settings._Unsure):
        _fast_answers(env, monkeypatch)


def test_a_deprecated_name_in_use_is_left_to_airflow(tmp_path, monkeypatch):
    _use(_clean_environment(tmp_path, {"AIRFLOW__WEBSERVER__BASE_URL": "https://old.example.com"}), monkeypatch)
    with pytest.raises(settings._Unsure):
        settings._FastReader().get("api", "base_url", "")
    assert settings._FastReader().get(settings.SECTION, "git_timeout", "120") == "120"  # other settings stay fast


def test_the_settings_it_knows_match_airflows_defaults_and_deprecations():
    from airflow.configuration import conf

    for (section, key), (default, deprecated) in settings.AIRFLOW_OPTIONS.items():
        described = conf.configuration_description[section]["options"][key]
        assert described["default"] == default
        assert conf.deprecated_options.get((section, key), (None, None, None))[:2] == (deprecated or (None, None))


def test_without_airflow_loaded_dagops_reads_settings_without_importing_it(tmp_path):
    """A fresh process (a `dagops` command) reads its settings without Airflow, and asks Airflow only when unsure."""
    probe = (
        "import sys; from airflow_dagops import settings; "
        "print(settings.public_base_url(), settings.get('git_timeout'), 'airflow.configuration' in sys.modules)"
    )
    (tmp_path / "airflow.cfg").write_text("[api]\nbase_url = https://new.example.com/\n")
    fast = subprocess.run(
        [sys.executable, "-c", probe], env=_clean_environment(tmp_path, {}), capture_output=True, text=True
    )
    assert fast.stdout.split() == ["https://new.example.com", "120", "False"], fast.stderr[-2000:]
    (tmp_path / "airflow.cfg").write_text("[webserver]\nbase_url = https://old.example.com/\n")
    unsure = subprocess.run(
        [sys.executable, "-c", probe], env=_clean_environment(tmp_path, {}), capture_output=True, text=True
    )
    assert unsure.stdout.splitlines()[-1].split() == ["https://old.example.com", "120", "True"], unsure.stderr[-2000:]
