"""Real browser, real Airflow with `[dagops] publish_mode = bundle` (the default, so the shared instance of
tests/helpers/airflow.py): Airflow's own UI (the DAG's Code tab) shows the dagops-releases bundle version a DAG was
parsed at, and its link leads, through the dagops API, to the commit on GitHub.

The repository is registered with its GitHub URL. This machine has no internet, so git fetches that URL from a
local repository (`url.<local>.insteadOf` in a git config of the test's own, the way a Git mirror or proxy is
configured: the URL dagops stores, and links from, is GitHub's). Only `dagops repos add` and `dagops sync`, run by
the test, reach the remote; the dag-processor serves the release folder the sync made. The browser follows the link
signed in with Airflow's own cookie, and the test checks the address the redirect sends it to (github.com itself is
out of reach).

With DAGOPS_UPDATE_SCREENSHOTS=1 the Code tab is saved to docs/screenshots/bundle-version.png.
"""

from __future__ import annotations

import pytest
import requests
from playwright.sync_api import Page, expect

from tests.browser.test_dag_repositories_page import log_in
from tests.browser.test_first_hour import docs_screenshot
from tests.helpers.programs import requires_program
from tests.helpers.repos import dag_source
from tests.helpers.servers import wait_for

pytestmark = [pytest.mark.e2e, requires_program("chromium"), pytest.mark.timeout(600)]

NAME = "bundle-view"
DAG_ID = "bundle_view"
GITHUB_URL = "https://github.com/acme/bundle-dags.git"


@pytest.fixture
def airflow(real_airflow):
    """The shared Airflow (tests/conftest.py's browser fixtures print its logs on failure); this test's repository
    is removed afterwards, as the other browser tests expect."""
    yield real_airflow
    try:
        real_airflow.run("dagops", "repos", "remove", NAME)
    except RuntimeError as error:  # never registered (the test failed early): nothing to remove
        print(error)


def newest_dag_version(airflow) -> dict | None:
    response = airflow.api("GET", f"dags/{DAG_ID}/dagVersions")
    versions = response.json().get("dag_versions", []) if response.ok else []
    return max(versions, key=lambda v: v["version_number"], default=None)


def test_airflows_ui_shows_the_bundle_version_and_links_to_the_commit(
    airflow, git_remote, page: Page, screenshots, tmp_path
):
    remote = git_remote({"dags/bundle_view.py": dag_source(DAG_ID)}, name=NAME)
    gitconfig = tmp_path / "gitconfig"
    gitconfig.write_text(f'[url "{remote.url}"]\n\tinsteadOf = {GITHUB_URL}\n')
    github_here = {"GIT_CONFIG_GLOBAL": str(gitconfig)}
    airflow.run("dagops", "repos", "add", NAME, GITHUB_URL, "--namespace", NAME, env=github_here)
    airflow.run("dagops", "sync", NAME, env=github_here)
    commit = remote.head()
    dag_version = wait_for(lambda: newest_dag_version(airflow), timeout=180, what=f"{DAG_ID} parsed")
    version = dag_version["bundle_version"]
    assert dag_version["bundle_name"] == "dagops-releases"
    version_page = f"{airflow.url}/pluginsv2/dagops/api/v1/bundle/versions/{version}"
    commit_page = f"https://github.com/acme/bundle-dags/commit/{commit}"

    # The link's target redirects to the commit on GitHub (the version changed this one repository).
    answer = requests.get(
        version_page, headers={"Authorization": f"Bearer {airflow.token}"}, allow_redirects=False, timeout=30
    )
    assert (answer.status_code, answer.headers.get("Location")) == (302, commit_page), answer.text

    log_in(page, screenshots)
    page.goto(f"/dags/{DAG_ID}/code")
    link = page.get_by_role("link", name="Bundle Url")  # Airflow's own label of the bundle version's link
    expect(link).to_have_text(version)
    expect(link).to_have_attribute("href", version_page)
    screenshots(page, "code-tab-bundle-version")

    # The Details tab: the DAG version's "Bundle Version" and "Bundle Link".
    page.goto(f"/dags/{DAG_ID}/details")
    expect(page.get_by_text("Bundle Version", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name=version_page)).to_have_attribute("href", version_page)
    screenshots(page, "details-tab-bundle-version")
    docs_screenshot(page, "bundle-version")
    page.goto(f"/dags/{DAG_ID}/code")

    # Clicked, it opens a tab that asks the dagops API (signed in by Airflow's `_token` cookie), which redirects it to
    # the commit's page on GitHub (not loaded: no internet here; the request the redirect makes is what counts).
    with page.context.expect_event("request", lambda request: request.url.startswith("https://github.com/")) as sent:
        link.click()
    assert sent.value.url == commit_page
    assert sent.value.redirected_from is not None
    assert sent.value.redirected_from.url == version_page
