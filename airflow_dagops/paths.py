"""Where things live under `dagops_home` and the dags folder. Names are validated before they get here."""

from __future__ import annotations

from pathlib import Path

from airflow_dagops import settings
from airflow_dagops.errors import InvalidInput


def mirror_dir(name: str) -> Path:
    return settings.dagops_home() / "mirrors" / f"{name}.git"


def namespace_releases_dir(namespace: str) -> Path:
    return settings.dagops_home() / "releases" / namespace


def release_dir(namespace: str, sha: str) -> Path:
    return namespace_releases_dir(namespace) / sha


def locks_dir() -> Path:
    return settings.dagops_home() / "locks"


PUBLISH_MODES = ("bundle", "symlinks")
RELEASES_BUNDLE = "dagops-releases"  # the DAG bundle of `publish_mode = bundle` (airflow_dagops/bundle/)


def publish_mode() -> str:
    """`bundle` (the default: the versioned dagops-releases DAG bundle) or `symlinks` (the dags-folder bundle reads
    the namespace links; every Airflow process shares one volume)."""
    mode = settings.get("publish_mode").strip().lower() or "bundle"
    if mode not in PUBLISH_MODES:
        raise InvalidInput(f"[dagops] publish_mode must be one of {', '.join(PUBLISH_MODES)}, got {mode!r}")
    return mode


def live_dir() -> Path:
    """Where the namespace links are, in both modes: the dags folder. In bundle mode its `.airflowignore` leaves
    them to the dagops-releases bundle (deploy/dags_folder.py)."""
    return settings.dags_folder()


def legacy_live_dir() -> Path:
    """Where bundle mode kept its namespace links before the live set moved into the state DB; only
    `dagops bundle migrate` reads it, to move what an older installation left there into the dags folder."""
    return settings.dagops_home() / "live"


def namespace_link(namespace: str) -> Path:
    return live_dir() / namespace


def meta_dags_dir() -> Path:
    """The installed system DAGs: inside the wheel, or the source tree's `meta_dags/` in development."""
    packaged = Path(__file__).parent / "meta_dags"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "meta_dags"


def check_layout() -> None:
    """Refuse a dagops_home inside the dags folder: Airflow would walk every release (and stop with
    "Detected recursive loop" when a namespace link reaches one of them a second time)."""
    home, dags = settings.dagops_home().resolve(), settings.dags_folder().resolve()
    if home == dags or dags in home.parents:
        raise InvalidInput(
            f"[dagops] dagops_home ({home}) is inside the dags folder ({dags}); Airflow would parse every "
            "release. Put it elsewhere, e.g. $AIRFLOW_HOME/dagops (the default)."
        )
