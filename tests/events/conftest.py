"""The REST face of the feed runs through the web fixtures of tests/helpers/web.py (the /pluginsv2 app, tokens
per role)."""

from __future__ import annotations

import airflow_dagops.api.events  # noqa: F401  (routes on the blueprint before the app is built)
