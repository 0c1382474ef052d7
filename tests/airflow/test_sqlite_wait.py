"""`make run`'s SQLite metadata DB waits for its writer (airflow_dagops/airflow/sqlite_wait.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
READ = (
    "import json; from airflow_dagops.airflow import sqlite_wait as w; "
    "print(json.dumps([w.CONNECT_ARGS, w.CONNECT_ARGS_ASYNC, w.CONNECT_ARGS is w.CONNECT_ARGS_ASYNC]))"
)


def _args_with(connection: str, tmp_path: Path) -> list:
    env = {"PATH": "/usr/bin:/bin", "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": connection}
    done = subprocess.run([sys.executable, "-c", READ], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_sqlite_waits_a_minute_for_the_writer_and_other_databases_get_nothing(tmp_path):
    assert _args_with(f"sqlite:///{tmp_path}/airflow.db", tmp_path) == [{"timeout": 60}, {"timeout": 60}, False]
    assert _args_with("postgresql+psycopg2://u@127.0.0.1/db", tmp_path) == [{}, {}, False]


def test_make_run_uses_them():
    script = (ROOT / "scripts" / "run.sh").read_text()
    assert "SQL_ALCHEMY_CONNECT_ARGS=airflow_dagops.airflow.sqlite_wait.CONNECT_ARGS\n" in script
    assert "SQL_ALCHEMY_CONNECT_ARGS_ASYNC=airflow_dagops.airflow.sqlite_wait.CONNECT_ARGS_ASYNC\n" in script
