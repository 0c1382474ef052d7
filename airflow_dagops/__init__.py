"""airflow-dagops: GitOps for Apache Airflow DAGs, running inside Airflow 3."""

from __future__ import annotations

__version__ = "0.1.0"
