"""Wire dagops into an Airflow installation: the `dagops` DAG bundle serving the system DAGs.

`dagops init` edits airflow.cfg in place (only the one option it owns), keeping every other line and
comment; when the option comes from an environment variable it cannot edit, it says what to set.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from airflow_dagops import paths, settings
from airflow_dagops.errors import DagOpsError

BUNDLE_NAME = "dagops"
BUNDLE_CLASSPATH = "airflow.dag_processing.bundles.local.LocalDagBundle"
DEFAULT_BUNDLES = [{"name": "dags-folder", "classpath": BUNDLE_CLASSPATH, "kwargs": {}}]
_OPTION = "dag_bundle_config_list"
_ENV_VAR = "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"


def dagops_bundle() -> dict:
    return {"name": BUNDLE_NAME, "classpath": BUNDLE_CLASSPATH, "kwargs": {"path": str(paths.meta_dags_dir())}}


def with_dagops_bundle(bundles: list[dict]) -> list[dict]:
    """The bundle list with the dagops bundle present exactly once, pointing at the installed system DAGs."""
    others = [b for b in bundles if b.get("name") != BUNDLE_NAME]
    return [*others, dagops_bundle()]


def airflow_cfg_path() -> Path:
    return Path(os.environ.get("AIRFLOW_CONFIG") or settings.airflow_home() / "airflow.cfg")


def current_bundles() -> list[dict]:
    from airflow.configuration import conf

    raw = conf.get("dag_processor", _OPTION, fallback="") or json.dumps(DEFAULT_BUNDLES)
    try:
        bundles = json.loads(raw)
    except ValueError as err:
        raise DagOpsError(f"[dag_processor] {_OPTION} is not valid JSON: {err}") from err
    if not isinstance(bundles, list):
        raise DagOpsError(f"[dag_processor] {_OPTION} must be a JSON list of bundles")
    return bundles


def ensure_dagops_bundle() -> str:
    """Add the dagops bundle to Airflow's config; returns what was done, in words."""
    bundles = current_bundles()
    wanted = with_dagops_bundle(bundles)
    if bundles == wanted:
        return "the dagops DAG bundle is already configured"
    value = json.dumps(wanted)
    if os.environ.get(_ENV_VAR):
        raise DagOpsError(
            f"{_ENV_VAR} is set in the environment, so dagops cannot add its bundle to airflow.cfg. Set it to:\n{value}"
        )
    cfg = airflow_cfg_path()
    text = cfg.read_text() if cfg.exists() else ""
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(set_option(text, "dag_processor", _OPTION, value))
    return f"added the dagops DAG bundle to {cfg} (restart the dag-processor to load it)"


def set_option(text: str, section: str, option: str, value: str) -> str:
    """Set `option` in `[section]` of an ini text, replacing a (possibly multi-line) existing value."""
    lines = text.splitlines(keepends=True)
    header = re.compile(rf"^\[{re.escape(section)}\]\s*$")
    start = next((i for i, line in enumerate(lines) if header.match(line)), None)
    new_line = f"{option} = {value}\n"
    if start is None:
        sep = "" if not text or text.endswith("\n") else "\n"
        return f"{text}{sep}\n[{section}]\n{new_line}"
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("[")), len(lines))
    key = re.compile(rf"^{re.escape(option)}\s*[=:]")
    for i in range(start + 1, end):
        if key.match(lines[i]):
            stop = i + 1
            while stop < end and lines[stop][:1] in (" ", "\t") and lines[stop].strip():
                stop += 1  # continuation lines of a multi-line value
            return "".join(lines[:i] + [new_line] + lines[stop:])
    return "".join(lines[: start + 1] + [new_line] + lines[start + 1 :])
