"""Operability: how each repository is doing, and the metrics that say so (docs/operations.md).

- `service.py`: a repository's health (ok, stale, failing, paused), derived from the state DB; the state machine
  is in its docstring.
- `reasons.py`: why a sync failed, as one of a few reasons (auth, unreachable, validation, tests, no_space, other).
- `observe.py`: the measured points (a sync run finished, a release went live, a validation reported), sent
  through Airflow's Stats (airflow_dagops/metrics.py), and the gauges the dagops_sync DAG sends after each poll.
- `state.py`: the numbers metrics report, read from the state DB; `prometheus.py`: the same as Prometheus text.

Layer: just above store/. Health reads only the store, so every layer above may ask it (the event feed measures
through it; the faces show it).
"""
