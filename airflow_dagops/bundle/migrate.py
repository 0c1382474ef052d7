"""`dagops bundle migrate --to bundle|symlinks`: move an installation between the two publish modes.

Nothing is re-exported or re-validated: the live releases stay what they are, and the namespace links stay in the
dags folder. What moves is which of Airflow's bundles parses them. To the bundle:

1. `[dagops] publish_mode = bundle` in airflow.cfg, and the dagops-releases bundle in
   `[dag_processor] dag_bundle_config_list` (airflow/setup.py);
2. under the lock every go-live takes (so no publish interleaves): the namespaces are listed in the dags folder's
   `.airflowignore` (the dags-folder bundle lets go of them), then the live set in the state DB is made to hold
   exactly the namespace links (the dagops-releases bundle takes them). Links an older bundle layout kept in
   `<dagops_home>/live` move into the dags folder on the way.

Back to symlinks, the other way round: the live set is emptied, then the `.airflowignore` section removed. The
dagops-releases bundle stays configured: DAG runs that started on it still need it for their tasks, and with an
empty live set it serves nothing. In either direction Airflow never parses a DAG twice (at worst, for a moment,
a DAG has no file and is marked stale until the other bundle parses it). DAG ids, their runs and their paused
state are Airflow's rows, keyed by dag_id, which moving a file between bundles keeps. Once the dag-processor has
restarted with the new bundle list, each DAG is parsed from its new bundle. Processes that publish (workers
running dagops_sync, the api-server) read the mode when they start: restart them too.
"""

from __future__ import annotations

import os
from pathlib import Path

from airflow_dagops import paths, settings
from airflow_dagops.airflow import setup as airflow_setup
from airflow_dagops.deploy import dags_folder, live_set
from airflow_dagops.deploy.conflicts import CONFLICTS_LOCK
from airflow_dagops.deploy.locks import repository_lock
from airflow_dagops.deploy.publish import publish, unpublish
from airflow_dagops.errors import DagOpsError, InvalidInput
from airflow_dagops.store.db import session_scope
from airflow_dagops.wording import plural

_ENV_VAR = "AIRFLOW__DAGOPS__PUBLISH_MODE"


def migrate(to: str) -> list[str]:
    """Move to publish mode `to`; returns what was done, in words."""
    if to not in paths.PUBLISH_MODES:
        raise InvalidInput(f"--to must be one of {', '.join(paths.PUBLISH_MODES)}, got {to!r}")
    done = [set_mode(to)]
    if to == "bundle":
        done.append(airflow_setup.ensure_dagops_bundle(mode=to))
    with repository_lock(paths.locks_dir(), CONFLICTS_LOCK, timeout=settings.get_int("lock_timeout")):
        done.extend(to_bundle() if to == "bundle" else to_symlinks())
    done.append("restart the dag-processor, the workers and the api-server so that each reads the new mode")
    return done


def to_bundle() -> list[str]:
    """The dags-folder bundle lets go of every namespace link, then the dagops-releases bundle takes them."""
    links = namespace_links(settings.dags_folder())
    legacy = namespace_links(paths.legacy_live_dir())
    dags_folder.set_listed({*dags_folder.listed(), *links, *legacy})
    moved = move_legacy_links(legacy)
    with session_scope() as session:
        recorded = live_set.record_links(session, {**links, **{ns: Path(target) for ns, target in legacy.items()}})
    done = [f"the dags-folder bundle leaves {plural(len(recorded), 'namespace')} to the dagops-releases bundle"]
    if recorded:
        done[0] += f": {', '.join(recorded)}"
    if moved:
        done.append(f"moved {plural(len(moved), 'namespace link')} from {paths.legacy_live_dir()} to the dags folder")
    return done


def to_symlinks() -> list[str]:
    """The dagops-releases bundle lets go of every namespace, then the dags-folder bundle takes the links back."""
    with session_scope() as session:
        cleared = live_set.clear(session)
    moved = move_legacy_links(namespace_links(paths.legacy_live_dir()))
    dags_folder.set_listed([])
    done = [f"the dags-folder bundle parses the namespace links again ({plural(cleared, 'namespace')} left the bundle)"]
    if moved:
        done.append(f"moved {plural(len(moved), 'namespace link')} from {paths.legacy_live_dir()} to the dags folder")
    return done


def namespace_links(folder: Path) -> dict[str, Path]:
    """namespace -> release folder for every link of `folder` that leads into dagops' releases (anything else is
    not ours to move)."""
    releases = (settings.dagops_home() / "releases").resolve()
    found = {}
    for name in sorted(os.listdir(folder)) if folder.is_dir() else []:
        link = folder / name
        if name.startswith(".") or not link.is_symlink():
            continue
        target = Path(os.readlink(link))
        if releases in target.resolve().parents:
            found[name] = target
    return found


def move_legacy_links(legacy: dict[str, Path]) -> list[str]:
    """Links an older bundle layout kept in `<dagops_home>/live` go to the dags folder (copied first, removed after:
    at every moment each namespace has a link). A namespace the dags folder already links is left as it is there."""
    moved = []
    for name, target in legacy.items():
        link = settings.dags_folder() / name
        if not link.is_symlink():
            publish(link, target)
        moved.append(name)
    for name in moved:
        unpublish(paths.legacy_live_dir() / name)
    return moved


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
