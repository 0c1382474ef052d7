"""on_conflict, access_control and promotion on the REST API: create, update, representation, bad values."""

from __future__ import annotations

import pytest

from airflow_dagops.airflow import namespace_meta

OPTIONS = {
    "on_conflict": "block",
    "access_control": {"data-eng": ["can_read", "can_edit"]},
    "promotion": {"stages": ["staging", "prod"], "soak_runs": 2},
}


def _error(response) -> dict:
    body = response.get_json()
    assert set(body) == {"error"}, body
    return body["error"]


def test_options_are_created_shown_and_changed(web, git_remote):
    created = web.api("POST", "repositories", json={"name": "team", "url": git_remote().url, **OPTIONS})
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["on_conflict"] == "block"
    assert body["access_control"] == {"data-eng": ["can_edit", "can_read"]}
    assert body["promotion"] == {"stages": ["staging", "prod"], "soak_runs": 2}
    assert web.api("GET", "repositories/team", as_="reader").get_json()["access_control"] == body["access_control"]

    changed = web.api("PATCH", "repositories/team", json={"access_control": {"ops": ["can_read"]}, "on_conflict": None})
    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["access_control"] == {"ops": ["can_read"]}
    assert changed.get_json()["on_conflict"] == "skip_files"  # null: back to the default
    assert namespace_meta.read("team")["access_control"] == {"ops": ["can_read"]}  # the policy sees it next parse

    cleared = web.api("PATCH", "repositories/team", json={"access_control": None, "promotion": None})
    assert cleared.status_code == 200, cleared.get_json()
    assert (cleared.get_json()["access_control"], cleared.get_json()["promotion"]) == (None, None)


@pytest.mark.parametrize(
    ("options", "code", "field"),
    [
        ({"on_conflict": "overwrite"}, "invalid_body", "on_conflict"),
        ({"access_control": {"data-eng": ["can_fly"]}}, "invalid_body", "access_control.data-eng.0"),
        ({"access_control": {"data-eng": []}}, "invalid_body", "access_control.data-eng"),
        ({"access_control": ["data-eng"]}, "invalid_body", "access_control"),
        ({"promotion": {"stages": ["prod"]}}, "invalid_body", "promotion.stages"),
        ({"promotion": {"stages": ["staging", "prod"], "soak": 3}}, "invalid_body", "promotion"),
        ({"promotion": {"stages": ["prod", "prod"]}}, "invalid_input", None),  # the service's own check
    ],
)
def test_bad_option_values_are_422_and_change_nothing(web, git_remote, options, code, field):
    response = web.api("POST", "repositories", json={"name": "team", "url": git_remote().url, **options})
    assert response.status_code == 422, response.get_json()
    error = _error(response)
    assert error["code"] == code
    if field is not None:
        assert field in [entry["field"] for entry in error["details"]["errors"]], error
    assert web.api("GET", "repositories").get_json()["total"] == 0
