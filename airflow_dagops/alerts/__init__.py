"""Alerts and release health (docs/operations.md, "Alerts" and "Release health and auto-rollback").

- `rules.py`: the `alerts` and `auto_rollback` repository options, checked once for every face (only Airflow
  `BaseNotifier` subclasses of installed code may be named; no credential in the state DB).
- `send.py`: one alert through a repository's notifiers, called as Airflow calls a notifier; `notifiers.py` is the
  built-in `webhook` notifier (JSON to an HTTP connection's URL).
- `state.py`: what the alerts last said, per repository; each change is claimed by compare-and-set, so it is
  announced exactly once however many processes see it.
- `service.py`: after every finished sync run (the event feed calls it): a pushed commit that failed validation
  gets a red commit status and a `validation_failed` alert; entering `failing` and recovering are announced.
- `release_health.py`: the DAG run outcomes of each release against the previous live release's.

The rule that rolls a release back (`auto_rollback`) needs the rollback, a layer up: releases/auto_rollback.py.

Layer: above git/ and health/, below events/ (the feed calls `service.after_sync`), so every face's syncs pass it.
"""
