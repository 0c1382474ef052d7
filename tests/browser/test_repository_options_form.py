"""Real browser, real Airflow: the add / settings form offers every repository option, its "Advanced options"
fields generated from the API's own description (the OpenAPI document's create and update body schemas).
"""

from __future__ import annotations

import json
import re

import pytest
import requests
from playwright.sync_api import Page, Route, expect

from tests.browser.test_dag_repositories_page import log_in, open_dag_repositories
from tests.helpers.repos import dag_source

pytestmark = pytest.mark.e2e

API = "/pluginsv2/dagops/api/v1"
# Laid out by hand in _dialogs.html; every other option of a body schema gets a generated field.
HAND_FIELDS = {"name", "namespace", "url", "ref", "priority", "conn_id", "subdir", "poll_interval", "enabled", "verify"}


def rest(airflow, method: str, path: str, **kwargs) -> requests.Response:
    headers = {"Authorization": f"Bearer {airflow.token}"}
    return requests.request(method, f"{airflow.url}{API}/{path}", headers=headers, timeout=15, **kwargs)


def test_the_form_sets_generated_options_shown_on_the_detail_view_and_in_the_api(
    airflow, git_remote, page: Page, screenshots
):
    remote = git_remote({"dags/opt_alpha.py": dag_source("opt_alpha")}, name="optform")
    schemas = rest(airflow, "GET", "openapi.json").json()["components"]["schemas"]
    generated = [key for key in schemas["RepositoryCreate"]["properties"] if key not in HAND_FIELDS]
    assert {"isolated_env", "on_conflict", "access_control", "promotion", "webhook_conn_id"} <= set(generated)

    try:
        log_in(page, screenshots)
        frame = open_dag_repositories(page, screenshots)
        frame.locator("[data-testid=add-repo]").click()
        form = frame.locator("form[data-testid=repo-form]")
        expect(form).to_be_visible()
        form.locator("input[name=name]").fill("optform")
        form.locator("input[name=url]").fill(remote.url)
        form.locator("details.advanced > summary").click()

        # One labelled field per option of the create body that the form does not lay out by hand.
        for key in generated:
            expect(form.locator(f"[data-testid=option-{key}]")).to_have_count(1)
            expect(form.locator(f"[name={key}]")).to_be_visible()
        isolated = form.get_by_label("Isolated environment")
        expect(isolated).to_have_attribute("type", "checkbox")
        expect(isolated).not_to_be_checked()
        on_conflict = form.get_by_label("On a dag_id conflict")
        expect(on_conflict).to_have_js_property("tagName", "SELECT")
        expect(form.get_by_label("Webhook connection")).to_have_js_property("tagName", "INPUT")
        access = form.get_by_label("Access control")
        expect(access).to_have_js_property("tagName", "TEXTAREA")
        expect(form.locator("[data-testid=option-access_control] .hint")).to_contain_text("can_read")
        form.locator("[data-testid=option-fields]").scroll_into_view_if_needed()
        screenshots(page, "generated-fields")

        isolated.check()
        on_conflict.select_option(label="block")

        # JSON that does not parse: a clear message under the field, and Save sends nothing.
        access.fill("{data-eng: [can_read]}")
        access.blur()
        error = form.locator("[data-testid=option-access_control] [data-testid=option-error]")
        expect(error).to_contain_text("Not valid JSON")
        expect(access).to_have_attribute("aria-invalid", "true")
        form.locator("[data-testid=save]").click()
        expect(form.locator("[data-testid=form-error]")).to_contain_text("Access control")
        expect(form).to_be_visible()
        error.scroll_into_view_if_needed()
        screenshots(page, "json-error")
        access.fill('{"data-eng": ["can_read", "can_edit"]}')
        expect(error).to_have_count(0)

        # When the API refuses (here a 403 as a non-admin gets it for isolated_env), its message is shown.
        refused: list[dict] = []

        def refuse(route: Route) -> None:
            if route.request.method != "POST":
                return route.fallback()
            refused.append(route.request.post_data_json)
            message = (
                "through the API only Airflow admins may set isolated_env (the dagops CLI and dagops.yaml may); "
                "nothing was changed"
            )
            route.fulfill(
                status=403,
                content_type="application/json",
                body=json.dumps({"error": {"code": "forbidden", "message": message, "details": {}}}),
            )

        page.route(re.compile(r"/api/v1/repositories$"), refuse)
        form.locator("[data-testid=save]").click()
        expect(form.locator("[data-testid=form-error]")).to_contain_text(
            "Not allowed: through the API only Airflow admins may set isolated_env"
        )
        expect(isolated).to_have_attribute("aria-invalid", "true")
        page.unroute(re.compile(r"/api/v1/repositories$"))
        assert refused and refused[0]["isolated_env"] is True and refused[0]["on_conflict"] == "block"
        assert refused[0]["access_control"] == {"data-eng": ["can_read", "can_edit"]}
        assert "promotion" not in refused[0] and "webhook_conn_id" not in refused[0]  # left empty: not sent
        screenshots(page, "refused")

        # As the admin it is: saved for real.
        form.locator("[data-testid=save]").click()
        card = frame.locator("[data-testid=repo-card][data-name=optform]")
        expect(card).to_be_visible()
        expect(form).to_be_hidden()

        # The detail view shows the options.
        card.locator("[data-testid=open-details]").click()
        expect(frame.locator("[data-testid=on-conflict]")).to_contain_text("block")
        expect(frame.locator("[data-testid=isolated-env]")).to_contain_text("Yes")
        expect(frame.locator("[data-testid=access-control]")).to_contain_text("data-eng")
        expect(frame.locator("[data-testid=access-control]")).to_contain_text("can_edit, can_read")
        expect(frame.locator("[data-testid=promotion]")).to_contain_text("None")
        expect(frame.locator("[data-testid=webhook-conn]")).to_contain_text("None")
        screenshots(page, "detail")

        # And so does the REST API.
        repo = rest(airflow, "GET", "repositories/optform").json()
        assert repo["isolated_env"] is True and repo["on_conflict"] == "block"
        assert repo["access_control"] == {"data-eng": ["can_edit", "can_read"]}

        # Settings: the fields show the current values, and only what changed is sent.
        frame.locator("[data-testid=settings]").click()
        expect(form).to_be_visible()
        expect(form.locator("details.advanced")).to_have_attribute("open", "")
        expect(isolated).to_be_checked()
        expect(on_conflict.locator("option:checked")).to_have_text("block")
        expect(access).to_have_value(re.compile(r'"data-eng"'))
        screenshots(page, "settings")
        on_conflict.select_option(label="skip_files")
        with page.expect_request(lambda request: request.method == "PATCH") as patch:
            form.locator("[data-testid=save]").click()
        assert patch.value.post_data_json == {"on_conflict": "skip_files", "verify": True}
        expect(form).to_be_hidden()
        expect(frame.locator("[data-testid=on-conflict]")).to_contain_text("skip_files")
        repo = rest(airflow, "GET", "repositories/optform").json()
        assert repo["on_conflict"] == "skip_files" and repo["isolated_env"] is True
        screenshots(page, "saved")
    finally:
        rest(airflow, "DELETE", "repositories/optform")
