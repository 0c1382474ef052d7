"""schemathesis against the served OpenAPI document: generated requests (valid and invalid) never get a
5xx, and answers conform to the documented status codes and schemas, for an admin and for a user-role
account (what an attacker holding one would send). Bounded: a few examples per operation, derandomized so
CI sees the same cases every run. Deep and huge bodies on every operation: tests/api/test_hostile_input.py."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from airflow_dagops.api.blueprint import PREFIX
from tests.api.test_api import _register, _sync_now
from tests.helpers.repos import dag_source

EXAMPLES_PER_OPERATION = 12


@pytest.fixture
def fuzz_target(web, git_remote, dagops_env, monkeypatch):
    if web.auth_manager != "simple" or not dagops_env.db_url.startswith("sqlite"):
        pytest.skip("the fuzz run is about the API, not the auth manager or the DB: once is enough")
    # Generated URLs must never reach the network: only file:// remotes are allowed in this run.
    monkeypatch.setenv("AIRFLOW__DAGOPS__ALLOWED_PROTOCOLS", "file")
    monkeypatch.setenv("AIRFLOW__DAGOPS__GIT_TIMEOUT", "10")
    remote = git_remote({"dags/a.py": dag_source("a")})
    _register(web, remote)
    _sync_now(web)
    remote.commit("second", {"dags/b.py": dag_source("b")})
    _sync_now(web)
    return web


@pytest.mark.parametrize("role", ["admin", "editor"])
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_generated_requests_get_no_server_error(fuzz_target, mode, role):
    web = fuzz_target
    headers = {"Authorization": f"Bearer {web.token(role)}"}
    schema = schemathesis.openapi.from_wsgi(f"{PREFIX}/openapi.json", web.app, headers=headers)
    checks = [not_a_server_error, status_code_conformance, response_schema_conformance]
    operations = [result.ok() for result in schema.get_all_operations()]
    documented = web.api("GET", "openapi.json").get_json()["paths"]
    methods = {"get", "post", "put", "patch", "delete"}
    # Every operation is exercised, but for the schema endpoint itself (schemathesis skips it).
    assert len(operations) == sum(len(methods & set(item)) for item in documented.values()) - 1

    for operation in operations:

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def check(case):
            response = case.call(headers=headers)
            case.validate_response(response, checks=checks, headers=headers)

        try:
            check()
        except Unsatisfiable:
            # Nothing can be invalid about an operation without parameters or body (e.g. GET /health).
            assert mode is GenerationMode.NEGATIVE, operation.label
