"""Download statistics (issue 23, part 4): every install, update and uninstall of a package version is counted, per
package and per version, shown in search results and on the package page, and sortable (`sort=downloads`)."""

from __future__ import annotations

import json

import pytest

from airflow_dagops.errors import InvalidInput
from airflow_dagops.marketplace import catalogs, installs, listing, updates
from tests.marketplace.conftest import package_dag, package_files, tag


def _downloads(name: str) -> dict:
    return next(item for item in listing.search("", limit=500) if item["name"] == name)["downloads"]


def test_installs_and_uninstalls_are_counted_and_sort_the_search(community, dagops_env):
    assert _downloads("failure_notifications") == {"installs": 0, "updates": 0, "uninstalls": 0, "downloads": 0}
    for _ in range(2):
        installs.install("failure_notifications", actor="dana", sync=False, force=True)
        installs.uninstall("failure_notifications", actor="dana")
    installs.install("failure_notifications", actor="dana", sync=False, force=True)
    installs.install("data_quality_checks", actor="lee", sync=False)
    assert _downloads("failure_notifications") == {"installs": 3, "updates": 0, "uninstalls": 2, "downloads": 3}
    assert _downloads("data_quality_checks")["downloads"] == 1
    ranked = [item["name"] for item in listing.search("", limit=500, sort="downloads")]
    assert ranked[:2] == ["failure_notifications", "data_quality_checks"]
    assert ranked[2:] == sorted(ranked[2:])  # no downloads: the relevance order (by name for an empty query)
    by_name = [item["name"] for item in listing.search("", limit=500, sort="name")]
    assert by_name == sorted(by_name) and ranked != by_name
    assert [item["name"] for item in listing.search("", limit=1, sort="downloads")] == ["failure_notifications"]
    info = listing.package_info("failure_notifications")
    assert info["downloads"]["downloads"] == 3
    [current] = [v for v in info["downloads_by_version"] if v["version"] == info["version"]]
    assert current == {"version": info["version"], "installs": 3, "updates": 0, "uninstalls": 2, "downloads": 3}
    with pytest.raises(InvalidInput, match="sort must be one of"):
        listing.search("", sort="popularity")


def test_a_refused_install_counts_nothing(community, dagops_env):
    with pytest.raises(Exception, match="apache-airflow-providers-amazon"):
        installs.install("s3_minio_sync", actor="dana", sync=False)
    assert _downloads("s3_minio_sync")["downloads"] == 0


def test_updates_are_counted_for_the_version_they_bring(dagops_env, git_remote, monkeypatch):
    monkeypatch.setenv("AIRFLOW__DAGOPS__VALIDATION_SKIP", "security,compat,imports,policy")
    remote = git_remote(package_files("etl_kit", "1.0.0"))
    tag(remote, "etl_kit/v1.0.0")
    catalogs.add_catalog("team", remote.url)
    catalogs.refresh_catalogs()
    assert installs.install("etl_kit", actor="dana")["status"] == "published"
    remote.commit("2.0.0", package_files("etl_kit", "2.0.0", dag=package_dag("etl_kit", tags='["v2"]')))
    remote.git("tag", "etl_kit/v2.0.0")
    catalogs.refresh_catalogs()
    updates.update("etl_kit", dry_run=True, actor="dana")  # a dry run brings nothing
    assert _downloads("etl_kit") == {"installs": 1, "updates": 0, "uninstalls": 0, "downloads": 1}
    assert updates.update("etl_kit", actor="dana")["status"] == "published"
    installs.uninstall("etl_kit", actor="dana")
    assert _downloads("etl_kit") == {"installs": 1, "updates": 1, "uninstalls": 1, "downloads": 2}
    by_version = {v["version"]: v for v in listing.package_info("etl_kit")["downloads_by_version"]}
    assert (by_version["1.0.0"]["installs"], by_version["1.0.0"]["updates"]) == (1, 0)
    assert (by_version["2.0.0"]["updates"], by_version["2.0.0"]["uninstalls"]) == (1, 1)


def test_cli_search_sorts_by_downloads_and_info_shows_them(community, cli):
    installs.install("data_quality_checks", actor="dana", sync=False)
    result = cli("marketplace", "search", "--sort", "downloads", "--json")
    assert result.exit_code == 0, result.output
    items = json.loads(result.output)
    assert items[0]["name"] == "data_quality_checks" and items[0]["downloads"]["downloads"] == 1
    table = cli("marketplace", "search", "--sort", "downloads").output
    assert "downloads" in table and table.index("data_quality_checks") < table.index("cleanup_old_logs")
    info = cli("marketplace", "info", "data_quality_checks")
    assert "downloads: 1 (1 installs, 0 updates, 0 uninstalls)" in info.output
    bad = cli("marketplace", "search", "--sort", "popularity")
    assert bad.exit_code == 2 and "sort must be one of" in bad.output


def test_rest_search_sorts_by_downloads_and_the_package_page_counts_per_version(community, web):
    installs.install("failure_notifications", actor="dana", sync=False, force=True)
    answer = web.api("GET", "marketplace/search?sort=downloads&limit=2", as_="reader")
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["sort"] == "downloads" and body["items"][0]["name"] == "failure_notifications"
    assert body["items"][0]["downloads"] == {"installs": 1, "updates": 0, "uninstalls": 0, "downloads": 1}
    assert web.api("GET", "marketplace/search?sort=bogus", as_="reader").status_code == 422
    page = web.api("GET", "marketplace/packages/failure_notifications", as_="reader").get_json()
    assert sum(v["installs"] for v in page["downloads_by_version"]) == 1
