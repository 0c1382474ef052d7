"""`dagops bundle migrate --to bundle|symlinks`: move an installation between the two publish modes.

Nothing is re-exported or re-validated: the live releases stay what they are, and only where their namespace links
are changes. Moving to the bundle:

1. `[dagops] publish_mode = bundle` in airflow.cfg, and the dagops-releases bundle in
   `[dag_processor] dag_bundle_config_list` (airflow/setup.py);
2. under the lock every go-live takes (so no publish interleaves), each namespace link of the dags folder is
   copied into `<dagops_home>/live`, then removed from the dags folder.

Back to symlinks, the same in the other direction (the bundle stays configured: DAG runs that started on it
still need it for their tasks, and with no link left it serves nothing). DAG ids, their runs and their paused
state are Airflow's rows, keyed by dag_id, which moving a file between bundles keeps; once the dag-processor has
restarted with the new bundle list, each DAG is parsed from its new bundle. Processes that publish (workers
running dagops_sync, the api-server) read the mode when they start: restart them too.
"""

from __future__ import annotations

import os
from pathlib import Path

from airflow_dagops import paths, settings
from airflow_dagops.airflow import setup as airflow_setup
from airflow_dagops.deploy.conflicts import CONFLICTS_LOCK
from airflow_dagops.deploy.locks import repository_lock
from airflow_dagops.deploy.publish import publish, unpublish
from airflow_dagops.errors import DagOpsError, InvalidInput

_ENV_VAR = "AIRFLOW__DAGOPS__PUBLISH_MODE"


def migrate(to: str) -> list[str]:
    """Move to publish mode `to`; returns what was done, in words."""
    if to not in paths.PUBLISH_MODES:
        raise InvalidInput(f"--to must be one of {', '.join(paths.PUBLISH_MODES)}, got {to!r}")
    done = [set_mode(to)]
    if to == "bundle":
        done.append(airflow_setup.ensure_dagops_bundle(mode=to))
    source, target = (
        (settings.dags_folder(), paths.bundle_live_dir())
        if to == "bundle"
        else (paths.bundle_live_dir(), settings.dags_folder())
    )
    with repository_lock(paths.locks_dir(), CONFLICTS_LOCK, timeout=settings.get_int("lock_timeout")):
        moved = move_links(source, target)
    done.append(
        f"moved {len(moved)} namespace link(s) from {source} to {target}" + (f": {', '.join(moved)}" if moved else "")
    )
    done.append("restart the dag-processor, the workers and the api-server so that each reads the new mode")
    return done


def move_links(source: Path, target: Path) -> list[str]:
    """Copy every namespace link of `source` that leads into dagops' releases to `target`, then remove it from
    `source`; returns the namespaces moved. Links are copied before any is removed: at every moment each
    namespace is readable in one folder at least."""
    releases = (settings.dagops_home() / "releases").resolve()
    names = []
    for name in sorted(os.listdir(source)) if source.is_dir() else []:
        link = source / name
        if name.startswith(".") or not link.is_symlink():
            continue
        destination = Path(os.readlink(link))
        if releases not in destination.resolve().parents:
            continue  # not a dagops release: not ours to move
        publish(target / name, destination)
        names.append(name)
    for name in names:
        unpublish(source / name)
    return names


def set_mode(to: str) -> str:
    """`[dagops] publish_mode = to` in airflow.cfg (or, when the environment sets it, what to change there)."""
    if os.environ.get(_ENV_VAR) is not None:
        if os.environ[_ENV_VAR].strip().lower() != to:
            raise DagOpsError(
                f"{_ENV_VAR} is set in the environment ({os.environ[_ENV_VAR]!r}); set it to {to!r} in every "
                "Airflow process's environment, then run this command again"
            )
        return f"publish_mode is {to} ({_ENV_VAR})"
    cfg = airflow_setup.airflow_cfg_path()
    text = cfg.read_text() if cfg.exists() else ""
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(airflow_setup.set_option(text, "dagops", "publish_mode", to))
    return f"set [dagops] publish_mode = {to} in {cfg}"
