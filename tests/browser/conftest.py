"""Fixtures for the real-browser tests: a real Airflow, Debian's Chromium driven by Playwright, screenshots.

Playwright's own browser download needs internet access; these tests drive the system Chromium instead
(`apt-get install chromium chromium-driver`, done by .ci/run) and are skipped where it is missing.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.helpers.airflow import AirflowInstance
from tests.helpers.programs import requires_program, skip_unless_program

# Chromium on PATH (Debian: /usr/bin/chromium), or DAGOPS_TEST_CHROMIUM. Every test in this folder skips without
# it, marked at collection (below), so the shared Airflow does not start for tests that cannot run.
HERE = Path(__file__).resolve().parent
REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts" / "browser"


def pytest_collection_modifyitems(config, items):
    needs_chromium = requires_program("chromium")
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(needs_chromium)


@pytest.fixture
def airflow(real_airflow: AirflowInstance) -> AirflowInstance:
    """The worker's shared real Airflow (tests/helpers/airflow.py): api-server + scheduler + dag-processor with
    SimpleAuthManager (admin/admin); each test uses its own repository names. The `page` fixture prints its
    logs when a test fails."""
    return real_airflow


class Screenshots:
    """Numbered full-page screenshots of one test, in test-artifacts/browser/<test name>/."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.count = 0

    def __call__(self, page, name: str) -> Path:
        self.count += 1
        path = self.folder / f"{self.count:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def screenshots(request) -> Screenshots:
    folder = ARTIFACTS / re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return Screenshots(folder)


@pytest.fixture
def browser():
    chromium = skip_unless_program("chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    sync_api.expect.set_options(timeout=15_000)  # the page polls the API; give each assertion a few polls
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser, screenshots, request, airflow: AirflowInstance):
    """A fresh browser page; on failure it saves a screenshot and prints the browser's console and the
    Airflow process logs."""
    context = browser.new_context(viewport={"width": 1440, "height": 900}, base_url=airflow.url)
    page = context.new_page()
    page.set_default_timeout(30_000)
    console: list[str] = []
    page.on("console", lambda message: console.append(f"console.{message.type}: {message.text}"))
    page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
    page.on(
        "response",
        lambda response: (
            console.append(f"HTTP {response.status} {response.request.method} {response.url}")
            if response.status >= 400
            else None
        ),
    )
    try:
        yield page
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is None or report.failed:
            try:
                path = screenshots(page, "failure")
                print(f"failure screenshot: {path}")
            except Exception as error:  # the page may be gone; the logs below still help
                print(f"no failure screenshot: {error}")
            print("==== browser console and failed requests\n" + "\n".join(console[-200:]))
            print(airflow.logs())
        context.close()
