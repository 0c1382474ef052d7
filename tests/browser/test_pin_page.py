"""Real browser, real Airflow: the one rule for pins on the page (airflow_dagops/releases/pins.py). The page's
Rollback button on a pinned repository moves the pin to the release it makes live; the header, the releases table,
the REST repository and `dagops versions` then agree. A dagops_deploy run in Airflow (the system DAG) rolls
forward the same way, and the page follows."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_dag_repositories_page import log_in, open_dag_repositories
from tests.browser.test_repository_options_form import rest
from tests.helpers.programs import requires_program
from tests.helpers.repos import dag_source
from tests.helpers.servers import wait_for

pytestmark = [pytest.mark.e2e, requires_program("chromium")]

NAME = "pinpage"
RUN_TIMEOUT = 150  # seconds: a dagops_deploy run is a real Airflow run (schedule, start a worker, roll back)


def _every_face_says(airflow, frame, release: dict, *, within_ms: int = 15_000) -> None:
    """The page's header and table, the REST repository and releases, and `dagops versions`: `release` is live and
    pinned, and nothing else is. `within_ms`: how long the page may take to show it (it polls every 15 s)."""
    row = frame.locator(f"[data-testid=release-row][data-release-id='{release['id']}']")
    expect(row).to_have_attribute("data-status", "live", timeout=within_ms)
    expect(row.locator("[data-testid=release-pinned]")).to_have_count(1)
    expect(frame.locator("[data-testid=release-pinned]")).to_have_count(1)
    expect(frame.locator("[data-testid=release-row][data-status=live]")).to_have_count(1)
    expect(frame.locator("[data-testid=repo-status]")).to_have_attribute("data-status", "pinned")
    expect(frame.locator("[data-testid=pinned-message]")).to_contain_text(release["short_commit"])
    expect(frame.locator("#overview [data-testid=live-commit]")).to_contain_text(release["short_commit"])

    repository = rest(airflow, "GET", f"repositories/{NAME}").json()
    assert repository["live"]["release_id"] == repository["pinned_release_id"] == release["id"]
    items = rest(airflow, "GET", f"repositories/{NAME}/releases").json()["items"]
    assert (
        [r["id"] for r in items if r["status"] == "live"] == [r["id"] for r in items if r["pinned"]] == [release["id"]]
    )
    versions = _json_in(airflow.run("dagops", "versions", NAME, "--json").stdout)
    assert versions["live_release_id"] == versions["pinned_release_id"] == release["id"]


def _json_in(stdout: str) -> dict:
    """The JSON document a `dagops ... --json` run printed; Airflow's own log lines may come before it."""
    start = stdout.index("{") if stdout.startswith("{") else stdout.index("\n{") + 1
    document, _end = json.JSONDecoder().raw_decode(stdout[start:])
    return document


def _run_state(airflow, run_id: str) -> str | None:
    state = airflow.api("GET", f"dags/dagops_deploy/dagRuns/{run_id}").json()["state"]
    return state if state in ("success", "failed") else None


def test_the_pages_rollback_of_a_pinned_repository_moves_the_pin(airflow, git_remote, page: Page, screenshots):
    remote = git_remote({"dags/pin_alpha.py": dag_source("pin_alpha")}, name=NAME)
    airflow.run("dagops", "repos", "add", NAME, remote.url)
    try:
        airflow.run("dagops", "sync", NAME)  # inline: this test is about pins, not the sync
        remote.commit("Add pin_beta", {"dags/pin_beta.py": dag_source("pin_beta")})
        airflow.run("dagops", "sync", NAME)
        airflow.run("dagops", "pin", NAME)
        newer, older = rest(airflow, "GET", f"repositories/{NAME}/releases").json()["items"]

        log_in(page, screenshots)
        frame = open_dag_repositories(page, screenshots)
        frame.locator(f"[data-testid=repo-card][data-name={NAME}] [data-testid=open-details]").click()
        expect(frame.locator("[data-testid=release-row]")).to_have_count(2)
        _every_face_says(airflow, frame, newer)
        screenshots(page, "pinned")

        # Roll back on the page: the dialog says the pin moves (no pin checkbox to forget), and it does.
        frame.locator(f"[data-testid=release-row][data-release-id='{older['id']}'] [data-testid=rollback]").click()
        expect(frame.locator("[data-testid=confirm]")).to_be_visible()
        expect(frame.locator("#confirm-message")).to_contain_text(re.compile("pin moves to this release"))
        expect(frame.locator("[data-testid=confirm-pin]")).to_be_hidden()
        screenshots(page, "rollback-confirm")
        frame.locator("[data-testid=confirm-ok]").click()
        _every_face_says(airflow, frame, older)
        screenshots(page, "rolled-back-and-still-pinned")

        # The system DAG: a dagops_deploy run in Airflow rolls forward; the pin follows, and the page shows it.
        wait_for(lambda: "dagops_deploy" in airflow.dag_ids(), timeout=90, what="the dagops_deploy system DAG")
        conf = {"repository": NAME, "action": "rollback", "version": newer["commit"]}
        response = airflow.api("POST", "dags/dagops_deploy/dagRuns", json={"logical_date": None, "conf": conf})
        assert response.status_code == 200, response.text
        run_id = response.json()["dag_run_id"]
        state = wait_for(lambda: _run_state(airflow, run_id), timeout=RUN_TIMEOUT, what="the dagops_deploy run")
        assert state == "success", airflow.logs()
        _every_face_says(airflow, frame, newer, within_ms=45_000)  # the page polls the API every 15 s
        screenshots(page, "rolled-forward-by-dagops_deploy")
    finally:
        airflow.run("dagops", "repos", "remove", NAME)  # the other browser tests start from an empty list
