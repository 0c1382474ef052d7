"""Webhooks from Git hosts: signature checks, payload parsing and repository URL matching.

Pure functions over headers and bytes: no Flask, no DB, no Airflow. The use case that ties them to the
state DB and Airflow is `airflow_dagops.webhooks.service`; the HTTP face is `airflow_dagops.api.webhooks`.
"""

PROVIDERS = ("github", "gitlab", "gitea", "bitbucket")
