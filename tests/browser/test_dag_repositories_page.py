"""Real browser, real Airflow: log in, open Admin → DAG Repositories, add a repository, sync, roll back.

Everything goes through the UI as a user would: Airflow's own login form, its menu, and the dagops page
inside the Airflow UI's iframe. The syncs are real `dagops_sync` runs in the real scheduler.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import FrameLocator, Page, expect

from tests.helpers.repos import dag_source
from tests.helpers.servers import wait_for

pytestmark = pytest.mark.e2e

# The README's screenshot is refreshed from this test's "synced" step when this is set (a plain test run
# writes only to test-artifacts/, never to tracked files).
README_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "dag-repositories.png"
UPDATE_README_SCREENSHOT = os.environ.get("DAGOPS_UPDATE_SCREENSHOTS") == "1"
SYNC_TIMEOUT = 150  # seconds: a sync is a real Airflow run (schedule, start a worker, fetch, validate, publish)
PAGE_IFRAME = "iframe[title='DAG Repositories']"  # the Airflow UI shows external views in an iframe
# Each step of Airflow's own login is a few api-server round trips, which take long on a loaded machine (the whole
# suite on 2 cores): a bound on waiting, not a speed assertion.
UI_STEP_MS = 60_000


def log_in(page: Page, screenshots) -> None:
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/auth/login"), timeout=UI_STEP_MS)  # not signed in yet: Airflow's login
    page.locator("input[name=username]").fill("admin")
    page.locator("input[name=password]").fill("admin")
    screenshots(page, "login-form")
    page.get_by_role("button", name="Sign in").click()
    expect(page).not_to_have_url(re.compile(r"/auth/login"), timeout=UI_STEP_MS)
    # The UI adds its Admin menu once it has asked the api-server what the user may see.
    expect(page.get_by_role("button", name="Admin")).to_be_visible(timeout=UI_STEP_MS)
    screenshots(page, "signed-in")


def open_dag_repositories(page: Page, screenshots) -> FrameLocator:
    page.get_by_role("button", name="Admin").click()
    entry = page.get_by_role("menuitem", name="DAG Repositories")
    expect(entry).to_be_visible()
    screenshots(page, "admin-menu")
    entry.click()
    expect(page).to_have_url(re.compile(r"/plugin/dag-repositories"))
    frame = page.frame_locator(PAGE_IFRAME)
    expect(frame.locator("[data-testid=add-repo]")).to_be_visible()
    # The buttons are in the page's HTML before its script binds them: a click that early does nothing (a Discover
    # click was lost on busy CI cores). The list's first load, which comes after the binding, says the script runs.
    expect(frame.locator("[data-testid=repo-list]")).to_have_attribute("aria-busy", "false")
    # Until then the buttons took no clicks at all (dagops.css): the script lifted that when it bound them.
    expect(frame.locator("html")).not_to_have_class(re.compile("dagops-starting"))
    return frame


def wait_until_synced(card, commit: str) -> None:
    """Poll the card (the page refreshes itself) until it is synced with `commit` live; fail at once when
    the sync fails, with the card's error."""

    def synced() -> bool:
        status = card.get_attribute("data-status")
        if status == "failed":
            raise AssertionError(f"the sync failed: {card.locator('[data-testid=error]').inner_text()}")
        return status == "synced" and commit[:7] in card.locator("[data-testid=live-commit]").inner_text()

    wait_for(synced, timeout=SYNC_TIMEOUT, interval=1, what=f"the card to be synced at {commit[:7]}")


def test_add_sync_and_roll_back_a_repository_in_the_browser(airflow, git_remote, page: Page, screenshots):
    remote = git_remote({"dags/web_alpha.py": dag_source("web_alpha"), "dags/web_beta.py": dag_source("web_beta")})
    first = remote.head()

    log_in(page, screenshots)
    frame = open_dag_repositories(page, screenshots)
    expect(frame.locator("[data-testid=empty]")).to_be_visible()  # loaded, and nothing registered yet
    screenshots(page, "empty-list")

    # Add the repository through the form.
    frame.locator("[data-testid=add-repo]").click()
    form = frame.locator("form[data-testid=repo-form]")
    expect(form).to_be_visible()
    form.locator("input[name=name]").fill("web")
    form.locator("input[name=url]").fill(remote.url)
    form.locator("input[name=ref]").fill("main")
    screenshots(page, "add-form")
    form.locator("[data-testid=save]").click()
    card = frame.locator("[data-testid=repo-card][data-name=web]")
    expect(card).to_be_visible()
    expect(form).to_be_hidden()
    expect(card.locator("[data-testid=url]")).to_contain_text(remote.url)
    expect(card.locator("[data-testid=branch]")).to_contain_text("main")
    screenshots(page, "added")

    # Sync Now needs the dagops_sync system DAG to be known to Airflow (the API answers 503 before).
    wait_for(lambda: "dagops_sync" in airflow.dag_ids(), timeout=90, what="the dagops_sync system DAG")
    card.locator("[data-testid=sync-now]").click()
    wait_until_synced(card, first)
    expect(card.locator("[data-testid=dag-count]")).to_contain_text("2")
    expect(card.locator("[data-testid=status]")).to_contain_text(re.compile("synced", re.IGNORECASE))
    screenshots(page, "synced")
    if UPDATE_README_SCREENSHOT:  # the top of the Airflow UI with the page and its synced card
        box = card.bounding_box()  # in the top page's coordinates, iframe included
        width, height = page.viewport_size["width"], page.viewport_size["height"]
        clip = {"x": 0, "y": 0, "width": width, "height": min(int(box["y"] + box["height"]) + 32, height)}
        page.screenshot(path=str(README_SCREENSHOT), clip=clip)

    # A new commit: Sync Now again publishes it.
    second = remote.commit("Add web_gamma", {"dags/web_gamma.py": dag_source("web_gamma")})
    card.locator("[data-testid=sync-now]").click()
    wait_until_synced(card, second)
    expect(card.locator("[data-testid=dag-count]")).to_contain_text("3")
    screenshots(page, "second-commit-synced")

    # Details: two releases; roll back to the older one.
    card.locator("[data-testid=open-details]").click()
    releases = frame.locator("[data-testid=release-row]")
    expect(releases).to_have_count(2)
    older = releases.filter(has_text=first[:7])
    newer = releases.filter(has_text=second[:7])
    expect(newer).to_have_attribute("data-status", "live")
    expect(older).not_to_have_attribute("data-status", "live")
    expect(newer.locator("[data-testid=rollback]")).to_have_count(0)  # no rollback to what is live
    expect(frame.locator("[data-testid=sync-row]")).to_have_count(2)
    screenshots(page, "details")

    # Credentials: a file:// remote needs no connection, and "Test access" (a real ls-remote) says ok.
    expect(frame.locator("[data-testid=credentials-conn]")).to_contain_text("none")
    frame.locator("[data-testid=test-access]").click()
    expect(frame.locator("[data-testid=access-result]")).to_have_attribute("data-kind", "ok")
    screenshots(page, "test-access")

    older.locator("[data-testid=rollback]").click()
    expect(frame.locator("[data-testid=confirm]")).to_be_visible()
    screenshots(page, "rollback-confirm")
    frame.locator("[data-testid=confirm-ok]").click()
    expect(older).to_have_attribute("data-status", "live")
    expect(newer).not_to_have_attribute("data-status", "live")
    screenshots(page, "rolled-back")

    # The sync history links to the Airflow run that did the work, opened in the Airflow UI itself.
    frame.locator("[data-testid=sync-row] [data-testid=airflow-run]").first.click()
    expect(page).to_have_url(re.compile(r"/dags/dagops_sync/runs/"))
    expect(page.locator(PAGE_IFRAME)).to_have_count(0)
    expect(page.get_by_text("dagops_sync").first).to_be_visible()  # Airflow's own run page rendered
    screenshots(page, "airflow-run")

    # The namespace link on disk points at the older release, and the list page says so too.
    live_folder = airflow.home / "dags" / "web"
    assert os.path.realpath(live_folder).endswith(first)
    page.goto("/plugin/dag-repositories")
    card = page.frame_locator(PAGE_IFRAME).locator("[data-testid=repo-card][data-name=web]")
    expect(card.locator("[data-testid=live-commit]")).to_contain_text(first[:7])
    screenshots(page, "list-after-rollback")


def test_a_dag_link_opens_the_airflow_dag_page(airflow, git_remote, page: Page, screenshots):
    """Airflow 3.3 sandboxes the iframe without allow-top-navigation, so plain target=_top links do nothing
    there (Chromium logs "Unsafe attempt to initiate navigation"); the page must still open Airflow's pages."""
    remote = git_remote({"dags/link_target.py": dag_source("link_target")}, name="links")
    airflow.run("dagops", "repos", "add", "links", remote.url)
    airflow.run("dagops", "sync", "links")  # inline: this test is about the link, not the sync

    log_in(page, screenshots)
    frame = open_dag_repositories(page, screenshots)
    frame.locator("[data-testid=repo-card][data-name=links] [data-testid=open-details]").click()
    link = frame.locator("[data-testid=dag-row][data-dag-id=link_target] [data-testid=dag-link]")
    expect(link).to_be_visible()
    screenshots(page, "details")
    link.click()
    expect(page).to_have_url(re.compile(r"/dags/link_target$"))
    expect(page.locator(PAGE_IFRAME)).to_have_count(0)  # the top window moved, not the iframe
    expect(page.get_by_text("link_target").first).to_be_visible()  # Airflow's own DAG page rendered
    screenshots(page, "airflow-dag-page")
