"""The DAG search index (airflow_dagops/assist/search.py) over a corpus of 50 DAGs written for this test
(tests/fixtures/search_corpus): ten plain-language questions, at least eight answered in the top three."""

from __future__ import annotations

from pathlib import Path

from airflow_dagops.assist import search
from airflow_dagops.assist.extract import dags_in_source

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "search_corpus"

QUESTIONS = {
    "a backup to S3": "backup_postgres_to_s3",
    "send a slack message when the sales report is ready": "sales_report_slack_notify",
    "load CSV files from GCS into BigQuery": "gcs_csv_to_bigquery",
    "refresh the dbt models every night": "dbt_nightly_run",
    "train the churn machine learning model": "churn_model_training",
    "sync customers from Salesforce": "salesforce_customer_sync",
    "clean up old log files": "cleanup_old_logs",
    "email invoices to the finance team": "invoice_email_finance",
    "check data quality of the orders table": "orders_data_quality_checks",
    "copy files from the partner SFTP server": "sftp_ingest_partner_files",
}


def _index(tmp_path) -> Path:
    path = tmp_path / "index.sqlite"
    documents = search.release_documents(CORPUS, repository="team", namespace="team")
    assert len(documents) == 50
    search.build(path, documents, "fingerprint")
    return path


def test_plain_language_questions_find_the_right_dag(tmp_path):
    path = _index(tmp_path)
    misses = []
    for question, expected in QUESTIONS.items():
        top = [hit["name"] for hit in search.query(path, question, limit=3)]
        if expected not in top:
            misses.append(f"{question!r}: expected {expected}, got {top}")
    print("\n".join(misses) or "no misses")
    assert len(QUESTIONS) - len(misses) >= 8, "\n".join(misses)


def test_a_hit_says_what_the_dag_uses(tmp_path):
    hit = search.query(_index(tmp_path), "a backup to S3", limit=1)[0]
    assert hit["name"] == "backup_postgres_to_s3" and hit["kind"] == "dag"
    assert hit["connections"] == ["aws_backups"] and "LocalFilesystemToS3Operator" in hit["operators"]
    assert hit["repository"] == "team" and hit["file"] == "backup_postgres_to_s3.py"
    assert hit["task_ids"] == ["dump_orders_db", "upload_dump"] and hit["owners"] == ["platform"]
    assert hit["schedule"] == "@daily" and "pg_dump" in hit["doc"]


def test_query_syntax_of_the_caller_never_reaches_fts(tmp_path):
    path = _index(tmp_path)
    assert search.match_expression('s3" OR NEAR(a b) *') == '"s3" OR "near" OR "b"'
    assert search.query(path, '" ) ( NOT AND', limit=3) == []
    assert search.match_expression("the and of") is None


def test_extraction_of_each_style():
    with_style = dags_in_source((CORPUS / "sftp_ingest_partner_files.py").read_text(), "x.py")[0]
    assert with_style.connections == ["aws_landing", "sftp_partner"]
    assert with_style.schedule == "*/30 * * * *" and "partner SFTP" in with_style.doc
    decorated = dags_in_source((CORPUS / "churn_model_training.py").read_text(), "y.py")[0]
    assert decorated.task_ids == ["build_features", "train_model", "register_model"]
    assert "@task.virtualenv" in decorated.operators and decorated.connections == ["mlflow_tracking"]
    classic = dags_in_source((CORPUS / "invoice_email_finance.py").read_text(), "z.py")[0]
    assert classic.tags == ["finance", "billing"] and classic.connections == ["smtp_default"]
    two = dags_in_source(
        'from airflow.sdk import DAG\nwith DAG("a"):\n    X(task_id="t1", a_conn_id="c1")\n'
        'with DAG(dag_id="b"):\n    Y(task_id="t2", b_conn_id="c2")\n',
        "two.py",
    )
    assert [(d.dag_id, d.task_ids, d.connections) for d in two] == [("a", ["t1"], ["c1"]), ("b", ["t2"], ["c2"])]
    assert dags_in_source("def broken(:\n", "b.py") == []
