"""Catalog fixtures: the shipped example catalog (examples/catalog) turned into a real git repository."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_dagops.marketplace import catalogs
from tests.helpers.repos import GitRemote, run_git

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "catalog"
EXAMPLE_PACKAGES = {
    "cleanup_old_logs",
    "data_quality_checks",
    "failure_notifications",
    "postgres_backup_to_s3",
    "s3_minio_sync",
}


def package_yaml(name: str, version: str, **fields) -> str:
    """A minimal valid dagops-package.yaml; `fields` override or add keys (lists as YAML flow lists)."""
    data = {"name": name, "version": f'"{version}"', "summary": f"The {name} package", "dags": f"[{name}.py]"}
    data.update({k: (f"[{', '.join(v)}]" if isinstance(v, list) else v) for k, v in fields.items()})
    return "".join(f"{key}: {value}\n" for key, value in data.items())


def package_dag(dag_id: str, *, imports: str = "", tags: str = '["example"]') -> str:
    return f'''from __future__ import annotations

import pendulum
from airflow.sdk import dag, task
{imports}

@dag(
    dag_id="{dag_id}",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags={tags},
    default_args={{"owner": "team", "retries": 1}},
)
def {dag_id}():
    @task
    def step():
        return 1

    step()


{dag_id}()
'''


def package_files(name: str, version: str, *, folder: str | None = None, dag: str | None = None, **fields) -> dict:
    folder = folder or name
    return {
        f"{folder}/dagops-package.yaml": package_yaml(name, version, **fields),
        f"{folder}/{name}.py": dag or package_dag(name),
    }


@pytest.fixture
def example_catalog(tmp_path) -> GitRemote:
    """examples/catalog as a git repository with one tag per package version."""
    dest = tmp_path / "community-catalog"
    catalogs.catalog_repo_from_folder(EXAMPLES, dest)
    return GitRemote(dest)


@pytest.fixture
def community(dagops_env, example_catalog) -> GitRemote:
    """The example catalog registered as `community` and refreshed."""
    catalogs.add_catalog("community", example_catalog.url)
    [result] = catalogs.refresh_catalogs()
    assert result["status"] == "ok", result
    return example_catalog


def tag(remote: GitRemote, name: str) -> None:
    run_git("tag", name, cwd=remote.path)
