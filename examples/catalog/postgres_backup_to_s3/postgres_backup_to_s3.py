"""Nightly pg_dump of a Postgres database, uploaded to S3 or MinIO, with a retention period.

The provider hooks are imported inside the tasks: the DAG parses on any Airflow, and a worker without the
providers fails the task with a clear ImportError instead of breaking the whole DAG file.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Variable, dag, task


@dag(
    dag_id="postgres_backup_to_s3",
    schedule="0 2 * * *",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["backup", "postgres", "s3"],
    default_args={"owner": "data-platform", "retries": 2, "retry_delay": timedelta(minutes=5)},
)
def postgres_backup_to_s3():
    @task
    def dump_database(data_interval_end=None) -> str:
        import os
        import subprocess
        import tempfile

        from airflow.providers.postgres.hooks.postgres import PostgresHook

        connection = PostgresHook(postgres_conn_id=Variable.get("pg_backup_conn_id", "postgres_default"))
        conn = connection.get_connection(connection.postgres_conn_id)
        target = os.path.join(tempfile.mkdtemp(prefix="pg-backup-"), f"{data_interval_end:%Y-%m-%d}.dump")
        subprocess.run(
            [
                "pg_dump",
                "--format=custom",
                "--host",
                conn.host,
                "--port",
                str(conn.port or 5432),
                "--username",
                conn.login,
                "--file",
                target,
                conn.schema,
            ],
            env={**os.environ, "PGPASSWORD": conn.password or ""},
            check=True,
        )
        return target

    @task
    def upload(path: str) -> str:
        import os

        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        bucket = Variable.get("pg_backup_bucket")
        key = f"postgres/{os.path.basename(path)}"
        S3Hook(aws_conn_id=Variable.get("pg_backup_aws_conn_id", "aws_default")).load_file(
            path, key=key, bucket_name=bucket, replace=True
        )
        os.remove(path)
        return key

    @task
    def apply_retention(_uploaded: str, data_interval_end=None) -> int:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        hook = S3Hook(aws_conn_id=Variable.get("pg_backup_aws_conn_id", "aws_default"))
        bucket = Variable.get("pg_backup_bucket")
        cutoff = data_interval_end - timedelta(days=int(Variable.get("pg_backup_retention_days", "14")))
        old = [key for key in hook.list_keys(bucket, prefix="postgres/") if key[-15:-5] < f"{cutoff:%Y-%m-%d}"]
        if old:
            hook.delete_objects(bucket, old)
        return len(old)

    apply_retention(upload(dump_database()))


postgres_backup_to_s3()
