"""One-way sync of a prefix between two S3-compatible buckets, by ETag and size."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Variable, dag, task


@dag(
    dag_id="s3_minio_sync",
    schedule=timedelta(minutes=30),
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["s3", "minio", "storage"],
    default_args={"owner": "storage-team", "retries": 3, "retry_delay": timedelta(minutes=1)},
)
def s3_minio_sync():
    @task
    def plan() -> list[str]:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        config = Variable.get("s3_minio_sync", deserialize_json=True)
        source = S3Hook(aws_conn_id=config["source_conn_id"])
        target = S3Hook(aws_conn_id=config["target_conn_id"])

        def listing(hook, bucket):
            pages = hook.get_conn().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=config["prefix"])
            return {o["Key"]: (o["ETag"], o["Size"]) for page in pages for o in page.get("Contents", [])}

        have = listing(target, config["target_bucket"])
        return [key for key, tag in listing(source, config["source_bucket"]).items() if have.get(key) != tag]

    @task
    def copy(keys: list[str]) -> int:
        import tempfile

        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        config = Variable.get("s3_minio_sync", deserialize_json=True)
        source = S3Hook(aws_conn_id=config["source_conn_id"])
        target = S3Hook(aws_conn_id=config["target_conn_id"])
        for key in keys:
            with tempfile.NamedTemporaryFile() as buffer:
                source.get_conn().download_fileobj(config["source_bucket"], key, buffer)
                buffer.flush()
                target.load_file(buffer.name, key=key, bucket_name=config["target_bucket"], replace=True)
        return len(keys)

    copy(plan())


s3_minio_sync()
