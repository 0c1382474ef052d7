"""Hostile input on the REST API (with a user-role token, as an attacker holding one would send it) and on the
CLI: JSON nested 100,000 deep, NULs, control characters, lone surrogates, overlong values and wrong types, in
bodies, path and query parameters. Every one is a 4xx naming the rule (never a 500), and nothing is stored.
Both faces refuse through the same `safety` validators. And file:// URLs: only for admins through the API."""

from __future__ import annotations

import json

import pytest

from tests.api.test_api import _error, _register
from tests.helpers.repos import dag_source

USER = "editor"  # SimpleAuthManager USER / FAB User: may edit DAGs, nothing more
HTTPS = "https://git.example.com/acme/dags.git"
# Python's json recurses once per level and gives up at about 1,000. 10,000 levels fit the 64 KiB limit of most
# routes; proposals take 2 MiB, room for 100,000.
DEEP_BODIES = {
    "arrays": lambda depth: b"[" * depth + b"]" * depth,
    "objects": lambda depth: b'{"a":' * depth + b"1" + b"}" * depth,
    "unclosed": lambda depth: b"[" * depth,
    "inside a valid object": lambda depth: b'{"name": "team", "url": ' + b"[" * depth + b"]" * depth + b"}",
}
ROUTES_WITH_BODIES = [
    ("POST", "repositories"),
    ("PATCH", "repositories/team"),
    ("POST", "repositories/team/sync"),
    ("POST", "repositories/team/rollback"),
    ("POST", "repositories/team/pin"),
    ("POST", "repositories/team/unpin"),
    ("POST", "repositories/team/deploy"),
    ("POST", "repositories/team/promote"),
    ("POST", "repositories/team/proposals"),
    ("POST", "repositories/team/credentials/test"),
    ("POST", "connections"),
    ("POST", "marketplace/packages/pg_backup/ratings"),
    ("POST", "marketplace/packages/pg_backup/reviews"),
]


def _names(web) -> list[str]:
    return [repo["name"] for repo in web.api("GET", "repositories").get_json()["items"]]


def _raw(web, method: str, path: str, body: bytes, *, as_: str | None = USER):
    return web.api(method, path, as_=as_, data=body, headers={"Content-Type": "application/json"})


# -- JSON nested too deep --------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", list(DEEP_BODIES))
def test_json_nested_100000_deep_is_400_on_every_route_never_500(web, git_remote, shape):
    _register(web, git_remote({"dags/a.py": dag_source("a")}))
    for method, path in ROUTES_WITH_BODIES:
        depth = 100_000 if path.endswith("/proposals") else 10_000
        response = _raw(web, method, path, DEEP_BODIES[shape](depth))
        assert response.status_code == 400, (method, path, response.status_code, response.get_data()[:300])
        error = _error(response)
        assert error["code"] == "malformed_json" and "64 levels" in error["message"], (method, path, error)
    assert _names(web) == ["team"]


def test_json_64_levels_deep_is_parsed_and_judged_by_the_schema(web):
    deep_64 = b'{"name": "team", "url": ' + b"[" * 63 + b"]" * 63 + b"}"
    response = _raw(web, "POST", "repositories", deep_64)
    assert response.status_code == 422 and _error(response)["code"] == "invalid_body"


def test_deep_json_without_a_token_is_401_not_parsed(web):
    response = _raw(web, "POST", "repositories", DEEP_BODIES["arrays"](10_000), as_=None)
    assert response.status_code == 401


# -- NUL, control characters, surrogates, overlong values, wrong types ----------------------------------------
BAD_FIELDS = [
    ("subdir", "da\x00gs"),
    ("subdir", "dags\x1b[2J"),
    ("subdir", "dags\n"),
    ("subdir", "dags\u2028x"),
    ("subdir", "d/" * 600),
    ("subdir", 5),
    ("ref", "main\x00"),
    ("ref", "ma\tin"),
    ("ref", "main\x85"),
    ("ref", "m" * 300),
    ("ref", ["main"]),
    ("url", HTTPS + "\x00"),
    ("url", "https://git.example.com/acme\n/dags.git"),
    ("url", "https://git.example.com/acme\r/dags.git"),
    ("url", "https://git.example.com/" + "a" * 3000),
    ("url", {"href": HTTPS}),
    ("name", "team\n"),
    ("name", "te\x00am"),
    ("name", 7),
    ("namespace", "team\n"),
    ("namespace", "ns\x7f"),
]


@pytest.mark.parametrize("field,value", BAD_FIELDS, ids=[f"{f}-{json.dumps(v)[:20]}" for f, v in BAD_FIELDS])
def test_a_bad_field_in_a_new_repository_is_a_4xx_and_nothing_is_stored(web, field, value):
    body = {"name": "team", "url": HTTPS, "verify": False, field: value}
    response = web.api("POST", "repositories", as_=USER, json=body)
    assert response.status_code == 422, (field, value, response.status_code, response.get_json())
    assert _error(response)["code"] in ("invalid_body", "invalid_input")
    assert _names(web) == []


@pytest.mark.parametrize("field,value", [f for f in BAD_FIELDS if f[0] in ("subdir", "ref", "url")])
def test_a_bad_field_in_an_update_is_a_4xx_and_changes_nothing(web, git_remote, field, value):
    _register(web, git_remote({"dags/a.py": dag_source("a")}))
    before = web.api("GET", "repositories/team").get_json()
    response = web.api("PATCH", "repositories/team", as_=USER, json={field: value, "verify": False})
    assert response.status_code in (403, 422), (field, value, response.status_code, response.get_json())
    after = web.api("GET", "repositories/team").get_json()
    assert {k: after[k] for k in ("url", "ref", "subdir")} == {k: before[k] for k in ("url", "ref", "subdir")}


@pytest.mark.parametrize("conn_id", ["prod\x00git", "prod git", "-prod", "p" * 251, "prod\ngit"])
def test_a_bad_connection_id_is_refused_even_for_an_admin(web, conn_id):
    body = {"name": "team", "url": HTTPS, "verify": False, "conn_id": conn_id}
    response = web.api("POST", "repositories", as_="admin", json=body)
    assert response.status_code == 422, (conn_id, response.get_json())
    assert _names(web) == []


@pytest.mark.parametrize(
    "raw",
    [
        b'{"name": "team", "url": "https://git.example.com/acme/dags.git", "verify": false, "ref": "\\ud800"}',
        b'{"name": "team", "url": "https://git.example.com/acme/dags.git", "verify": false, "\\u0000": 1}',
        b'{"name": "team", "url": "https://git.example.com/acme/dags.git\\u0000", "verify": false}',
        b'{"name": "team", "url": "https://git.example.com/a.git", "verify": false, "subdir": "\\udfff"}',
    ],
)
def test_nul_and_lone_surrogates_anywhere_in_a_body_are_refused(web, raw):
    response = _raw(web, "POST", "repositories", raw)
    assert response.status_code == 422 and _error(response)["code"] == "invalid_body", response.get_json()
    assert _names(web) == []


def test_a_body_that_is_not_utf8_is_400(web):
    response = _raw(web, "POST", "repositories", '{"name": "tëam"}'.encode("utf-16"))
    assert response.status_code == 400 and _error(response)["code"] == "malformed_json"


def test_control_characters_in_free_text_are_refused_but_file_contents_may_hold_them(web):
    review = web.api("POST", "marketplace/packages/pg_backup/reviews", as_=USER, json={"text": "great\x1b[2J"})
    assert review.status_code == 422 and _error(review)["code"] == "invalid_body"
    title = {"files": [{"path": "dags/x.py", "content": "x = 1\n"}], "title": "a\x07b"}
    proposal = web.api("POST", "repositories/team/proposals", as_=USER, json=title)
    assert proposal.status_code == 422 and _error(proposal)["code"] == "invalid_body"
    # A form feed in a Python file is legal Python: file contents are not free text (no repository here: 404).
    content = {"files": [{"path": "dags/x.py", "content": "x = 1\n\x0c\ny = 2\n"}], "title": "ok"}
    assert web.api("POST", "repositories/team/proposals", as_=USER, json=content).status_code == 404


# -- path and query parameters ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "path",
    [
        "repositories/te%00am",
        "repositories/team%0A",
        "repositories/%1B%5B2J",
        "repositories/" + "a" * 300,
        "repositories/te%00am/syncs",
        "repositories/te%00am/diff",
        "marketplace/packages/pg%00backup",
    ],
)
def test_path_parameters_with_control_characters_are_404(web, path):
    response = web.api("GET", path, as_=USER)
    assert response.status_code == 404 and _error(response)["code"] == "not_found", (path, response.get_json())


@pytest.mark.parametrize(
    "query",
    [
        "repositories?limit=%00",
        "repositories?offset=1%0A",
        "marketplace/search?q=dags%00",
        "marketplace/search?q=%1B%5B31m",
        "events?repository=te%00am",
        "events?kind=" + "x" * 2000,
        "repositories?%00=1",
    ],
)
def test_query_parameters_with_control_characters_or_overlong_are_422(web, query):
    response = web.api("GET", query, as_=USER)
    assert response.status_code == 422 and _error(response)["code"] == "invalid_query", (query, response.get_json())


# -- the CLI: the same validators ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args,message",
    [
        (["--subdir", "da\x00gs"], "invalid subdir"),
        (["--subdir", "dags\x1b"], "invalid subdir"),
        (["--ref", "main\x00"], "invalid ref"),
        (["--ref", "ma\nin"], "invalid ref"),
        (["--namespace", "team\n"], "invalid namespace"),
        (["--conn-id", "prod\x00git"], "invalid connection id"),
        (["--webhook-conn-id", "hook\x1b"], "invalid connection id"),
    ],
)
def test_the_cli_refuses_the_same_values_and_stores_nothing(cli, git_remote, args, message):
    remote = git_remote()
    result = cli("repos", "add", "team", remote.url, "--no-verify", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert json.loads(cli("repos", "list", "--json").stdout) == []


@pytest.mark.parametrize("name,url", [("team\n", None), ("team", "file:///srv/x\x00"), ("team", "/srv/\nx")])
def test_the_cli_refuses_bad_names_and_urls(cli, git_remote, name, url):
    result = cli("repos", "add", name, url or git_remote().url, "--no-verify")
    assert result.exit_code == 2, result.output
    assert json.loads(cli("repos", "list", "--json").stdout) == []


# -- file:// URLs: the CLI and admins only -------------------------------------------------------------------------
def test_a_user_role_account_cannot_register_a_repository_on_the_servers_disk(web, git_remote):
    remote = git_remote({"dags/a.py": dag_source("a")})
    for url in (remote.url, str(remote.path), "FILE://" + str(remote.path)):
        response = web.api("POST", "repositories", as_=USER, json={"name": "team", "url": url})
        assert response.status_code == 403, (url, response.get_json())
        error = _error(response)
        assert error["code"] == "file_url_forbidden" and "api_file_urls" in error["message"]
    assert _names(web) == []
    assert web.api("POST", "repositories", as_="admin", json={"name": "team", "url": remote.url}).status_code == 201


def test_a_user_role_account_cannot_point_a_repository_at_the_servers_disk(web, git_remote):
    _register(web, git_remote({"dags/a.py": dag_source("a")}))  # by an admin
    other = git_remote({"dags/b.py": dag_source("b")}, name="other")
    before = web.api("GET", "repositories/team").get_json()["url"]
    response = web.api("PATCH", "repositories/team", as_=USER, json={"url": other.url})
    assert response.status_code == 403 and _error(response)["code"] == "file_url_forbidden"
    assert web.api("GET", "repositories/team").get_json()["url"] == before
    # Other changes to a file:// repository an admin registered stay the editor's to make, its URL re-sent or not.
    assert web.api("PATCH", "repositories/team", as_=USER, json={"priority": 7}).status_code == 200
    same = web.api("PATCH", "repositories/team", as_=USER, json={"url": before, "priority": 8})
    assert same.status_code == 200, same.get_json()


def test_an_operator_may_allow_file_urls_for_every_writer(web, git_remote, monkeypatch):
    monkeypatch.setenv("AIRFLOW__DAGOPS__API_FILE_URLS", "True")
    remote = git_remote({"dags/a.py": dag_source("a")})
    response = web.api("POST", "repositories", as_=USER, json={"name": "team", "url": remote.url})
    assert response.status_code == 201, response.get_json()


def test_file_urls_still_need_the_file_transport(web, git_remote, monkeypatch):
    monkeypatch.setenv("AIRFLOW__DAGOPS__ALLOWED_PROTOCOLS", "https:ssh")
    response = web.api("POST", "repositories", as_="admin", json={"name": "team", "url": git_remote().url})
    assert response.status_code == 422 and "not allowed" in _error(response)["message"]


# -- every documented operation ------------------------------------------------------------------------------------
def test_every_documented_body_refuses_deep_huge_and_broken_json_never_500(web, git_remote):
    """Each operation of the OpenAPI document that takes a body, with a user-role token: JSON nested 10,000
    deep is 400, a body over its limit is 413 (these are Flask's own checks, behind the middleware), and
    neither is ever a 5xx."""
    _register(web, git_remote({"dags/a.py": dag_source("a")}))
    document = web.api("GET", "openapi.json").get_json()
    operations = [
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "requestBody" in operation
    ]
    assert len(operations) >= 15, operations
    huge = b'{"a": "' + b"x" * (3 * 1024 * 1024) + b'"}'
    for method, template in operations:
        path = template.replace("{name}", "team").replace("{id}", "1").replace("{provider}", "github")
        for label, body, expected in [
            ("deep", b"[" * 10_000 + b"]" * 10_000, {400, 401, 403}),
            ("huge", huge, {403, 413}),
            ("broken", b'{"a": ', {400, 401, 403}),
            ("nul", b'{"\\u0000": "\\u0000"}', {401, 403, 404, 422}),
        ]:
            response = _raw(web, method, path, body)
            assert response.status_code < 500, (method, path, label, response.get_data()[:300])
            assert response.status_code in expected, (method, path, label, response.status_code, response.get_json())
