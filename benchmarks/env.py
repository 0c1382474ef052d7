"""Environment of the benchmark process: one throwaway Airflow home and dagops installations under a work dir.

Airflow reads AIRFLOW_HOME and the bundle storage path when it is imported, so `prepare` must run before
anything imports airflow or airflow_dagops. dagops reads its own settings from the environment on every
call, which lets each measurement switch to a fresh installation with `use_installation`.
"""

from __future__ import annotations

import os
from pathlib import Path

DAGOPS_HOME = "AIRFLOW__DAGOPS__DAGOPS_HOME"
STATE_DB = "AIRFLOW__DAGOPS__SQL_ALCHEMY_CONN"
DAGS_FOLDER = "AIRFLOW__CORE__DAGS_FOLDER"


def prepare(work: Path) -> None:
    """Set the process-wide Airflow variables (before airflow is imported) and a first installation."""
    home = work / "airflow-home"
    home.mkdir(parents=True)
    os.environ["AIRFLOW_HOME"] = str(home)
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH"] = str(work / "bundle-storage")
    # GitDagBundle logs every clone at INFO; keep the benchmark's output to its own progress lines.
    os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"
    set_installation(work / "engine")


def set_installation(root: Path) -> None:
    """Point dagops at `root`: its home (mirrors, releases, locks), a SQLite state DB and a dags folder."""
    (root / "dags").mkdir(parents=True, exist_ok=True)
    os.environ[DAGOPS_HOME] = str(root / "dagops")
    os.environ[STATE_DB] = f"sqlite:///{root / 'dagops' / 'dagops.db'}"
    os.environ[DAGS_FOLDER] = str(root / "dags")


def use_installation(root: Path) -> None:
    """Switch to the installation at `root` and create its state DB schema (outside any timer)."""
    from airflow_dagops.store import db

    set_installation(root)
    db.migrate()
