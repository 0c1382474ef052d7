"""`dagops init`: check Airflow's configuration and prepare dagops' folders, DB, system DAG bundle and the
connection its system DAGs read Airflow's REST API through."""

from __future__ import annotations

from airflow_dagops import paths, settings, tempdirs
from airflow_dagops.airflow import setup as airflow_setup
from airflow_dagops.store import db
from airflow_dagops.wording import plural


def init(*, add_bundle: bool = True, api_connection: bool = True) -> list[str]:
    done = []
    paths.check_layout()
    home = settings.dagops_home()
    for folder in (
        home,
        home / "mirrors",
        home / "releases",
        paths.locks_dir(),
        settings.dags_folder(),
        paths.live_dir(),
    ):
        folder.mkdir(parents=True, exist_ok=True)
    done.append(f"dagops home {home}, dags folder {settings.dags_folder()}")
    revision = db.migrate()
    done.append(f"state DB migrated to revision {revision}")
    if add_bundle:
        done.append(airflow_setup.ensure_dagops_bundle())
    if api_connection:
        done.append(airflow_setup.ensure_api_connection())
    done.extend(parsing_advice())
    removed = tempdirs.sweep()
    if removed:
        done.append(f"removed {plural(len(removed), 'temporary folder')} left by killed processes")
    return done


def parsing_advice() -> list[str]:
    """Say how long Airflow will take to notice a new release, and how to make it quicker."""
    from airflow.configuration import conf

    if paths.publish_mode() == "bundle":  # the dagops-releases bundle refreshes every second, once Airflow checks
        option, default, quick, does, advice = (
            "bundle_refresh_check_interval",
            5,
            1,
            "checks its DAG bundles for new releases",
            "1 for new releases to be parsed within a second of going live",
        )
    else:
        option, default, quick, does, advice = (
            "refresh_interval",
            300,
            60,
            "looks for new DAG files",
            "10-30 for new DAGs to appear quickly",
        )
    seconds = conf.getint("dag_processor", option, fallback=default)
    if seconds > quick:
        return [f"note: Airflow {does} every {seconds}s ([dag_processor] {option}); set it to {advice}"]
    return [f"Airflow {does} every {seconds}s"]
