"""The event feed: what happened (a release validated, went live, failed its tests; a DAG run of a published
release ended), recorded in the state DB (`feed`) and collected from Airflow's REST API (`dag_runs`), for the
page, the REST API, `dagops events` and webhooks to chat tools."""
