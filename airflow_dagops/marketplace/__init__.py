"""The marketplace's building blocks: the package file schema, reading catalogs from git, ranking.

The use cases (what the faces call) are in airflow_dagops/marketplace_service.py.
"""
