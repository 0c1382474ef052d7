"""Delete Airflow task logs older than the retention period (local base_log_folder only)."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Variable, dag, task


@dag(
    dag_id="cleanup_old_logs",
    schedule="30 3 * * *",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["maintenance", "logs"],
    default_args={"owner": "airflow-admins", "retries": 1, "retry_delay": timedelta(minutes=5)},
)
def cleanup_old_logs():
    @task(multiple_outputs=False)  # one result dict, not one XCom per key
    def delete_old_logs() -> dict:
        import os
        import time

        from airflow.configuration import conf

        root = conf.get("logging", "base_log_folder")
        days = int(Variable.get("log_retention_days", default="30"))
        dry_run = Variable.get("log_cleanup_dry_run", default="false").lower() == "true"
        cutoff = time.time() - days * 86400
        removed = 0
        for folder, _dirs, files in os.walk(root, topdown=False):
            for name in files:
                path = os.path.join(folder, name)
                if os.path.getmtime(path) < cutoff:
                    removed += 1
                    if not dry_run:
                        os.remove(path)
            if not dry_run and folder != root and not os.listdir(folder):
                os.rmdir(folder)
        return {"root": root, "older_than_days": days, "removed": removed, "dry_run": dry_run}

    delete_old_logs()


cleanup_old_logs()
