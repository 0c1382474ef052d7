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


PUBLISH_MODES = ("symlinks", "bundle")
RELEASES_BUNDLE = "dagops-releases"  # the DAG bundle of `publish_mode = bundle` (airflow_dagops/bundle/)


def publish_mode() -> str:
    mode = settings.get("publish_mode").strip().lower() or "symlinks"
    if mode not in PUBLISH_MODES:
        raise InvalidInput(f"[dagops] publish_mode must be one of {', '.join(PUBLISH_MODES)}, got {mode!r}")
    return mode


def live_dir() -> Path:
    """Where the namespace links are: the dags folder (symlinks mode), or `<dagops_home>/live`, which only the
    dagops-releases bundle reads (bundle mode; the dags-folder bundle must not parse the same files too)."""
    return bundle_live_dir() if publish_mode() == "bundle" else settings.dags_folder()


def bundle_live_dir() -> Path:
    """The namespace links the dagops-releases bundle serves, whatever the mode (a migration fills it first)."""
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
