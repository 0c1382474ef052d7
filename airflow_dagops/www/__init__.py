"""The "DAG Repositories" page: a Flask-AppBuilder view that serves an HTML shell and its assets; all data
comes from the REST API (airflow_dagops.api) through the page's own script."""
