"""Real browser, real Airflow: log in, open Admin → Marketplace, search, open a package, install it, rate and
review it.

The catalog is examples/catalog made into a git repository (`marketplace.catalogs.catalog_repo_from_folder`)
and registered in the Airflow instance's dagops as `community`. The install is a real `dagops_sync` run in the
real scheduler, and the package's DAG must then be known to Airflow itself. A review carrying `<script>` and
`<img onerror>` must show as text and run nothing.
"""

# ruff: noqa: F811 - the browser fixtures are imported from tests/browser/conftest.py, then named by the test

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from playwright.sync_api import FrameLocator, Page, expect

from airflow_dagops.marketplace import catalogs
from tests.browser.conftest import airflow, browser, page, screenshots  # noqa: F401 - fixtures
from tests.browser.test_dag_repositories_page import log_in
from tests.helpers.servers import wait_for

pytestmark = pytest.mark.e2e

EXAMPLE_CATALOG = Path(__file__).resolve().parents[2] / "examples" / "catalog"
PACKAGE, DAG_ID = "cleanup_old_logs", "cleanup_old_logs"
SYNC_TIMEOUT = 150  # seconds: a real Airflow run (schedule, start a worker, fetch, validate, publish)
PAGE_IFRAME = "iframe[title='Marketplace']"
# Sets a flag in the top window if it ever runs: it must not.
HOSTILE_REVIEW = (
    "Great DAG <script>window.top.__dagops_xss = 'script'</script>"
    "<img src=x onerror=\"window.top.__dagops_xss = 'img'\"> & <b>bold?</b>"
)


@pytest.fixture
def community_catalog(airflow, tmp_path):
    """examples/catalog as a git repository, registered and refreshed in the instance as `community`."""
    repo = tmp_path / "catalog"
    catalogs.catalog_repo_from_folder(EXAMPLE_CATALOG, repo)
    script = (
        "from airflow_dagops.marketplace import catalogs as m; "
        f"m.add_catalog('community', 'file://{repo}'); m.refresh_catalogs()"
    )
    airflow.run(sys.executable, "-c", script)
    return repo


def open_marketplace(page: Page, screenshots) -> FrameLocator:
    page.get_by_role("button", name="Admin").click()
    entry = page.get_by_role("menuitem", name="Marketplace")
    expect(entry).to_be_visible()
    expect(page.get_by_role("menuitem", name="DAG Repositories")).to_be_visible()  # side by side
    screenshots(page, "admin-menu")
    entry.click()
    expect(page).to_have_url(re.compile(r"/plugin/marketplace"))
    frame = page.frame_locator(PAGE_IFRAME)
    expect(frame.locator("[data-testid=package-card]").first).to_be_visible()
    return frame


def test_search_install_rate_and_review_a_package_in_the_browser(airflow, community_catalog, page: Page, screenshots):
    log_in(page, screenshots)
    frame = open_marketplace(page, screenshots)
    expect(frame.locator("[data-testid=package-card]")).to_have_count(5)  # the whole example catalog
    screenshots(page, "all-packages")

    # Search, with a typo: the cleanup package comes first, with its badge, rating and install count.
    frame.locator("[data-testid=search-input]").fill("clean old lgos")
    frame.locator("[data-testid=search-button]").click()
    first = frame.locator("[data-testid=package-card]").first
    expect(first).to_have_attribute("data-name", PACKAGE)
    expect(first.locator("[data-testid=version]")).to_contain_text("1.1.0")
    expect(first.locator("[data-testid=badge]")).to_be_visible()
    expect(first.locator("[data-testid=rating]")).to_contain_text("not rated")
    expect(first.locator("[data-testid=installs]")).to_have_text("0 installs")
    screenshots(page, "search-results")

    # The package page: README rendered from Markdown on the server, facts from the API.
    first.locator("[data-testid=package-link]").click()
    expect(frame.locator("#package-title")).to_have_text(PACKAGE)
    expect(frame.locator("[data-testid=readme] h1")).to_have_text(PACKAGE)
    expect(frame.locator("[data-testid=readme] code").first).to_be_visible()
    expect(frame.locator("[data-testid=providers]")).to_contain_text("apache-airflow-providers-standard")
    expect(frame.locator("[data-testid=no-reviews]")).to_be_visible()
    expect(frame.locator("#main")).not_to_contain_text("null")  # no missing value shown as "null"
    screenshots(page, "package-page")

    # Install: a real dagops_sync run validates and publishes it; the page follows the run until it is live.
    wait_for(lambda: "dagops_sync" in airflow.dag_ids(), timeout=90, what="the dagops_sync system DAG")
    frame.locator("[data-testid=install-form] [data-testid=install]").click()
    dialog = frame.locator("[data-testid=install-dialog]")  # Install asks first: version, namespace, what is missing
    expect(dialog.locator("[data-testid=install-requirements-ok]")).to_be_visible()
    dialog.locator("[data-testid=install-confirm]").click()
    status = frame.locator("[data-testid=install-status]")
    expect(status.locator("[data-testid=install-run]")).to_be_visible()  # the Airflow run, linked at once
    screenshots(page, "installing")
    wait_for(
        lambda: status.get_attribute("data-state") in ("live", "failed"),
        timeout=SYNC_TIMEOUT,
        interval=1,
        what="the install's dagops_sync run to finish",
    )
    assert status.get_attribute("data-state") == "live", status.inner_text()
    expect(status.locator(f"[data-testid=live-dag][data-dag-id={DAG_ID}]")).to_be_visible()
    expect(frame.locator("[data-testid=installed]")).to_contain_text(f"Installed in {PACKAGE}")
    expect(frame.locator("[data-testid=installs]")).to_have_text("1 install")
    screenshots(page, "installed")
    wait_for(lambda: DAG_ID in airflow.dag_ids(), timeout=90, what=f"Airflow to know the {DAG_ID} DAG")
    assert (airflow.home / "dags" / PACKAGE / "cleanup_old_logs.py").is_file()

    # Rate it, and review it with markup that must stay text.
    frame.locator("[data-testid=star-4]").click()
    expect(frame.locator("#package-stats [data-testid=rating]")).to_have_attribute("data-rating", "4.0")
    frame.locator("[data-testid=review-input]").fill(HOSTILE_REVIEW)
    frame.locator("[data-testid=review-submit]").click()
    review = frame.locator("[data-testid=review]").first
    expect(review.locator("[data-testid=review-text]")).to_have_text(HOSTILE_REVIEW)
    expect(review.locator("[data-testid=review-author]")).to_have_text("admin")
    expect(frame.locator("[data-testid=reviews] img")).to_have_count(0)
    expect(frame.locator("[data-testid=reviews] script")).to_have_count(0)
    expect(frame.locator("[data-testid=reviews] b")).to_have_count(0)
    screenshots(page, "reviewed")
    assert page.evaluate("window.__dagops_xss") is None

    # Back on the search page, the card says where it is installed and shows the new rating.
    page.goto("/plugin/marketplace")
    card = page.frame_locator(PAGE_IFRAME).locator(f"[data-testid=package-card][data-name={PACKAGE}]")
    expect(card.locator("[data-testid=installed]")).to_contain_text(PACKAGE)
    expect(card.locator("[data-testid=rating]")).to_have_attribute("data-count", "1")
    screenshots(page, "list-after-install")
    assert page.evaluate("window.__dagops_xss") is None

    # Uninstall: a second click confirms (the iframe may not open dialogs); the DAGs leave the dags folder.
    card.locator("[data-testid=open-package]").click()
    frame = page.frame_locator(PAGE_IFRAME)
    frame.locator("[data-testid=uninstall]").click()
    frame.locator("[data-testid=uninstall-confirm]").click()
    expect(frame.locator("[data-testid=install-form]")).to_be_visible()
    assert not (airflow.home / "dags" / PACKAGE).exists()
    screenshots(page, "uninstalled")
