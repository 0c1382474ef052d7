"""Publishing: a validated package folder is pushed to a new branch of the catalog (the pull-request step)."""

from __future__ import annotations

import shutil

import pytest

from airflow_dagops.errors import Conflict, InvalidInput, ValidationFailed
from airflow_dagops.marketplace import publishing
from airflow_dagops.repositories.declarative import ConfigInvalid
from tests.helpers.repos import write_file
from tests.marketplace.conftest import EXAMPLES, package_files


def _folder(tmp_path, name="etl_kit", version="1.0.0", **kwargs):
    root = tmp_path / "work"
    for relative, content in package_files(name, version, **kwargs).items():
        write_file(root, relative, content)
    return root / name


def test_publish_pushes_a_new_branch_with_one_commit(community, tmp_path):
    result = publishing.publish(_folder(tmp_path), catalog="community", actor="dana")
    assert result["branch"] == "dagops/publish-etl_kit-1.0.0"
    remote_head = community.git("rev-parse", "refs/heads/dagops/publish-etl_kit-1.0.0")
    assert remote_head == result["commit"]
    assert community.git("rev-parse", f"{result['commit']}^") == community.head("main")
    assert "etl_kit/etl_kit.py" in community.git("show", "--name-only", "--format=", result["commit"])
    assert community.git("log", "-1", "--format=%an", result["commit"]) == "dana"
    assert community.head("main") == community.git("rev-parse", "main")  # main untouched
    with pytest.raises(Conflict, match="already exists"):
        publishing.publish(_folder(tmp_path), catalog="community", actor="dana")  # that branch exists now


def test_publishing_an_existing_package_replaces_its_folder(community, tmp_path):
    source = tmp_path / "pkg"
    shutil.copytree(EXAMPLES / "cleanup_old_logs", source)
    spec = source / "dagops-package.yaml"
    spec.write_text(spec.read_text().replace("version: 1.1.0", "version: 1.2.0"))
    result = publishing.publish(source, catalog="community", actor="dana")
    changed = community.git("show", "--name-only", "--format=", result["commit"]).split()
    assert changed == ["cleanup_old_logs/dagops-package.yaml"]


def test_a_released_version_is_not_published_again(community, tmp_path):
    source = tmp_path / "pkg"
    shutil.copytree(EXAMPLES / "cleanup_old_logs", source)
    with pytest.raises(Conflict, match="already released"):
        publishing.publish(source, catalog="community", actor="dana")


def test_a_package_that_fails_validation_is_not_pushed(community, tmp_path):
    with pytest.raises(ValidationFailed, match="Nothing was pushed"):
        publishing.publish(_folder(tmp_path, dag="def broken(:  # an Airflow DAG\n"), catalog="community", actor="dana")
    assert "dagops/publish" not in community.git("branch", "--list")


def test_publish_checks_the_folder_and_its_package_file(community, tmp_path):
    with pytest.raises(InvalidInput, match="has no dagops-package.yaml"):
        publishing.publish(tmp_path, catalog="community", actor="dana")
    folder = _folder(tmp_path, readme="README.md")
    with pytest.raises(ConfigInvalid, match="missing from the folder: README.md"):
        publishing.publish(folder, catalog="community", actor="dana")
    (folder / "dagops-package.yaml").write_text("name: x\nversion: 1.0\n")
    with pytest.raises(ConfigInvalid, match="dagops-package.yaml:2: version"):
        publishing.publish(folder, catalog="community", actor="dana")


def test_publish_to_an_unknown_catalog(dagops_env, tmp_path):
    from airflow_dagops.errors import NotFound

    with pytest.raises(NotFound, match="no catalog named 'team'"):
        publishing.publish(_folder(tmp_path), catalog="team", actor="dana")
