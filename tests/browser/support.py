"""What the browser tests of the page's Git-host buttons share: Airflow connections made through Airflow's REST API,
a signed-in page for an account of any role, calls the page itself makes (to show the server refuses, not only the
page), and requests held back so a test sees the page while it waits."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager

from playwright.sync_api import Page, Route

from tests.helpers.airflow import AirflowInstance

API = "/pluginsv2/dagops/api/v1"
PAGE = "/pluginsv2/dagops/"


def add_connection(airflow: AirflowInstance, conn_id: str, password: str, **extra) -> None:
    """An Airflow connection of type git (made like an operator would, through Airflow's REST API), replaced if a
    failed earlier run left one behind."""
    airflow.api("DELETE", f"connections/{conn_id}")
    body = {"connection_id": conn_id, "conn_type": "git", "login": "bot", "password": password}
    if extra:
        body["extra"] = json.dumps(extra)
    response = airflow.api("POST", "connections", json=body)
    assert response.status_code == 201, response.text


def role_token(airflow: AirflowInstance, username: str, role: str) -> str:
    """A SimpleAuthManager JWT for `username` with `role` (VIEWER, USER, OP, ADMIN), signed by the instance's own auth
    manager and secret: what Airflow's login form would set as the `_token` cookie for such an account."""
    code = (
        "from airflow.api_fastapi.app import create_auth_manager\n"
        "from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser\n"
        f"print(create_auth_manager().generate_jwt(SimpleAuthManagerUser(username={username!r}, role={role!r})))\n"
    )
    return airflow.run(sys.executable, "-c", code).stdout.strip().splitlines()[-1]


@contextmanager
def signed_in_as(browser, airflow: AirflowInstance, username: str, role: str):
    """A page of a browser context whose `_token` cookie is the account's, as after Airflow's login."""
    context = browser.new_context(viewport={"width": 1440, "height": 900}, base_url=airflow.url)
    context.add_cookies([{"name": "_token", "value": role_token(airflow, username, role), "url": airflow.url}])
    try:
        yield context.new_page()
    finally:
        context.close()


def call_as_page(page: Page, method: str, path: str, body: dict | None = None) -> dict:
    """Call the dagops API from inside the dagops page, exactly as its script does (the `_token` cookie and the
    page's CSRF token): what a user gets who bypasses a hidden button. Answers {status, body}."""
    return page.evaluate(
        """async ([api, method, path, body]) => {
            const csrf = document.querySelector('meta[name="dagops-csrf"]').content;
            const headers = {"X-DagOps-CSRF": csrf, Accept: "application/json"};
            const init = {method, credentials: "same-origin", headers};
            if (body !== null) {
                headers["Content-Type"] = "application/json";
                init.body = JSON.stringify(body);
            }
            const response = await fetch(api + "/" + path, init);
            return {status: response.status, body: await response.json()};
        }""",
        [API, method, path, body],
    )


class Held:
    """Requests of the page matching a pattern, held until `release()`: the test sees the page while it waits for
    the answer (button disabled, progress shown) however fast the server is."""

    def __init__(self, page: Page, pattern: str):
        self.page, self.pattern, self.routes = page, pattern, []

    def _hold(self, route: Route) -> None:
        self.routes.append(route)

    def __enter__(self) -> Held:
        self.page.route(self.pattern, self._hold)
        return self

    def wait(self, count: int = 1) -> None:
        """Until `count` requests are held; Playwright hands them over while it runs, so ask it to run a little."""
        for _ in range(200):
            if len(self.routes) >= count:
                return
            self.page.wait_for_timeout(50)
        raise AssertionError(f"the page sent no request matching {self.pattern}")

    def release(self) -> None:
        while self.routes:
            self.routes.pop(0).continue_()

    def __exit__(self, *exc) -> None:
        self.release()
        self.page.unroute(self.pattern, self._hold)
