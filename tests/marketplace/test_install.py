"""Install, update and uninstall: a package becomes a pinned repository that the full pipeline validates."""

from __future__ import annotations

import pytest

from airflow_dagops.errors import Conflict, InvalidInput, NotFound, RequirementsMissing, ValidationFailed
from airflow_dagops.marketplace import catalogs, installs, listing, updates
from airflow_dagops.repositories.info import get_repository, list_repositories
from airflow_dagops.repositories.registry import remove_repository
from airflow_dagops.sync.sync import sync_repository
from tests.marketplace.conftest import package_dag, package_files, tag

AMAZON_AT_PARSE_TIME = "from airflow.providers.amazon.aws.hooks.s3 import S3Hook  # noqa: F401"


def test_install_validates_and_publishes_the_package_into_its_namespace(community, dagops_env):
    result = installs.install("cleanup_old_logs", actor="dana")
    assert result["status"] == "published", result
    assert (result["repository"], result["namespace"], result["version"]) == (
        "pkg-cleanup_old_logs",
        "cleanup_old_logs",
        "1.1.0",
    )
    assert result["missing_providers"] == []  # apache-airflow-providers-standard is installed
    live = dagops_env.dags_folder / "cleanup_old_logs"
    assert live.is_symlink() and (live / "cleanup_old_logs.py").is_file()
    repo = get_repository("pkg-cleanup_old_logs")
    assert (repo.ref, repo.subdir, repo.status) == ("cleanup_old_logs/v1.1.0", "cleanup_old_logs", "synced")
    found = listing.search("cleanup_old_logs")[0]
    assert found["installs"] == 1 and found["installed_namespace"] == "cleanup_old_logs"
    [installed] = installs.list_installed()
    assert installed["package"] == "cleanup_old_logs" and installed["repository_status"] == "synced"
    assert installed["update_available"] is False
    with pytest.raises(Conflict, match="already installed"):
        installs.install("cleanup_old_logs", actor="dana")


def test_a_package_with_missing_providers_is_refused_and_names_them(community, dagops_env):
    check = installs.install_check("s3_minio_sync", namespace="storage")
    assert (check["version"], check["namespace"], check["default_namespace"]) == ("0.9.0", "storage", "s3_minio_sync")
    assert check["missing_providers"] == ["apache-airflow-providers-amazon"]
    assert check["needs_force"] is True and check["installable"] is True and check["refusals"] == []
    with pytest.raises(RequirementsMissing, match="apache-airflow-providers-amazon") as refused:
        installs.install("s3_minio_sync", namespace="storage", actor="dana")
    assert refused.value.details["missing_providers"] == ["apache-airflow-providers-amazon"]
    assert refused.value.exit_code == 3 and refused.value.http_status == 409
    # Nothing was installed: no repository, no install, no namespace.
    assert list_repositories() == [] and installs.list_installed() == []
    assert not (dagops_env.dags_folder / "storage").exists()


def test_install_check_says_what_would_refuse_an_install(community, dagops_env):
    installs.install("cleanup_old_logs", namespace="maintenance", actor="dana", sync=False)
    again = installs.install_check("cleanup_old_logs")
    assert again["installable"] is False and "already installed" in again["refusals"][0]
    assert again["needs_force"] is False and again["missing_providers"] == []
    taken = installs.install_check("data_quality_checks", namespace="maintenance")
    assert taken["refusals"] == [
        "namespace 'maintenance' is taken by repository 'pkg-cleanup_old_logs'; choose another"
    ]
    with pytest.raises(InvalidInput, match="namespace"):
        installs.install_check("data_quality_checks", namespace="Not Valid")


def test_install_names_missing_providers_and_takes_a_namespace(community, dagops_env):
    result = installs.install("s3_minio_sync", namespace="storage", actor="dana", force=True)
    assert result["forced"] is True
    # Its hooks are imported inside tasks: it validates, but Airflow lacks the provider it declares.
    assert result["status"] == "published" and result["namespace"] == "storage"
    assert result["missing_providers"] == ["apache-airflow-providers-amazon"]
    assert result["missing_packages"] == listing.missing_requirements(["boto3>=1.28"])  # whatever this venv has
    assert "Missing providers/packages: apache-airflow-providers-amazon" in result["message"]
    assert (dagops_env.dags_folder / "storage" / "s3_minio_sync.py").is_file()


def test_a_package_that_fails_validation_is_blocked_with_its_findings(dagops_env, git_remote):
    files = package_files(
        "s3_loader",
        "1.0.0",
        providers=["apache-airflow-providers-amazon"],
        dag=package_dag("s3_loader", imports=AMAZON_AT_PARSE_TIME),
    )
    remote = git_remote(files)
    tag(remote, "s3_loader/v1.0.0")
    catalogs.add_catalog("team", remote.url)
    catalogs.refresh_catalogs()
    result = installs.install("s3_loader", actor="dana", force=True)
    assert result["status"] == "blocked"
    assert result["missing_providers"] == ["apache-airflow-providers-amazon"]
    assert "provider-missing" in {f["rule"] for f in result["findings"]}
    assert result["message"].startswith("blocked:") and "Nothing is live" in result["message"]
    assert not (dagops_env.dags_folder / "s3_loader").exists()
    # Kept registered (its findings are readable there) and not counted as an install.
    assert get_repository("pkg-s3_loader").live_commit is None
    assert listing.search("s3_loader")[0]["installs"] == 0
    assert installs.list_installed()[0]["status"] == "blocked"
    installs.uninstall("s3_loader", actor="dana")
    assert installs.list_installed() == [] and list_repositories() == []


def test_install_without_sync_only_registers(community, dagops_env):
    result = installs.install("data_quality_checks", actor="rest:dana", sync=False)
    assert result["status"] == "registered"
    assert get_repository("pkg-data_quality_checks").live_commit is None
    assert not (dagops_env.dags_folder / "data_quality_checks").exists()


def test_uninstall_removes_the_dags_and_keeps_the_install_count(community, dagops_env):
    installs.install("cleanup_old_logs", actor="dana")
    said = installs.uninstall("cleanup_old_logs", actor="dana")
    assert "uninstalled cleanup_old_logs" in said
    assert not (dagops_env.dags_folder / "cleanup_old_logs").exists()
    found = listing.search("cleanup_old_logs")[0]
    assert found["installs"] == 1 and found["installed_namespace"] is None
    with pytest.raises(NotFound, match="not installed"):
        installs.uninstall("cleanup_old_logs", actor="dana")
    installs.install("cleanup_old_logs", actor="dana")  # again, after an uninstall
    assert listing.search("cleanup_old_logs")[0]["installs"] == 2


def test_a_repository_removed_by_hand_no_longer_counts_as_installed(community, dagops_env):
    installs.install("cleanup_old_logs", actor="dana", sync=False)
    remove_repository("pkg-cleanup_old_logs")
    assert installs.list_installed() == []
    assert installs.install("cleanup_old_logs", actor="dana", sync=False)["status"] == "registered"


def test_update_shows_the_diff_first_and_moves_to_the_new_tag(dagops_env, git_remote, monkeypatch):
    monkeypatch.setenv("AIRFLOW__DAGOPS__VALIDATION_SKIP", "security,compat,imports,policy")  # structure: the diff
    remote = git_remote(package_files("etl_kit", "1.0.0"))
    tag(remote, "etl_kit/v1.0.0")
    catalogs.add_catalog("team", remote.url)
    catalogs.refresh_catalogs()
    assert installs.install("etl_kit", actor="dana")["status"] == "published"
    new_dag = package_dag("etl_kit", tags='["example", "v2"]')
    remote.commit(
        "2.0.0", {**package_files("etl_kit", "2.0.0", dag=new_dag), "etl_kit/extra.py": package_dag("etl_extra")}
    )
    remote.git("tag", "etl_kit/v2.0.0")
    catalogs.refresh_catalogs()
    assert installs.list_installed()[0]["update_available"] is True

    plan = updates.update("etl_kit", dry_run=True, actor="dana")
    assert plan["status"] == "dry_run" and plan["passed"] is True
    assert plan["diff"]["dags_added"] == ["etl_extra"]
    assert plan["diff"]["changed"] == {"etl_kit": {"tags": {"added": ["v2"], "removed": []}}}
    assert "+ dag etl_extra" in plan["diff_lines"]
    assert get_repository("pkg-etl_kit").ref == "etl_kit/v1.0.0"  # dry run: nothing changed

    done = updates.update("etl_kit", actor="dana")
    assert done["status"] == "published", done
    assert get_repository("pkg-etl_kit").ref == "etl_kit/v2.0.0"
    assert (dagops_env.dags_folder / "etl_kit" / "extra.py").is_file()
    assert installs.list_installed()[0]["version"] == "2.0.0"
    assert updates.update("etl_kit", actor="dana")["status"] == "unchanged"


def test_an_update_that_fails_validation_changes_nothing(dagops_env, git_remote):
    remote = git_remote(package_files("etl_kit", "1.0.0"))
    tag(remote, "etl_kit/v1.0.0")
    catalogs.add_catalog("team", remote.url)
    catalogs.refresh_catalogs()
    installs.install("etl_kit", actor="dana")
    broken = package_dag("etl_kit", imports=AMAZON_AT_PARSE_TIME)
    remote.commit("1.1.0", package_files("etl_kit", "1.1.0", dag=broken))
    remote.git("tag", "etl_kit/v1.1.0")
    catalogs.refresh_catalogs()
    assert updates.update("etl_kit", dry_run=True, actor="dana")["passed"] is False
    with pytest.raises(ValidationFailed, match="1.0.0 stays live"):
        updates.update("etl_kit", actor="dana")
    assert get_repository("pkg-etl_kit").ref == "etl_kit/v1.0.0"
    assert installs.list_installed()[0]["version"] == "1.0.0"
    assert "amazon" not in (dagops_env.dags_folder / "etl_kit" / "etl_kit.py").read_text()


def test_an_install_without_sync_is_settled_by_the_next_sync(community):
    installs.install("cleanup_old_logs", actor="rest:dana", sync=False)
    assert installs.list_installed()[0]["status"] == "registered"
    sync_repository("pkg-cleanup_old_logs")  # what the dagops_sync run does
    assert installs.list_installed()[0]["status"] == "published"


def test_an_update_is_judged_among_the_live_releases_before_anything_moves(dagops_env, git_remote, monkeypatch):
    """The update's pre-check is the release gate with the package's repository: a new version pinning a library
    another live namespace excludes is refused at the dry run, as the sync would refuse it, and writes nothing."""
    from importlib.metadata import version

    from airflow_dagops.releases.rollback import get_release
    from airflow_dagops.repositories.registry import add_repository

    monkeypatch.setenv("AIRFLOW__DAGOPS__VALIDATION_SKIP", "security,compat,imports,policy")
    shared = git_remote(
        {
            "dags/shared.py": package_dag("shared"),
            "requirements.txt": "packaging==20.0\n",  # not what Airflow's environment has: accepted below
            ".dagops.yaml": "severity: {dependency-version: warning}\n",
        },
        name="shared",
    )
    add_repository("shared", shared.url, priority=10)
    assert sync_repository("shared").status == "published"
    remote = git_remote(package_files("etl_kit", "1.0.0"))
    tag(remote, "etl_kit/v1.0.0")
    catalogs.add_catalog("team", remote.url)
    catalogs.refresh_catalogs()
    assert installs.install("etl_kit", actor="dana")["status"] == "published"
    pinned = {**package_files("etl_kit", "1.1.0"), "etl_kit/requirements.txt": f"packaging=={version('packaging')}\n"}
    remote.commit("1.1.0", pinned)
    remote.git("tag", "etl_kit/v1.1.0")
    catalogs.refresh_catalogs()

    plan = updates.update("etl_kit", dry_run=True, actor="dana")

    assert plan["passed"] is False
    assert [f for f in plan["findings"] if f["rule"] == "dependency-conflict" and f["severity"] == "error"]
    shared_live = get_release(get_repository("shared").live_release_id)
    assert not [f for f in shared_live["findings"] if f["rule"] == "dependency-conflict"]  # a pre-check only asks
    with pytest.raises(ValidationFailed, match="1.0.0 stays live"):
        updates.update("etl_kit", actor="dana")
