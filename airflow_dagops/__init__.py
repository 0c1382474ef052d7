"""airflow-dagops: GitOps for Apache Airflow DAGs, running inside Airflow 3."""

from __future__ import annotations

from airflow_dagops import pyast

__version__ = "0.1.0"

# Before anything parses Python in a second thread (validation does): see pyast.py.
pyast.install()
