"""Badges: every catalog package validated with the pipeline, per-step results stored and shown."""

from __future__ import annotations

import pytest

from airflow_dagops.errors import NotFound
from airflow_dagops.marketplace import catalogs, checks, listing
from tests.marketplace.conftest import EXAMPLE_PACKAGES, package_files, tag


def test_every_example_package_passes_and_search_shows_its_badge(community):
    results = checks.check_packages()
    assert {r["package"] for r in results} == EXAMPLE_PACKAGES
    assert {r["status"] for r in results} == {"passing"}
    badge = listing.search("cleanup_old_logs")[0]["badge"]
    assert badge["status"] == "passing" and badge["version"] == "1.1.0" and badge["checked_at"]
    # The test environment skips the slow steps ([dagops] validation_skip); the badge says so.
    assert badge["checks"]["syntax"] == "passed" and badge["checks"]["structure"] == "skipped"


def test_a_failing_package_gets_a_failing_badge_naming_the_step(dagops_env, git_remote):
    files = package_files("broken_kit", "1.0.0", dag="def broken(:  # an Airflow DAG\n")
    files.update(package_files("fine_kit", "1.0.0"))
    remote = git_remote(files)
    tag(remote, "broken_kit/v1.0.0")
    tag(remote, "fine_kit/v1.0.0")
    catalogs.add_catalog("team", remote.url)
    catalogs.refresh_catalogs()
    [result] = checks.check_packages(["broken_kit"])
    assert result["status"] == "failing" and result["findings"] == 1
    assert result["checks"]["syntax"] == "failed" and result["checks"]["dependencies"] == "passed"
    assert result["errors"][0]["rule"] == "syntax-error"
    info = listing.package_info("broken_kit")
    assert info["badge"]["status"] == "failing"
    assert listing.package_info("fine_kit")["badge"]["status"] == "unknown"  # not checked yet
    with pytest.raises(NotFound, match="nope"):
        checks.check_packages(["nope"])


def test_a_fixed_version_turns_the_badge_green(dagops_env, git_remote):
    remote = git_remote(package_files("kit", "1.0.0", dag="def broken(:  # an Airflow DAG\n"))
    tag(remote, "kit/v1.0.0")
    catalogs.add_catalog("team", remote.url)
    catalogs.refresh_catalogs()
    assert checks.check_packages()[0]["status"] == "failing"
    remote.commit("fix", package_files("kit", "1.0.1"))
    tag(remote, "kit/v1.0.1")
    catalogs.refresh_catalogs()
    [result] = checks.check_packages()
    assert (result["status"], result["version"]) == ("passing", "1.0.1")
