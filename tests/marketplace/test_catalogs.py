"""Catalogs: registering, reading packages from git (tags are versions), priorities, broken packages."""

from __future__ import annotations

import shutil

import pytest

from airflow_dagops.errors import Conflict, InvalidInput, NotFound, RemoteUnreachable
from airflow_dagops.marketplace import catalogs, installs, listing, manifest
from airflow_dagops.repositories.declarative import ConfigInvalid
from tests.marketplace.conftest import EXAMPLE_PACKAGES, package_files, tag


def test_the_example_catalog_indexes_five_released_packages(community):
    [catalog] = catalogs.list_catalogs()
    assert catalog["name"] == "community" and catalog["packages"] == 5 and catalog["problems"] == []
    assert {r["name"] for r in listing.search("", limit=50)} == EXAMPLE_PACKAGES
    info = listing.package_info("postgres_backup_to_s3")
    assert info["versions"] == [
        {"version": "1.2.0", "tag": "postgres_backup_to_s3/v1.2.0", "commit": community.head(), "released": True}
    ]
    assert info["providers"] == ["apache-airflow-providers-postgres", "apache-airflow-providers-amazon"]
    assert set(info["missing_providers"]) == set(info["providers"])  # neither is installed here
    assert info["dag_files"] == ["postgres_backup_to_s3.py"]
    assert info["readme"].startswith("# postgres_backup_to_s3")
    assert "pg_backup_bucket" in info["example_config"]
    assert info["author"].startswith("Data Platform") and info["license"] == "Apache-2.0"
    assert info["other_catalogs"] == [] and info["reviews"] == []


def test_versions_come_from_tags_and_an_untagged_head_is_listed_but_not_installable(dagops_env, git_remote):
    remote = git_remote(package_files("etl_kit", "1.0.0"))
    tag(remote, "etl_kit/v1.0.0")
    remote.commit("1.1.0", package_files("etl_kit", "1.1.0"))
    tag(remote, "etl_kit/v1.1.0")
    remote.commit("2.0.0 in progress", package_files("etl_kit", "2.0.0"))
    tag(remote, "unrelated-tag")
    catalogs.add_catalog("team", remote.url)
    catalogs.refresh_catalogs(["team"])
    info = listing.package_info("etl_kit")
    assert [(v["version"], v["released"]) for v in info["versions"]] == [
        ("2.0.0", False),
        ("1.1.0", True),
        ("1.0.0", True),
    ]
    assert info["version"] == "1.1.0"  # the newest released version is the one shown and installed
    with pytest.raises(NotFound, match="not released yet"):
        installs.install("etl_kit", version="2.0.0", actor="dana", sync=False)
    with pytest.raises(NotFound, match="released versions: 1.1.0, 1.0.0"):
        installs.install("etl_kit", version="9.9", actor="dana", sync=False)


def test_a_broken_package_is_skipped_with_its_line_and_the_rest_is_indexed(dagops_env, git_remote):
    files = package_files("good_one", "1.0.0")
    files["broken/dagops-package.yaml"] = "name: broken\nversion: 1.0\nsummary: x\ndags: [b.py]\ncolour: red\n"
    files.update({f"lost/{k.split('/', 1)[1]}": v for k, v in package_files("lost", "1.0.0").items()})
    files["lost/dagops-package.yaml"] += "readme: README.md\n"  # listed, not there
    remote = git_remote(files)
    tag(remote, "good_one/v2.0.0")  # the yaml at that tag says 1.0.0
    catalogs.add_catalog("team", remote.url)
    [result] = catalogs.refresh_catalogs()
    assert result["status"] == "ok" and result["packages"] == 1
    problems = "\n".join(result["problems"])
    assert "broken/dagops-package.yaml:2: version: 1.0 is not a string" in problems
    assert "broken/dagops-package.yaml:5: colour: is not a known key" in problems
    assert "lost/dagops-package.yaml: listed files missing from the folder: README.md" in problems
    assert "tag good_one/v2.0.0: good_one/dagops-package.yaml says version '1.0.0'" in problems
    assert catalogs.list_catalogs()[0]["problems"] == result["problems"]


def test_two_catalogs_with_one_package_name_the_lower_priority_number_wins(dagops_env, git_remote):
    company = git_remote(package_files("etl_kit", "3.0.0", summary="Company build"), name="company")
    tag(company, "etl_kit/v3.0.0")
    community = git_remote(package_files("etl_kit", "1.0.0", summary="Community build"), name="community")
    tag(community, "etl_kit/v1.0.0")
    catalogs.add_catalog("community", community.url, priority=100)
    catalogs.add_catalog("company", company.url, priority=10)
    catalogs.refresh_catalogs()
    info = listing.package_info("etl_kit")
    assert (info["catalog"], info["version"], info["summary"]) == ("company", "3.0.0", "Company build")
    assert info["other_catalogs"] == [{"catalog": "community", "version": "1.0.0"}]
    [found] = listing.search("etl_kit")
    assert found["catalog"] == "company"
    assert [c["name"] for c in catalogs.list_catalogs()] == ["company", "community"]  # by priority
    # Installing takes the winning catalog's package.
    installed = installs.install("etl_kit", actor="dana", sync=False)
    assert (installed["catalog"], installed["version"]) == ("company", "3.0.0")


def test_catalog_input_is_checked_before_anything_changes(dagops_env, example_catalog):
    with pytest.raises(InvalidInput, match="catalog name"):
        catalogs.add_catalog("Bad Name", example_catalog.url)
    with pytest.raises(InvalidInput, match="credentials"):
        catalogs.add_catalog("x", "https://user:secret@example.com/catalog.git", verify=False)
    with pytest.raises(InvalidInput, match="priority"):
        catalogs.add_catalog("x", example_catalog.url, priority=-1)
    with pytest.raises(RemoteUnreachable):
        catalogs.add_catalog("x", f"file://{example_catalog.path}-missing")
    assert catalogs.list_catalogs() == []
    catalogs.add_catalog("community", example_catalog.url)
    with pytest.raises(Conflict, match="already registered"):
        catalogs.add_catalog("community", example_catalog.url)
    with pytest.raises(NotFound, match="no catalog named nope"):
        catalogs.refresh_catalogs(["nope"])


def test_an_unreachable_catalog_keeps_its_index_and_records_the_error(community, dagops_env):
    moved = community.path.with_name("moved")
    shutil.move(community.path, moved)
    [result] = catalogs.refresh_catalogs()
    assert result["status"] == "failed" and "community-catalog" in result["message"]
    [catalog] = catalogs.list_catalogs()
    assert catalog["packages"] == 5 and catalog["last_error"] == result["message"]


def test_removing_a_catalog_forgets_its_packages_and_mirror(community, dagops_env):
    assert (dagops_env.dagops_home / "catalogs" / "community.git").is_dir()
    assert "removed catalog 'community'" in catalogs.remove_catalog("community")
    assert catalogs.list_catalogs() == [] and listing.search("") == []
    assert not (dagops_env.dagops_home / "catalogs" / "community.git").exists()
    with pytest.raises(NotFound):
        catalogs.remove_catalog("community")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "name: Bad Name\nversion: '1'\nsummary: s\ndags: [a.py]\n",
            "dagops-package.yaml:1: name: 'Bad Name': use 1-59",
        ),
        (
            "name: a\nversion: 'one'\nsummary: s\ndags: [a.py]\n",
            "dagops-package.yaml:2: version: 'one' is not a version",
        ),
        ("name: a\nversion: '1'\nsummary: s\ndags: [../a.py]\n", "dagops-package.yaml:4: dags[0]: '../a.py' must be"),
        ("name: a\nversion: '1'\nsummary: s\ndags: [a.sh]\n", "dags[0]: 'a.sh' is not a Python file"),
        ("name: a\nversion: '1'\nsummary: s\ndags: [a.py]\nproviders: ['not a req!']\n", "providers[0]"),
        ("name: a\nversion: '1'\ndags: [a.py]\n", "dagops-package.yaml:1: 'summary' is a required property"),
        ("name: a\n  version: [\n", "not valid YAML"),
    ],
)
def test_package_file_problems_name_their_line_and_key(text, expected):
    with pytest.raises(ConfigInvalid) as caught:
        manifest.parse(text)
    assert expected in str(caught.value)


def test_a_valid_package_file_parses_with_defaults():
    spec = manifest.parse("name: a\nversion: 1.2.0\nsummary: s\ndags: [a.py]\n")
    assert (spec.name, spec.version, spec.tags, spec.providers, spec.tag) == ("a", "1.2.0", [], [], "a/v1.2.0")


def test_a_package_folder_may_have_another_name_than_the_package(dagops_env, git_remote):
    remote = git_remote(package_files("etl_kit", "1.0.0", folder="etl"))
    tag(remote, "etl_kit/v1.0.0")
    catalogs.add_catalog("team", remote.url)
    [result] = catalogs.refresh_catalogs()
    assert result["problems"] == []
    info = listing.package_info("etl_kit")
    assert info["folder"] == "etl" and info["versions"][0]["released"] is True
