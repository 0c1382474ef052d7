"""Real browser, real Airflow, a fake GitHub API: the repository page's "Register webhook" button (issue 23 part 2).

The button creates dagops' webhook on the Git host with the repository's connection token, then updates it on the
next press; the fake host records what it was sent, which is checked against GitHub's documented body. A token
without the `admin:repo_hook` scope gets a clear message in the page and the host is left as it was. An account
of Airflow's User role does not see the button, and the API refuses it too.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import PAGE, Held, add_connection, call_as_page, signed_in_as
from tests.browser.test_dag_repositories_page import log_in, open_dag_repositories
from tests.browser.test_first_hour import docs_screenshot
from tests.browser.test_repository_options_form import rest
from tests.helpers.git_hosts import git_host  # noqa: F401 - the fixture
from tests.helpers.programs import requires_program

pytestmark = [pytest.mark.e2e, requires_program("chromium")]

NAME = "hookpage"
WEAK = "hookweak"
PROJECT = "acme/hookpage-dags"
TOKEN = "tok-hook-admin-51c0e"  # noqa: S105 - test tokens and secret
WEAK_TOKEN = "tok-status-only-8d2a"  # noqa: S105
SECRET = "whsec-browser-3f9b6e2d"  # noqa: S105


@pytest.fixture
def github(git_host, airflow):  # noqa: F811 - the fixture imported above
    """A fake GitHub holding acme/hookpage-dags, and two repositories registered for it in the shared Airflow:
    `hookpage` whose connection's token may manage webhooks, and `hookweak` whose token may only set statuses."""
    fake = git_host("github")
    fake.add_repo(PROJECT)
    fake.tokens[TOKEN] = {"admin:repo_hook"}
    fake.tokens[WEAK_TOKEN] = {"repo:status"}
    add_connection(airflow, "hookpage_git", TOKEN, api_url=fake.url)
    add_connection(airflow, "hookweak_git", WEAK_TOKEN, api_url=fake.url)
    add_connection(airflow, "hookpage_secret", SECRET)
    url = f"https://github.com/{PROJECT}.git"
    for name, conn_id in ((NAME, "hookpage_git"), (WEAK, "hookweak_git")):
        body = {"name": name, "url": url, "conn_id": conn_id, "webhook_conn_id": "hookpage_secret", "verify": False}
        created = rest(airflow, "POST", "repositories", json=body)
        assert created.status_code == 201, created.text
    try:
        yield fake
    finally:
        for name in (NAME, WEAK):
            rest(airflow, "DELETE", f"repositories/{name}")
        for conn_id in ("hookpage_git", "hookweak_git", "hookpage_secret"):
            airflow.api("DELETE", f"connections/{conn_id}")


def open_repository(page: Page, screenshots, name: str):
    log_in(page, screenshots)
    frame = open_dag_repositories(page, screenshots)
    frame.locator(f"[data-testid=repo-card][data-name={name}] [data-testid=open-details]").click()
    expect(frame.locator("[data-testid=webhook]")).to_be_visible()
    return frame


def test_register_webhook_creates_then_updates_the_hook_on_the_host(airflow, github, page: Page, screenshots):
    frame = open_repository(page, screenshots, NAME)
    press = frame.locator("[data-testid=register-webhook]")
    result = frame.locator("[data-testid=webhook-result]")
    expect(result).to_have_count(0)  # nothing pressed yet: nothing said
    payload_url = f"{airflow.url}/pluginsv2/dagops/api/v1/webhooks/github"

    # While the host answers: the button waits, disabled, and the page says what it is doing.
    with Held(page, "**/webhook/registration") as held:
        press.click()
        expect(press).to_be_disabled()
        expect(press).to_contain_text("Registering")
        expect(result).to_have_attribute("data-kind", "working")
        expect(result).to_contain_text("Asking the Git host")
        held.wait()
        screenshots(page, "registering")
        assert github.requests == []  # held in the browser: the server was not asked yet
    expect(result).to_have_attribute("data-kind", "created")
    expect(press).to_be_enabled()
    expect(result).to_contain_text("Webhook created on github")
    expect(result).to_contain_text(PROJECT)
    expect(result.locator("[data-testid=webhook-url]")).to_have_text(payload_url)
    expect(result.locator("[data-testid=webhook-events]")).to_have_text(
        "Events push, pull_request · content type json · secret set (connection hookpage_secret)"
    )
    expect(result.locator("[data-testid=webhook-warning]")).to_contain_text("plain HTTP")  # base_url is http://
    screenshots(page, "created")
    docs_screenshot(page, "register-webhook", frame.locator("[data-testid=webhook]"))

    # What the host was sent: GitHub's documented body, the secret of the repository's webhook connection, and
    # the connection's token in the Authorization header only.
    [listed, created] = github.requests
    assert (listed.method, listed.path) == ("GET", f"/repos/{PROJECT}/hooks")
    assert (created.method, created.path) == ("POST", f"/repos/{PROJECT}/hooks")
    assert created.headers["Authorization"] == f"Bearer {TOKEN}"
    assert created.body == {
        "name": "web",
        "active": True,
        "events": ["push", "pull_request"],
        "config": {"url": payload_url, "content_type": "json", "secret": SECRET, "insecure_ssl": "0"},
    }
    [hook] = github.hooks[PROJECT]

    # Pressed again: the same hook is updated (PATCH, no second hook), and the page says "updated".
    press.click()
    expect(result).to_have_attribute("data-kind", "updated")
    expect(result).to_contain_text(f"hook {hook['id']}")
    updated = github.calls("PATCH")
    assert [r.path for r in updated] == [f"/repos/{PROJECT}/hooks/{hook['id']}"]
    assert updated[0].body["config"]["secret"] == SECRET and "name" not in updated[0].body
    assert [h["id"] for h in github.hooks[PROJECT]] == [hook["id"]]

    # Neither the secret nor the token ever reaches the page.
    shown = frame.locator("body").inner_text()
    assert SECRET not in shown and TOKEN not in shown


def test_a_token_without_the_webhook_scope_is_explained_and_changes_nothing(airflow, github, page: Page, screenshots):
    frame = open_repository(page, screenshots, WEAK)
    frame.locator("[data-testid=register-webhook]").click()
    result = frame.locator("[data-testid=webhook-result]")
    expect(result).to_have_attribute("data-kind", "host_permission_denied")
    expect(result).to_contain_text("Webhook not registered")
    message = result.locator("[data-testid=webhook-message]")
    expect(message).to_contain_text("token of connection 'hookweak_git' lacks the scope this needs: admin:repo_hook")
    expect(result.locator("[data-testid=webhook-hint]")).to_contain_text(
        "Nothing was created or changed on the Git host. "
        "Give the token of connection hookweak_git the scope named above"
    )
    expect(message).not_to_contain_text(re.compile(r"[{}]|Traceback"))  # words, not raw JSON or a stack trace
    expect(frame.locator("[data-testid=register-webhook]")).to_be_enabled()  # fix the token, press again
    screenshots(page, "scope-missing")
    docs_screenshot(page, "register-webhook-missing-scope", frame.locator("[data-testid=webhook]"))

    assert github.writes() == [] and github.hooks.get(PROJECT, []) == []
    assert [(r.method, r.headers["Authorization"]) for r in github.requests] == [("GET", f"Bearer {WEAK_TOKEN}")]
    assert WEAK_TOKEN not in frame.locator("body").inner_text()


def test_a_user_role_account_cannot_register_a_webhook(airflow, github, browser, screenshots):
    with signed_in_as(browser, airflow, "hook-editor", "USER") as page:
        page.goto(f"{PAGE}repositories/{NAME}")
        expect(page.locator("#overview [data-testid=webhook-conn]")).to_contain_text("hookpage_secret")
        expect(page.locator("[data-testid=sync-now]")).to_be_visible()  # a DAG editor: may sync
        expect(page.locator("[data-testid=register-webhook]")).to_have_count(0)  # but not act with the token
        screenshots(page, "user-role")

        # Not only hidden: the API refuses the page's own request, and the host hears nothing.
        refused = call_as_page(page, "POST", f"repositories/{NAME}/webhook/registration", {})
        assert refused["status"] == 403, refused
        assert refused["body"]["error"]["code"] == "forbidden"
        assert "connection read permission" in refused["body"]["error"]["message"]
        removal = call_as_page(page, "DELETE", f"repositories/{NAME}/webhook/registration")
        assert removal["status"] == 403, removal
    assert github.requests == []
