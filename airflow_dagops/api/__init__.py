"""The REST face: a Flask blueprint mounted by Airflow under /pluginsv2/dagops/api/v1 (see docs/api.md)."""
