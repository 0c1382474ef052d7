"""Everything that talks to Airflow itself, so no other package has to know how.

- `bridge`: calls into the running Airflow (trigger `dagops_sync`, DAG and import-error look-ups, run states);
- `rest_client`: Airflow's REST API v2 from outside the api-server (DAG run outcomes for promotion and events);
- `connections`: reading Airflow Connections (credentials never live in dagops' own database);
- `setup` and `install`: `dagops init` (the system DAG bundle in airflow.cfg, migrations, folders);
- `cluster_policy` and `namespace_meta`: the `airflow.policy` entry point that tags and configures every DAG
  dagops publishes, reading only a small JSON file per namespace (no database in the dag-processor);
- `provider_info`: makes `[dagops]` options show in `airflow config list`.
"""
