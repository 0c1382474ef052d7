"""Real browser, real Airflow: what a new user meets in the first hour (issue 19).

- Marketplace: Install asks first (version, namespace, what is missing); Cancel changes nothing; a package whose
  providers are missing installs only with "Install anyway"; an installed package's paused DAGs say so, and
  Unpause unpauses them in Airflow.
- The repository page shows what only the CLI showed: promotion stages, release test results, files left out of
  Airflow and why, proposals, and the repository's event feed, each from real work done by `dagops` beforehand.
- The list's cards: a long branch name stays inside its card, the cards of a row are equally tall, and badges
  and durations read alike ("Rejected", "<1 s").

With DAGOPS_UPDATE_SCREENSHOTS=1 the views are also saved to docs/screenshots/ (a plain run writes only to
test-artifacts/).
"""

# ruff: noqa: F811 - the browser fixtures are imported from tests/browser/conftest.py, then named by the test

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest
import requests
from playwright.sync_api import FrameLocator, Page, expect

from airflow_dagops.marketplace import catalogs
from tests.browser.test_dag_repositories_page import PAGE_IFRAME, log_in
from tests.helpers.programs import requires_program
from tests.helpers.repos import dag_source
from tests.helpers.servers import wait_for

pytestmark = [pytest.mark.e2e, requires_program("chromium")]

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_CATALOG = REPO_ROOT / "examples" / "catalog"
DOCS_SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"
UPDATE_DOCS_SCREENSHOTS = os.environ.get("DAGOPS_UPDATE_SCREENSHOTS") == "1"
MARKET_IFRAME = "iframe[title='Marketplace']"
SYNC_TIMEOUT = 150  # seconds: a real dagops_sync run (schedule, start a worker, fetch, validate, publish)
LONG_BRANCH = "feature/first-hour-" + "a-really-long-branch-name-" * 3 + "that-never-ends"


def dagops_api(airflow, method: str, path: str, **kwargs) -> requests.Response:
    """The dagops REST API with the admin's bearer token (what the page reads, without the page)."""
    url = f"{airflow.url}/pluginsv2/dagops/api/v1/{path}"
    return requests.request(method, url, headers={"Authorization": f"Bearer {airflow.token}"}, timeout=30, **kwargs)


def docs_screenshot(page: Page, name: str, locator=None) -> None:
    """Save a view for the docs; with `locator`, only its box (in the top page, iframe included) and a margin."""
    if not UPDATE_DOCS_SCREENSHOTS:
        return
    DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = str(DOCS_SCREENSHOTS / f"{name}.png")
    if locator is None:
        page.screenshot(path=path)
        return
    # The page lives in the Airflow UI's iframe, which scrolls by itself: only what it shows can be captured.
    locator.scroll_into_view_if_needed()
    box, viewport, margin = locator.bounding_box(), page.viewport_size, 16
    left, top = max(box["x"] - margin, 0), max(box["y"] - margin, 0)
    right = min(box["x"] + box["width"] + margin, viewport["width"])
    bottom = min(box["y"] + box["height"] + margin, viewport["height"])
    page.screenshot(path=path, clip={"x": left, "y": top, "width": right - left, "height": bottom - top})


@pytest.fixture
def removed_after(airflow):
    """Names of repositories a test registers in the shared Airflow; removed when it ends, so the tests after it
    see the instance as they expect."""
    names: list[str] = []
    yield names
    for name in names:
        dagops_api(airflow, "DELETE", f"repositories/{name}")


# -- marketplace ----------------------------------------------------------------------------------------------------
@pytest.fixture
def first_hour_catalog(airflow, tmp_path):
    """examples/catalog as a git repository, registered in the instance as `firsthour` (its own name: the shared
    Airflow may hold other tests' catalogs carrying the same packages)."""
    repo = tmp_path / "catalog"
    catalogs.catalog_repo_from_folder(EXAMPLE_CATALOG, repo)
    script = (
        "from airflow_dagops.marketplace import catalogs as m; "
        f"m.add_catalog('firsthour', 'file://{repo}'); m.refresh_catalogs(['firsthour'])"
    )
    airflow.run(sys.executable, "-c", script)
    yield repo
    for package in ("data_quality_checks", "failure_notifications"):
        dagops_api(airflow, "DELETE", f"marketplace/packages/{package}/install")
    airflow.run(
        sys.executable, "-c", "from airflow_dagops.marketplace import catalogs as m; m.remove_catalog('firsthour')"
    )


def open_marketplace(page: Page) -> FrameLocator:
    page.goto("/plugin/marketplace")
    frame = page.frame_locator(MARKET_IFRAME)
    expect(frame.locator("[data-testid=package-card]").first).to_be_visible()
    return frame


def wait_until_installed(status) -> str:
    wait_for(
        lambda: status.get_attribute("data-state") in ("live", "failed"),
        timeout=SYNC_TIMEOUT,
        interval=1,
        what="the install's dagops_sync run to finish",
    )
    return status.get_attribute("data-state")


def test_install_asks_first_refuses_missing_providers_and_unpauses(airflow, first_hour_catalog, page, screenshots):
    wait_for(lambda: "dagops_sync" in airflow.dag_ids(), timeout=90, what="the dagops_sync system DAG")
    log_in(page, screenshots)
    frame = open_marketplace(page)
    dialog = frame.locator("[data-testid=install-dialog]")
    card = frame.locator("[data-testid=package-card][data-name=data_quality_checks]")

    # Install asks first; Cancel changes nothing.
    card.locator("[data-testid=install]").click()
    expect(dialog).to_be_visible()
    expect(dialog.locator("[data-testid=install-dialog-package]")).to_have_text("data_quality_checks")
    expect(dialog.locator("[data-testid=install-dialog-namespace]")).to_have_value("data_quality_checks")
    expect(dialog.locator("[data-testid=install-requirements-ok]")).to_contain_text(
        "apache-airflow-providers-common-sql"
    )
    expect(dialog.locator("[data-testid=install-force]")).to_be_hidden()
    screenshots(page, "install-dialog")
    dialog.locator("[data-testid=install-cancel]").click()
    expect(dialog).to_be_hidden()
    expect(card.locator("[data-testid=install]")).to_be_visible()
    assert dagops_api(airflow, "GET", "marketplace/installed").json()["total"] == 0
    assert dagops_api(airflow, "GET", "repositories/pkg-data_quality_checks").status_code == 404

    # A namespace the dialog refuses, then one it takes: the package goes live there.
    card.locator("[data-testid=install]").click()
    namespace = dialog.locator("[data-testid=install-dialog-namespace]")
    namespace.fill("Not Valid")
    expect(dialog.locator("[data-testid=install-namespace-error]")).to_be_visible()
    expect(dialog.locator("[data-testid=install-confirm]")).to_be_disabled()
    namespace.fill("quality")
    expect(dialog.locator("[data-testid=install-plan]")).to_contain_text("into quality/")
    expect(dialog.locator("[data-testid=install-confirm]")).to_be_enabled()
    dialog.locator("[data-testid=install-confirm]").click()
    expect(dialog).to_be_hidden()
    status = card.locator("[data-testid=install-status]")
    assert wait_until_installed(status) == "live", status.inner_text()
    expect(card.locator("[data-testid=installed]")).to_have_text("Installed in quality")
    assert (airflow.home / "dags" / "quality" / "data_quality_checks.py").is_file()
    # Airflow creates the new DAG paused: the card says so once Airflow has parsed it.
    card_paused = card.locator("[data-testid=paused-status]")
    wait_for(
        lambda: card_paused.get_attribute("data-waiting") == "0",
        timeout=120,
        interval=1,
        what="Airflow to parse the data_quality_checks DAG",
    )
    expect(card_paused.locator("[data-testid=paused-dag][data-dag-id=data_quality_checks]")).to_be_visible()
    screenshots(page, "installed-in-quality")

    # Missing providers: the dialog names them, and installs only once "Install anyway" is ticked.
    card = frame.locator("[data-testid=package-card][data-name=failure_notifications]")
    card.locator("[data-testid=install]").click()
    expect(dialog.locator("[data-testid=install-missing-item]")).to_contain_text(["apache-airflow-providers-slack"])
    confirm = dialog.locator("[data-testid=install-confirm]")
    expect(confirm).to_have_text("Install anyway")
    expect(confirm).to_be_disabled()
    screenshots(page, "install-missing-providers")
    docs_screenshot(page, "marketplace-install-missing-providers", page.locator(MARKET_IFRAME))
    dialog.locator("[data-testid=install-force]").check()
    expect(confirm).to_be_enabled()
    confirm.click()
    status = card.locator("[data-testid=install-status]")
    expect(status.locator("[data-testid=missing-providers], [data-testid=install-progress]").first).to_be_visible()
    wait_until_installed(status)  # validated in Airflow: live or blocked, but installed on the user's word
    installed = {item["package"]: item for item in dagops_api(airflow, "GET", "marketplace/installed").json()["items"]}
    assert installed["failure_notifications"]["namespace"] == "failure_notifications"

    # The installed package's page: Airflow created its DAG paused; Unpause unpauses it in Airflow.
    page.goto("/plugin/marketplace")
    frame = page.frame_locator(MARKET_IFRAME)
    frame.locator("[data-testid=package-card][data-name=data_quality_checks] [data-testid=open-package]").click()
    paused = frame.locator("[data-testid=paused-status]")
    expect(paused.locator("[data-testid=paused-dag][data-dag-id=data_quality_checks]")).to_be_visible()
    assert airflow.api("GET", "dags/data_quality_checks").json()["is_paused"] is True
    screenshots(page, "paused")
    docs_screenshot(page, "marketplace-paused", page.locator(MARKET_IFRAME))
    paused.locator("[data-testid=unpause]").click()
    expect(paused.locator("[data-testid=dags-active]")).to_be_visible()
    assert airflow.api("GET", "dags/data_quality_checks").json()["is_paused"] is False
    screenshots(page, "unpaused")


# -- the repository page's sections ---------------------------------------------------------------------------------
TEST_MODULE = """def test_adds():
    assert 1 + 1 == 2


def test_knows_the_answer():
    assert 6 * 7 == 43, "the answer is 42"
"""


def test_repository_page_shows_promotion_tests_hidden_files_proposals_and_events(
    airflow, git_remote, page, screenshots, tmp_path, removed_after
):
    removed_after.extend(["fh_sections", "fh_owner"])
    # fh_owner (priority 1) owns the dag_id fh_shared; fh_sections has a copy of it, so that file is left out.
    owner = git_remote({"dags/fh_shared.py": dag_source("fh_shared")}, name="fh-owner")
    airflow.run("dagops", "repos", "add", "fh_owner", owner.url, "--priority", "1")
    airflow.run("dagops", "sync", "fh_owner")
    sections = git_remote(
        {
            "dags/fh_main.py": dag_source("fh_main"),
            "dags/fh_copy.py": dag_source("fh_shared"),
            "tests/test_fh.py": TEST_MODULE,
            ".dagops.yaml": "tests: optional\n",
        },
        name="fh-sections",
    )
    airflow.run("dagops", "repos", "add", "fh_sections", sections.url, "--promotion", "staging,prod:0")
    airflow.run("dagops", "sync", "fh_sections")  # into staging: promoted by hand (soak_runs 0)
    airflow.run("dagops", "promote", "fh_sections")  # to prod: live, with fh_copy.py left out
    second = sections.commit("Add fh_second", {"dags/fh_second.py": dag_source("fh_second")})
    airflow.run("dagops", "sync", "fh_sections")  # the second release waits in staging
    proposed = tmp_path / "fh_proposed.py"
    proposed.write_text(dag_source("fh_proposed"))
    airflow.run(
        "dagops", "propose", "fh_sections", str(proposed), "--title", "Add fh_proposed", "--path-prefix", "dags/"
    )

    log_in(page, screenshots)
    page.goto("/plugin/dag-repositories")
    frame = page.frame_locator(PAGE_IFRAME)
    frame.locator("[data-testid=repo-card][data-name=fh_sections] [data-testid=open-details]").click()
    releases = dagops_api(airflow, "GET", "repositories/fh_sections/releases").json()["items"]
    staged = next(r for r in releases if r["commit"] == second)
    live = dagops_api(airflow, "GET", "repositories/fh_sections").json()["live"]

    # Promotion: both stages with what is live in each; the second release waits in staging.
    stage_flow = frame.locator("[data-testid=stage-flow]")
    expect(stage_flow.locator("[data-testid=stage]")).to_have_count(2)
    expect(stage_flow.locator("[data-testid=stage][data-stage=staging]")).to_have_attribute(
        "data-release-id", str(staged["id"])
    )
    expect(stage_flow.locator("[data-testid=stage][data-stage=prod]")).to_have_attribute(
        "data-release-id", str(live["release_id"])
    )
    current = frame.locator("[data-testid=promotion-current]")
    expect(current).to_have_attribute("data-status", "soaking")
    expect(current.locator("[data-testid=promotion-status]")).to_have_text("Soaking")

    # Release tests: one passing and one failing test, as `dagops tests` shows them.
    summary = frame.locator("[data-testid=tests-summary]")
    expect(summary).to_have_attribute("data-outcome", "failed")
    expect(summary).to_contain_text("1 passed, 1 failed")
    expect(frame.locator("[data-testid=test-module][data-module='tests/test_fh.py']")).to_be_visible()
    expect(frame.locator("[data-testid=test-failure]")).to_contain_text("the answer is 42")

    # Files left out: the copy of fh_shared, and why.
    hidden = frame.locator("[data-testid=hidden-file][data-file='dags/fh_copy.py']")
    expect(hidden).to_be_visible()
    expect(hidden.locator("[data-testid=hidden-why]")).to_contain_text("fh_owner")

    # Proposals: pushed as a branch (a file:// remote has no pull requests, and the page says why).
    proposal = frame.locator("[data-testid=proposal-row]").first
    expect(proposal).to_have_attribute("data-status", "pushed")
    expect(proposal).to_contain_text("Add fh_proposed")
    expect(proposal).to_contain_text("dagops/proposal-")

    # Events: newest first, what the feed recorded for this repository.
    events = frame.locator("[data-testid=event]")
    expect(events.first).to_be_visible()
    kinds = {events.nth(i).get_attribute("data-kind") for i in range(events.count())}
    assert {"sync", "promotion", "proposal"} <= kinds, kinds
    expect(frame.locator("[data-testid=event][data-kind=proposal] [data-testid=event-summary]")).to_contain_text(
        "Add fh_proposed"
    )
    for panel in ("promotion", "tests", "proposals"):
        frame.locator(f"#panel-{panel}").scroll_into_view_if_needed()
        screenshots(page, f"section-{panel}")
    docs_screenshot(page, "repository-promotion", frame.locator("#panel-promotion"))
    frame.locator("#panel-tests").scroll_into_view_if_needed()
    docs_screenshot(page, "repository-tests-and-hidden-files", frame.locator("#panel-tests").locator(".."))
    frame.locator("#panel-proposals").scroll_into_view_if_needed()
    docs_screenshot(page, "repository-proposals-and-events", frame.locator("#panel-proposals").locator(".."))

    # Promote now: the waiting release goes to prod, and the section says nothing waits any more.
    current.locator("[data-testid=promote]").click()
    expect(frame.locator("[data-testid=promotion-idle]")).to_be_visible()
    expect(stage_flow.locator("[data-testid=stage][data-stage=prod]")).to_have_attribute(
        "data-release-id", str(staged["id"])
    )
    screenshots(page, "promoted")


# -- the cards ------------------------------------------------------------------------------------------------------
def test_cards_keep_long_branch_names_inside_and_rows_even(airflow, git_remote, page, screenshots, removed_after):
    removed_after.extend(["fh-long-branch", "fh-broken"])
    long_branch = git_remote({"dags/fh_long.py": dag_source("fh_long")}, name="fh-long")
    long_branch.git("checkout", "-q", "-b", LONG_BRANCH)
    airflow.run("dagops", "repos", "add", "fh-long-branch", long_branch.url, "--ref", LONG_BRANCH)
    airflow.run("dagops", "sync", "fh-long-branch")
    # A repository whose commit fails validation: a taller card (its alert), and a second sync is "rejected".
    broken = git_remote({"dags/fh_broken.py": "from airflow.sdk import dag\ndef broken(:\n"}, name="fh-broken")
    airflow.run("dagops", "repos", "add", "fh-broken", broken.url)
    for _ in range(2):
        try:
            airflow.run("dagops", "sync", "fh-broken")
        except RuntimeError:
            pass  # the failing sync exits non-zero; the page shows it

    log_in(page, screenshots)
    page.goto("/plugin/dag-repositories")
    frame = page.frame_locator(PAGE_IFRAME)
    card = frame.locator("[data-testid=repo-card][data-name=fh-long-branch]")
    branch = card.locator("[data-testid=branch]")
    expect(branch).to_have_attribute("title", LONG_BRANCH)
    card_box, branch_box = card.bounding_box(), branch.bounding_box()
    assert (
        branch_box["x"] >= card_box["x"] and branch_box["x"] + branch_box["width"] <= card_box["x"] + card_box["width"]
    )
    assert card.evaluate("node => node.scrollWidth <= node.clientWidth"), "the card scrolls sideways"

    # Every row of cards is even: cards that start at the same height are equally tall.
    cards = frame.locator("[data-testid=repo-card]")
    boxes = [cards.nth(i).bounding_box() for i in range(cards.count())]
    rows: dict[int, set[int]] = {}
    for box in boxes:
        rows.setdefault(round(box["y"]), set()).add(round(box["height"]))
    assert len(boxes) >= 2 and all(len(heights) == 1 for heights in rows.values()), rows
    failed = frame.locator("[data-testid=repo-card][data-name=fh-broken]")
    expect(failed).to_have_attribute("data-status", "failed")
    screenshots(page, "cards")
    docs_screenshot(page, "dag-repositories-cards", frame.locator("[data-testid=repo-list]"))

    # Badges and durations read alike: "Rejected" like "Failed", and "<1 s" rather than "0 ms".
    failed.locator("[data-testid=open-details]").click()
    rows_ = frame.locator("[data-testid=sync-row]")
    expect(rows_).to_have_count(2)
    rejected = frame.locator("[data-testid=sync-row][data-status=rejected] [data-testid=sync-status]")
    expect(rejected).to_have_text("Rejected")
    for text in frame.locator("[data-testid=sync-row] [data-testid=duration]").all_inner_texts():
        assert re.fullmatch(r"<1 s|\d+\.\d s|\d+ min \d+ s|—", text), text
    frame.locator("#panel-syncs").scroll_into_view_if_needed()
    screenshots(page, "sync-history")
    docs_screenshot(page, "sync-history", frame.locator("#panel-syncs"))
