"""Real browser, real Airflow: the Marketplace page sorts packages by their download statistics, both ways
(issue 23 part 4).

Three packages of a catalog of this test's own, with 3, 1 and 0 downloads counted the way installs and updates count
them (marketplace/stats.py `record`, in the instance's state DB: a real install is a whole sync run each, and the
install use cases' counting has tests of its own in tests/marketplace). The page's Sort menu puts the most
downloaded first, its order button turns that around, the address keeps the choice, and the API gives the same
order; an order that makes no sense is refused with a clear message.
"""

from __future__ import annotations

import sys

import pytest
from playwright.sync_api import FrameLocator, Page, expect

from airflow_dagops.marketplace import catalogs
from tests.browser.test_dag_repositories_page import log_in
from tests.browser.test_first_hour import MARKET_IFRAME, docs_screenshot
from tests.browser.test_repository_options_form import rest
from tests.helpers.programs import requires_program
from tests.helpers.repos import write_file
from tests.marketplace.conftest import package_files

pytestmark = [pytest.mark.e2e, requires_program("chromium")]

CATALOG = "browsersort"
# package -> (installs, updates, uninstalls): downloads are installs + updates, so 3, 1 and 0.
COUNTS = {"sortdl_gamma": (2, 1, 0), "sortdl_alpha": (1, 0, 1), "sortdl_beta": (0, 0, 0)}
MOST_FIRST = ["sortdl_gamma", "sortdl_alpha", "sortdl_beta"]


def python(airflow, script: str) -> None:
    """Run `script` against the instance's state DB (its AIRFLOW_HOME, its [dagops] settings)."""
    airflow.run(sys.executable, "-c", script)


@pytest.fixture
def counted_catalog(airflow, tmp_path):
    folder, repo = tmp_path / "packages", tmp_path / "catalog"
    for name in COUNTS:
        for relative, content in package_files(name, "1.0.0", tags=["sorting"]).items():
            write_file(folder, relative, content)
    catalogs.catalog_repo_from_folder(folder, repo)
    events = [
        (kind, name)
        for name, counts in COUNTS.items()
        for kind, times in zip(("install", "update", "uninstall"), counts, strict=True)
        for _ in range(times)
    ]
    python(
        airflow,
        "from airflow_dagops.marketplace import catalogs, stats\n"
        "from airflow_dagops.store.db import session_scope\n"
        f"catalogs.add_catalog({CATALOG!r}, 'file://{repo}'); catalogs.refresh_catalogs([{CATALOG!r}])\n"
        "with session_scope() as session:\n"
        f"    for kind, package in {events!r}:\n"
        "        stats.record(session, kind, package, '1.0.0', actor='browser-test', catalog=" + repr(CATALOG) + ")\n",
    )
    try:
        yield
    finally:
        python(
            airflow,
            "from sqlalchemy import delete\n"
            "from airflow_dagops.marketplace import catalogs\n"
            "from airflow_dagops.store.db import session_scope\n"
            "from airflow_dagops.store.models import MarketplaceEvent\n"
            f"catalogs.remove_catalog({CATALOG!r})\n"
            "with session_scope() as session:\n"
            f"    session.execute(delete(MarketplaceEvent).where(MarketplaceEvent.package.in_({list(COUNTS)!r})))\n",
        )


def shown_order(frame: FrameLocator) -> list[str]:
    return [card.get_attribute("data-name") for card in frame.locator("[data-testid=package-card]").all()]


def expect_order(frame: FrameLocator, names: list[str]) -> None:
    cards = frame.locator("[data-testid=package-card]")
    expect(cards).to_have_count(len(names))
    for index, name in enumerate(names):  # each assertion waits for the page's new answer
        expect(cards.nth(index)).to_have_attribute("data-name", name)


def api_order(airflow, **params) -> list[str]:
    answer = rest(airflow, "GET", "marketplace/search", params={"q": "sortdl", **params})
    assert answer.status_code == 200, answer.text
    return [item["name"] for item in answer.json()["items"]]


def test_sort_by_downloads_in_both_directions(airflow, counted_catalog, page: Page, screenshots):
    log_in(page, screenshots)
    page.goto("/plugin/marketplace")
    frame = page.frame_locator(MARKET_IFRAME)
    frame.locator("[data-testid=search-input]").fill("sortdl")
    frame.locator("[data-testid=search-button]").click()
    expect(frame.locator("[data-testid=package-card]")).to_have_count(3)
    order = frame.locator("[data-testid=sort-order]")
    expect(order).to_be_disabled()  # best match has one order only

    # Most downloaded first: 3, 1, 0 downloads, as each card says.
    frame.locator("[data-testid=sort-select]").select_option(label="Most downloaded")
    expect_order(frame, MOST_FIRST)
    expect(order).to_be_enabled()
    expect(order).to_have_text("↓ Most first")
    expect(order).to_have_attribute("data-order", "desc")
    cards = {name: frame.locator(f"[data-testid=package-card][data-name={name}]") for name in MOST_FIRST}
    downloads = [cards[name].locator("[data-testid=downloads]") for name in MOST_FIRST]
    for locator, text in zip(downloads, ("3 downloads", "1 download", "0 downloads"), strict=True):
        expect(locator).to_have_text(text)
    expect(downloads[0]).to_have_attribute("title", "2 installs, 1 update, 0 uninstalls")
    screenshots(page, "most-downloaded-first")

    # The other way round: fewest first, and the address remembers it.
    order.click()
    expect_order(frame, list(reversed(MOST_FIRST)))
    expect(order).to_have_text("↑ Fewest first")
    expect(order).to_have_attribute("data-order", "asc")
    screenshots(page, "fewest-downloaded-first")
    docs_screenshot(page, "marketplace-sort-by-downloads", frame.locator("main"))
    market = page.locator(MARKET_IFRAME).element_handle().content_frame()
    address = market.evaluate("window.location.href")  # set by history.replaceState: read it in the frame
    assert "sort=downloads" in address and "order=asc" in address

    # Reloaded from that address: the same sort, the same direction.
    market.goto(address)
    expect_order(frame, list(reversed(MOST_FIRST)))
    expect(frame.locator("[data-testid=sort-select]")).to_have_value("downloads")
    expect(order).to_have_attribute("data-order", "asc")

    # And back; a new sort starts in its own natural order (names A to Z).
    order.click()
    expect_order(frame, MOST_FIRST)
    frame.locator("[data-testid=sort-select]").select_option(label="Name")
    expect_order(frame, sorted(MOST_FIRST))
    expect(order).to_have_text("A → Z")

    # The API orders the same way, and refuses an order that makes no sense.
    assert api_order(airflow, sort="downloads") == MOST_FIRST
    assert api_order(airflow, sort="downloads", order="asc") == list(reversed(MOST_FIRST))
    assert api_order(airflow, sort="name", order="desc") == sorted(MOST_FIRST, reverse=True)
    for params in ({"sort": "downloads", "order": "sideways"}, {"sort": "relevance", "order": "asc"}):
        refused = rest(airflow, "GET", "marketplace/search", params=params)
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["message"] == "order: one of desc, asc, with a sort other than relevance"
