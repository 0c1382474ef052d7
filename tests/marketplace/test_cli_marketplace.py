"""`dagops marketplace ...` and the dagops_marketplace_check system DAG."""

from __future__ import annotations

import json

import pendulum

from airflow_dagops import paths
from airflow_dagops.marketplace import ratings
from tests.marketplace.conftest import EXAMPLE_PACKAGES


def test_catalogs_add_refresh_list_and_remove(cli, example_catalog):
    added = cli("marketplace", "catalogs", "add", "community", example_catalog.url, "--priority", "5")
    assert added.exit_code == 0, added.output
    assert "catalog community registered" in added.output and "5 packages" in added.output
    listed = json.loads(cli("marketplace", "catalogs", "list", "--json").output)
    assert [(c["name"], c["priority"], c["packages"]) for c in listed] == [("community", 5, 5)]
    refreshed = cli("marketplace", "catalogs", "refresh")
    assert refreshed.exit_code == 0 and "community: 5 packages" in refreshed.output
    assert cli("marketplace", "catalogs", "remove", "community").exit_code == 0
    assert "No catalog registered" in cli("marketplace", "catalogs", "list").output


def test_search_shows_version_rating_installs_and_badge(cli, community):
    ratings.rate("postgres_backup_to_s3", 4, author="dana")
    result = cli("marketplace", "search", "postgres backup")
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if "postgres_backup_to_s3" in line)
    for shown in ("1.2.0", "4.0★ (1)", "unknown", "community"):  # version, rating, badge, catalog
        assert shown in row
    everything = cli("marketplace", "search", "").output
    assert everything.index("cleanup_old_logs") < everything.index("s3_minio_sync")  # empty query: by name
    as_json = json.loads(cli("marketplace", "search", "--json", "").output)
    assert {r["name"] for r in as_json} == EXAMPLE_PACKAGES
    assert "No package matches" in cli("marketplace", "search", "kubernetes").output


def test_info_install_list_rate_review_uninstall(cli, community, dagops_env):
    info = cli("marketplace", "info", "cleanup_old_logs")
    assert info.exit_code == 0 and "cleanup_old_logs 1.1.0 (community)" in info.output
    assert "no reviews yet" in info.output

    installed = cli("marketplace", "install", "cleanup_old_logs", "--namespace", "maintenance")
    assert installed.exit_code == 0, installed.output
    assert "cleanup_old_logs 1.1.0: published" in installed.output
    assert (dagops_env.dags_folder / "maintenance" / "cleanup_old_logs.py").is_file()
    listed = cli("marketplace", "list", "--installed")
    assert "maintenance" in listed.output and "synced" in listed.output

    assert cli("marketplace", "rate", "cleanup_old_logs", "5").exit_code == 0
    refused = cli("marketplace", "rate", "cleanup_old_logs", "five")
    assert refused.exit_code == 2 and "whole number of stars from 1 to 5" in refused.output
    assert cli("marketplace", "review", "cleanup_old_logs", "[bold]Works great![/bold]").exit_code == 0
    info = cli("marketplace", "info", "cleanup_old_logs").output
    assert "[bold]Works great![/bold]" in info  # printed as written, never as terminal markup
    assert "5.0★ (1)" in info and "installed in namespace maintenance" in info

    removed = cli("marketplace", "uninstall", "cleanup_old_logs")
    assert removed.exit_code == 0 and "uninstalled cleanup_old_logs" in removed.output
    assert "No package is installed" in cli("marketplace", "list", "--installed").output


def test_a_blocked_install_exits_non_zero_with_the_reasons(cli, dagops_env, git_remote):
    from tests.marketplace.conftest import package_files, tag

    # It names airflow and dag, so Airflow's safe mode would parse it: its syntax error blocks the install.
    remote = git_remote(package_files("kit", "1.0.0", dag="from airflow.sdk import dag\ndef broken(:\n"))
    tag(remote, "kit/v1.0.0")
    assert cli("marketplace", "catalogs", "add", "team", remote.url).exit_code == 0
    result = cli("marketplace", "install", "kit")
    assert result.exit_code == 1
    assert "kit 1.0.0: blocked" in result.output and "syntax-error" in result.output


def test_update_dry_run_and_check(cli, community):
    assert cli("marketplace", "install", "cleanup_old_logs", "--no-sync").exit_code == 0
    same = cli("marketplace", "update", "cleanup_old_logs", "--dry-run")
    assert same.exit_code == 0 and "already at 1.1.0" in same.output
    checked = cli("marketplace", "check", "cleanup_old_logs")
    assert checked.exit_code == 0 and "community/cleanup_old_logs 1.1.0: passing" in checked.output


def test_the_system_dag_parses_with_refresh_then_check(dagops_env, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag
    from airflow.serialization.serialized_objects import DagSerialization
    from airflow.timetables.base import TimeRestriction

    monkeypatch.setenv("AIRFLOW__DAGOPS__MARKETPLACE_CHECK_SCHEDULE", "0 4 * * *")
    bag = DagBag(dag_folder=str(paths.meta_dags_dir() / "dagops_marketplace_check.py"))
    assert bag.import_errors == {}
    dag = bag.dags["dagops_marketplace_check"]
    assert set(dag.task_dict) == {"refresh", "check"}
    assert dag.task_dict["check"].upstream_task_ids == {"refresh"}
    assert dag.catchup is False and dag.max_active_runs == 1
    # [dagops] marketplace_check_schedule, as a trigger timetable. With catchup off, the latest 04:00 already past
    # runs as soon as Airflow first sees the DAG (a fresh install has badges within minutes), then each 04:00.
    assert dag.schedule.expression == "0 4 * * *"
    scheduled = DagSerialization.from_dict(DagSerialization.to_dict(dag))  # the scheduler's view of it
    first = scheduled.timetable.next_dagrun_info(
        last_automated_data_interval=None, restriction=TimeRestriction(scheduled.start_date, None, catchup=False)
    )
    assert first.run_after <= pendulum.now("UTC") and (first.run_after.hour, first.run_after.minute) == (4, 0)


def test_install_refuses_missing_providers_with_exit_code_3_unless_forced(cli, community, dagops_env):
    refused = cli("marketplace", "install", "s3_minio_sync", "--namespace", "storage")
    assert refused.exit_code == 3, refused.output
    assert "apache-airflow-providers-amazon" in refused.output and "--force" in refused.output
    assert not (dagops_env.dags_folder / "storage").exists()
    forced = cli("marketplace", "install", "s3_minio_sync", "--namespace", "storage", "--force")
    assert forced.exit_code == 0, forced.output
    assert "s3_minio_sync 0.9.0: published" in forced.output
    assert (dagops_env.dags_folder / "storage" / "s3_minio_sync.py").is_file()
