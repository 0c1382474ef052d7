"""Real browser, real Airflow, a fake GitHub API: the list page's "Discover" button (issue 23 part 1).

Discover scans the organizations of dagops.yaml's `discovery:` block (configured here the way `dagops repos apply`
stores it) and shows what matched in a dialog: proposals, with Register and Ignore; registering makes real
repositories (their remotes are served by `git daemon` and checked with `git ls-remote`); a repository that leaves
the organization is flagged, never deleted. An unknown organization is a clear message that records nothing. An
account of Airflow's User role may scan but not register (it attaches the source's connection): the page offers
no Register button, and the API refuses it too.
"""

from __future__ import annotations

import json
import re
import sys

import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import PAGE, Held, add_connection, call_as_page, signed_in_as
from tests.browser.test_dag_repositories_page import log_in, open_dag_repositories
from tests.browser.test_first_hour import docs_screenshot
from tests.browser.test_repository_options_form import rest
from tests.helpers.git_hosts import git_host  # noqa: F401 - the fixture
from tests.helpers.programs import requires_program
from tests.helpers.repos import dag_source, make_bare_repo
from tests.helpers.servers import git_daemon, wait_for  # noqa: F401 - git_daemon: the fixture

pytestmark = [pytest.mark.e2e, requires_program("chromium")]

TOKEN = "tok-org-reader-b7e104"  # noqa: S105 - a test token
CONN = "disc_org"
SOURCE = "browser-acme"
PREFIX = "disc-"  # the shared Airflow holds other tests' repositories: these names are this test's own
NAMES = ("sales-dags", "ops-dags", "ghost-dags")  # in the organization acme; each becomes PREFIX + its name
SALES, OPS, GHOST = (PREFIX + name for name in NAMES)


def configure_discovery(airflow, *sources: dict) -> None:
    """Store dagops.yaml's `discovery:` block in the instance's state DB (what `dagops repos apply` does with it)."""
    script = (
        "import json, sys\nfrom airflow_dagops.discovery import service\nservice.configure(json.loads(sys.argv[1]))\n"
    )
    airflow.run(sys.executable, "-c", script, json.dumps(list(sources)))


def source(org_url: str, org: str = "acme") -> dict:
    return {
        "name": SOURCE,
        "url": f"{org_url}/{org}",
        "provider": "github",
        "conn_id": CONN,
        "rule": {"topic": "airflow-dags"},
        "namespace_prefix": PREFIX,
    }


@pytest.fixture
def no_scheduled_scans(airflow):
    """The dagops_discover system DAG scans the same sources on its schedule: paused while a test scans from the
    page, so what the page shows (new, back, removed) is that scan's own doing."""
    wait_for(lambda: "dagops_discover" in airflow.dag_ids(), timeout=90, what="the dagops_discover system DAG")
    was_paused = airflow.api("GET", "dags/dagops_discover").json()["is_paused"]
    assert airflow.api("PATCH", "dags/dagops_discover", json={"is_paused": True}).status_code == 200
    yield
    airflow.api("PATCH", "dags/dagops_discover", json={"is_paused": was_paused})


@pytest.fixture
def organization(airflow, no_scheduled_scans, git_host, git_daemon, git_remote):  # noqa: F811 - imported fixtures
    """A fake GitHub organization `acme` with three repositories tagged airflow-dags, two of them served by
    `git daemon` and `ghost-dags` not (its remote cannot be reached), and one without the topic; a connection whose
    token may list it."""
    base, port = git_daemon
    fake = git_host("github")
    for name in ("sales-dags", "ops-dags"):
        work = git_remote({f"dags/{name.replace('-', '_')}.py": dag_source(name.replace("-", "_"))}, name=name)
        make_bare_repo(base, f"acme/{name}.git", work.path)
        fake.add_repo(f"acme/{name}", topics=["airflow-dags"], clone_url=f"git://127.0.0.1:{port}/acme/{name}.git")
    fake.add_repo("acme/ghost-dags", topics=["airflow-dags"], clone_url=f"git://127.0.0.1:{port}/acme/ghost-dags.git")
    fake.add_repo("acme/website", topics=["web"])
    fake.tokens[TOKEN] = {"repo"}
    add_connection(airflow, CONN, TOKEN, api_url=fake.url)
    # The organization's web address is on the host that serves its clones (127.0.0.1), as on a real Git host.
    org_url = f"http://127.0.0.1:{port}"
    try:
        yield fake, org_url
    finally:
        configure_discovery(airflow)  # no sources: their discovered repositories go with them
        for name in (SALES, OPS, GHOST):
            rest(airflow, "DELETE", f"repositories/{name}")
        airflow.api("DELETE", f"connections/{CONN}")


def rows(frame) -> dict[str, str]:
    """{full name: status} of the dialog's table."""
    table = frame.locator("[data-testid=discover-row]")
    return {row.get_attribute("data-full-name"): row.get_attribute("data-status") for row in table.all()}


def discovered(airflow) -> dict[str, str]:
    """{full name: status} as the API keeps them."""
    return {r["full_name"]: r["status"] for r in rest(airflow, "GET", "discovery").json()["repositories"]}


def test_discover_proposes_registers_ignores_and_flags(airflow, organization, page: Page, screenshots):
    fake, org_url = organization
    configure_discovery(airflow, source(org_url))
    log_in(page, screenshots)
    frame = open_dag_repositories(page, screenshots)
    dialog = frame.locator("[data-testid=discover-dialog]")

    # Scanning: the dialog opens at once, says what it does, and its buttons wait.
    with Held(page, "**/discovery/scan") as held:
        frame.locator("[data-testid=discover]").click()
        expect(dialog).to_be_visible()
        expect(frame.locator("[data-testid=discover-progress]")).to_contain_text("Scanning the organizations")
        expect(frame.locator("[data-testid=discover-rescan]")).to_be_disabled()
        expect(frame.locator("[data-testid=discover-body]")).to_have_attribute("aria-busy", "true")
        held.wait()
        screenshots(page, "scanning")
    expect(frame.locator("[data-testid=discover-progress]")).to_have_count(0)
    expect(frame.locator("[data-testid=discover-source]")).to_have_text(
        f"{SOURCE}: 4 repositories listed, 3 matches (3 new, 0 back, 0 removed)"
    )
    proposed = {"acme/ghost-dags": "proposed", "acme/ops-dags": "proposed", "acme/sales-dags": "proposed"}
    expect(frame.locator("[data-testid=discover-row]")).to_have_count(3)
    assert rows(frame) == proposed
    sales, ops, ghost = (frame.locator(f"[data-testid=discover-row][data-full-name='acme/{n}']") for n in NAMES)
    expect(sales).to_have_attribute("data-name", SALES)
    register_all = frame.locator("[data-testid=discover-register-all]")
    expect(register_all).to_have_text("Register 3 repositories")
    screenshots(page, "proposed")

    # What changed: the proposals are recorded (nothing registered yet), after the host was asked with the token.
    assert discovered(airflow) == proposed
    assert rest(airflow, "GET", f"repositories/{SALES}").status_code == 404
    [listing] = fake.calls("GET", "/orgs/acme/repos")
    assert listing.headers["Authorization"] == f"Bearer {TOKEN}"

    # Ignore one: it is not proposed any more, and Register now means two.
    ops.locator("[data-testid=discover-ignore]").click()
    expect(ops).to_have_attribute("data-status", "ignored")
    expect(register_all).to_have_text("Register 2 repositories")
    assert discovered(airflow)["acme/ops-dags"] == "ignored"

    # Register one whose remote cannot be reached: the page says why, and it stays proposed with the reason.
    ghost.locator("[data-testid=discover-register]").click()
    outcome = frame.locator("[data-testid=discover-outcome]")
    expect(outcome).to_contain_text("Nothing was registered")
    expect(outcome.locator("[data-testid=discover-failure]")).to_contain_text(
        f"{GHOST} was not registered: registration failed:"
    )
    expect(ghost).to_have_attribute("data-status", "proposed")
    expect(ghost.locator("[data-testid=discover-note]")).to_contain_text("registration failed:")
    screenshots(page, "not-registered")
    assert rest(airflow, "GET", f"repositories/{GHOST}").status_code == 404

    # Register the proposed ones: a real repository, checked with git ls-remote against its git daemon remote, with
    # the source's connection and the remote's default branch; the unreachable one fails again, saying so.
    register_all.click()
    expect(outcome).to_contain_text(f"1 repository registered: {SALES}")
    expect(outcome.locator("[data-testid=discover-failure]")).to_contain_text(f"{GHOST} was not registered")
    expect(sales).to_have_attribute("data-status", "registered")
    expect(sales.locator("[data-testid=discover-note]")).to_have_text(f"as {SALES}")
    expect(register_all).to_have_text("Register 1 repository")  # the unreachable one, for another try
    screenshots(page, "registered")
    docs_screenshot(page, "discover", dialog)
    registered = rest(airflow, "GET", f"repositories/{SALES}").json()
    assert registered["url"].endswith("/acme/sales-dags.git") and registered["url"].startswith("git://127.0.0.1:")
    assert (registered["conn_id"], registered["ref"], registered["namespace"]) == (CONN, "main", SALES)
    for name in (OPS, GHOST):  # the ignored one was not tried, the unreachable one failed
        assert rest(airflow, "GET", f"repositories/{name}").status_code == 404

    # Propose the ignored one again; then close: the registered repository's card is on the page.
    ops.locator("[data-testid=discover-unignore]").click()
    expect(ops).to_have_attribute("data-status", "proposed")
    expect(register_all).to_have_text("Register 2 repositories")
    frame.locator("[data-testid=discover-close]").click()
    expect(dialog).to_be_hidden()
    expect(frame.locator(f"[data-testid=repo-card][data-name={SALES}]")).to_be_visible()

    # The repository leaves the organization's rule: the next scan flags it, and its registration stays.
    fake.repos["acme/sales-dags"].topics = []
    frame.locator("[data-testid=discover]").click()
    expect(sales).to_have_attribute("data-status", "removed")
    expect(sales.locator("[data-testid=discover-note]")).to_contain_text("its registration, if any, stays")
    expect(frame.locator("[data-testid=discover-source]")).to_contain_text("2 matches (0 new, 0 back, 1 removed)")
    screenshots(page, "removed")
    assert discovered(airflow)["acme/sales-dags"] == "removed"
    assert rest(airflow, "GET", f"repositories/{SALES}").status_code == 200


def test_an_unknown_organization_is_a_clear_message_that_records_nothing(airflow, organization, page, screenshots):
    fake, org_url = organization
    configure_discovery(airflow, source(org_url, org="no-such-org"))
    log_in(page, screenshots)
    frame = open_dag_repositories(page, screenshots)
    frame.locator("[data-testid=discover]").click()
    error = frame.locator("[data-testid=discover-error]")
    expect(error).to_contain_text("Discovery failed")
    message = error.locator("[data-testid=discover-error-message]")
    expect(message).to_have_text(
        f"github knows no organization 'no-such-org', or the token of connection '{CONN}' cannot see it"
    )
    expect(message).not_to_contain_text(re.compile(r"[{}]|Traceback"))
    expect(error).to_contain_text("Nothing was registered.")
    expect(frame.locator("[data-testid=discover-row]")).to_have_count(0)
    expect(frame.locator("[data-testid=discover-register-all]")).to_be_hidden()
    expect(frame.locator("[data-testid=discover-rescan]")).to_be_enabled()  # fix dagops.yaml, scan again
    screenshots(page, "unknown-organization")

    assert discovered(airflow) == {}
    assert [r.path for r in fake.requests] == ["/orgs/no-such-org/repos"]
    [stored] = rest(airflow, "GET", "discovery").json()["sources"]
    assert "no organization 'no-such-org'" in stored["last_error"]


def test_a_user_role_account_may_scan_but_not_register(airflow, organization, browser, screenshots):
    _fake, org_url = organization
    configure_discovery(airflow, source(org_url))
    with signed_in_as(browser, airflow, "disc-editor", "USER") as page:
        page.goto(PAGE)
        page.locator("[data-testid=discover]").click()
        expect(page.locator("[data-testid=discover-row]")).to_have_count(3)
        expect(page.locator("[data-testid=discover-register]")).to_have_count(0)
        expect(page.locator("[data-testid=discover-register-all]")).to_be_hidden()
        expect(page.locator("[data-testid=discover-footnote]")).to_contain_text("connection permission")
        expect(page.locator("[data-testid=discover-ignore]")).to_have_count(3)  # ignoring needs DAG edit only
        screenshots(page, "user-role")

        # Not only hidden: the API refuses the page's own requests, and nothing is registered.
        for path, body in (("discovery/scan", {"apply": True}), (f"discovery/repositories/{SALES}/register", {})):
            refused = call_as_page(page, "POST", path, body)
            assert refused["status"] == 403, refused
            assert "connection read permission" in refused["body"]["error"]["message"]
    assert set(discovered(airflow).values()) == {"proposed"}
    assert rest(airflow, "GET", f"repositories/{SALES}").status_code == 404
