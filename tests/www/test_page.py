"""The "DAG Repositories" page through Flask's test client, for SimpleAuthManager and FabAuthManager.

The page is an HTML shell (its data comes from the REST API, tested in test_api.py): these tests check
who gets it, what it embeds (and never embeds), that its assets are served only to signed-in users, and
that the contract the browser test and the script rely on is in the shipped files.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from airflow_dagops.api import auth
from tests.helpers.repos import dag_source

PAGE = "/dagops/"
API = "/dagops/api/v1"
WWW = Path(__file__).resolve().parents[2] / "airflow_dagops" / "www"


class _Shell(HTMLParser):
    """The parts of the shell that matter: meta tags, script/style URLs, body attributes, test ids."""

    def __init__(self, html: str):
        super().__init__()
        self.meta: dict[str, str] = {}
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self.body: dict[str, str] = {}
        self.testids: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = {key: value or "" for key, value in attrs}
        if tag == "meta" and "name" in attrs:
            self.meta[attrs["name"]] = attrs.get("content", "")
        elif tag == "script":
            self.scripts.append(attrs.get("src", "INLINE"))
        elif tag == "link" and attrs.get("rel") == "stylesheet":
            self.styles.append(attrs["href"])
        elif tag == "body":
            self.body = attrs
        if "data-testid" in attrs:
            self.testids.append(attrs["data-testid"])


def _shell(response) -> _Shell:
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert response.mimetype == "text/html"
    return _Shell(response.get_data(as_text=True))


def _register(web, remote, name="team"):
    response = web.api("POST", "repositories", json={"name": name, "url": remote.url})
    assert response.status_code == 201, response.get_json()


# -- who may see the page ---------------------------------------------------------------------------------
@pytest.mark.parametrize("path", [PAGE, "/dagops/repositories/team", "/dagops/checks/7"])
def test_without_a_session_the_page_sends_you_to_airflow_login(web, path):
    response = web.client.get(path)
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location.path.rstrip("/").endswith("/auth/login")
    assert parse_qs(location.query)["next"] == [f"http://localhost{path}"]


def test_a_bad_token_is_no_session(web):
    web.client.set_cookie("_token", web.token("admin")[:-6] + "AAAAAA")
    assert web.client.get(PAGE).status_code == 302


def test_a_user_without_plugin_access_gets_403_and_no_csrf_token(web):
    if web.auth_manager != "fab":
        pytest.skip("every SimpleAuthManager role may view plugins")
    web.sign_in_with_cookie("nobody")
    for path in (PAGE, "/dagops/repositories/team", "/dagops/checks/7"):
        response = web.client.get(path)
        assert response.status_code == 403
        html = response.get_data(as_text=True)
        assert "Access denied" in html
        assert "dagops-csrf" not in html and "dagops-api" not in html
    # The "access denied" page is styled by the same assets: they need a session, not plugin access.
    assert web.client.get("/dagops/assets/dagops.css").status_code == 200


# -- what the shell embeds ---------------------------------------------------------------------------------
def test_admin_gets_the_shell_with_its_meta_tags_and_no_secret(web):
    token = web.sign_in_with_cookie("admin")
    response = web.client.get(PAGE)
    shell = _shell(response)

    assert shell.meta["dagops-api"] == API  # the test client has no /pluginsv2 mount: script_root is ""
    assert shell.meta["dagops-can-write"] == "true"
    assert shell.meta["dagops-can-delete"] == "true"
    assert re.fullmatch(r"[0-9a-f]{64}", shell.meta["dagops-csrf"])
    assert shell.body["data-page"] == "list"
    assert "add-repo" in shell.testids and "repo-form" in shell.testids and "confirm" in shell.testids

    html = response.get_data(as_text=True)
    assert token not in html
    for part in token.split("."):  # not even a piece of the JWT
        assert part not in html
    assert "INLINE" not in shell.scripts  # everything the page runs is an authenticated asset
    assert response.headers["Cache-Control"] == "no-store"
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'self'" in policy


def test_the_embedded_csrf_token_is_the_one_the_api_accepts(web):
    web.sign_in_with_cookie("admin")
    csrf = _shell(web.client.get(PAGE)).meta["dagops-csrf"]
    refused = web.client.post(f"{API}/repositories/ghost/unpin")
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "csrf_failed"
    accepted = web.client.post(f"{API}/repositories/ghost/unpin", headers={auth.CSRF_HEADER: csrf})
    assert accepted.status_code == 404  # past authentication and CSRF: the repository does not exist


def test_a_reader_gets_a_read_only_shell(web):
    web.sign_in_with_cookie("reader")
    shell = _shell(web.client.get(PAGE))
    assert shell.meta["dagops-can-write"] == "false"
    assert shell.meta["dagops-can-delete"] == "false"
    assert "add-repo" not in shell.testids


def test_an_editor_may_write(web):
    web.sign_in_with_cookie("editor")
    shell = _shell(web.client.get(PAGE))
    assert shell.meta["dagops-can-write"] == "true"
    assert "add-repo" in shell.testids


# -- the detail page ---------------------------------------------------------------------------------------
def test_detail_page_of_a_registered_repository(web, git_remote):
    _register(web, git_remote({"dags/a.py": dag_source("a")}))
    web.sign_in_with_cookie("reader")
    shell = _shell(web.client.get("/dagops/repositories/team"))
    assert shell.body["data-page"] == "detail"
    assert shell.body["data-repository"] == "team"
    assert shell.meta["dagops-list-url"] == PAGE


def test_detail_page_of_an_unknown_repository_is_the_shell_that_shows_the_api_404(web):
    """A valid but unknown name gets the shell; its script shows the API's "not found" answer."""
    web.sign_in_with_cookie("admin")
    shell = _shell(web.client.get("/dagops/repositories/ghost"))
    assert shell.body["data-repository"] == "ghost"
    answer = web.client.get(f"{API}/repositories/ghost")
    assert answer.status_code == 404 and "ghost" in answer.get_json()["error"]["message"]
    assert "not-found" in (WWW / "static" / "dagops.js").read_text()


def test_a_name_that_cannot_exist_is_a_404_page_with_the_name_escaped(web):
    web.sign_in_with_cookie("admin")
    response = web.client.get("/dagops/repositories/Bad%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E")
    assert response.status_code == 404
    html = response.get_data(as_text=True)
    assert "Repository not found" in html
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


# -- assets -----------------------------------------------------------------------------------------------
def test_assets_are_served_only_to_signed_in_users(web):
    web.sign_in_with_cookie("reader")
    shell = _shell(web.client.get(PAGE))
    urls = shell.scripts + shell.styles
    # common.js, dagops.js, repository_sections.js, dagops.css
    assert len(urls) == 4 and all(url.startswith("/dagops/assets/") for url in urls)
    for url in urls:
        response = web.client.get(url)
        assert response.status_code == 200, url
        assert response.mimetype in ("text/css", "text/javascript", "application/javascript")
        assert "private" in response.headers["Cache-Control"]
    web.sign_out()
    for url in urls:
        assert web.client.get(url).status_code == 401
    header = {"Authorization": f"Bearer {web.token('reader')}"}
    assert web.client.get(urls[0], headers=header).status_code == 200


def test_assets_outside_the_static_folder_are_not_served(web):
    web.sign_in_with_cookie("admin")
    for path in ("../views.py", "..%2Fviews.py", "%2e%2e/views.py", "missing.js", "static/../../views.py"):
        response = web.client.get(f"/dagops/assets/{path}")
        assert response.status_code == 404, path
        assert b"DagRepositoriesView" not in response.data


# -- the shipped files keep the page contract ---------------------------------------------------------------
CONTRACT_TESTIDS = [
    "repo-card", "status", "url", "branch", "last-sync", "dag-count", "live-commit", "error", "sync-now",
    "settings", "remove", "retry", "fix", "open-details", "add-repo", "repo-form", "save", "form-error",
    "confirm", "keep-dags", "confirm-ok", "confirm-cancel", "sync-row", "release-row", "rollback", "finding",
    "dag-row", "notice",
    # credentials (issue 5): the connection picker's "New connection", the detail page's "Credentials"
    "new-connection", "connection-form", "connection-save", "public-key", "test-access", "access-result",
    "deploy-key", "rotate-key", "rotation", "rotate-confirm", "rotate-abort",
    # the pull-request check report
    "check-status", "head-sha", "check-summary", "check-findings", "check-repository", "check-airflow-run",
]  # fmt: skip


def test_the_page_files_carry_every_selector_of_the_contract():
    shipped = "\n".join(path.read_text() for path in WWW.rglob("*") if path.suffix in (".html", ".js"))
    # as an attribute or property (testid="x", testid: "x"), a builder's test id argument (..., "x") or default
    pattern = r'testid[=:]\s*["\']{0}["\']|, "{0}"[,)]|\|\| "{0}"'
    missing = [t for t in CONTRACT_TESTIDS if not re.search(pattern.format(re.escape(t)), shipped)]
    assert not missing
    for name in ("name", "url", "ref", "namespace", "priority", "conn_id", "kind", "host", "login", "token"):
        assert f'name="{name}"' in shipped or f'name: "{name}"' in shipped, name


def test_the_script_never_writes_html_and_the_page_loads_nothing_from_outside():
    common = (WWW / "static" / "common.js").read_text()  # the API client and DOM helpers of both pages
    pages = [(WWW / "static" / name).read_text() for name in ("dagops.js", "marketplace.js")]
    for script in (common, *pages):
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in script, sink
    assert '"X-DagOps-CSRF": csrf' in common and 'credentials: "same-origin"' in common
    script = pages[0]
    assert 'target: "_top"' in script
    external = re.compile(r"""(src|href)\s*=\s*["']?(https?:)?//|url\(\s*["']?(https?:)?//|@import""", re.I)
    for path in WWW.rglob("*"):
        if path.suffix in (".html", ".js", ".css"):
            assert not external.search(path.read_text()), path
    # One way out, the dagops API: the shared client, which both pages build from their configured API URL.
    assert common.count("fetch(") == 1 and "fetch(base + " in common
    assert all("fetch(" not in page and "apiClient(CONFIG.api, CONFIG.csrf)" in page for page in pages)


# -- credentials: the "New connection" form and the detail page never hold a secret -----------------------------
def test_the_new_connection_form_clears_the_token_before_calling_the_api():
    """A browser-side property the test client cannot observe, checked in the script itself: the token input
    is a password field, and its value is emptied before the request is made (and the form, with the field,
    leaves the DOM on success)."""
    script = (WWW / "static" / "dagops.js").read_text()
    submit = script[script.index("async function submitConnectionForm") :]
    submit = submit[: submit.index("\n  }\n")]
    assert 'name: "token", type: "password", autocomplete: "new-password"' in script
    cleared = submit.index('connForm.elements.namedItem("token").value = "";')
    assert cleared < submit.index('api("POST", "connections", body)')
    assert 'slot.replaceChildren(created.public_key ? newKeyBox(created) : el("div"' in submit  # form removed
    assert "body.token = null" in submit
    for leak in ("localStorage", "sessionStorage", "console."):
        assert leak not in submit
    # The instruction that goes with a generated key.
    assert "Add this as a read-only deploy key in your Git host" in script


def test_no_page_embeds_a_connection_secret(web, git_remote):
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    secret = "ghp_page-test-secret-0123456789abcdef"
    created = web.api("POST", "connections", json={"conn_id": "pageconn_token", "kind": "token", "token": secret})
    assert created.status_code == 201, created.get_json()
    keyed = web.api("POST", "connections", json={"conn_id": "pageconn_key", "kind": "ssh_key"})
    assert keyed.status_code == 201, keyed.get_json()
    try:
        remote = git_remote({"dags/a.py": dag_source("a")})
        body = {"name": "private", "url": remote.url, "conn_id": "pageconn_token", "verify": False}
        assert web.api("POST", "repositories", json=body).status_code == 201
        web.sign_in_with_cookie("admin")
        for path in (PAGE, "/dagops/repositories/private", "/dagops/checks/1"):
            html = web.client.get(path).get_data(as_text=True)
            assert secret not in html and "PRIVATE KEY" not in html, path
        for name in ("common.js", "dagops.js", "dagops.css"):
            asset = web.client.get(f"/dagops/assets/{name}").get_data(as_text=True)
            assert secret not in asset and "PRIVATE KEY" not in asset
        # What the detail page's script reads: the connection id, never its token.
        answer = web.api("POST", "repositories/private/credentials/test", json={})
        assert answer.status_code == 200 and secret not in answer.get_data(as_text=True)
        assert web.api("GET", "repositories/private/credentials/deploy-key").status_code == 404  # a token: no key
    finally:
        with create_session() as session:
            session.query(Connection).filter(Connection.conn_id.like("pageconn_%")).delete()


# -- the pull-request check report ---------------------------------------------------------------------------
def test_the_check_page_is_a_shell_for_readers(web):
    web.sign_in_with_cookie("reader")
    response = web.client.get("/dagops/checks/42")
    shell = _shell(response)
    assert shell.body["data-page"] == "check"
    assert shell.body["data-check-id"] == "42"
    assert shell.meta["dagops-api"] == API
    assert shell.meta["dagops-can-write"] == "false"
    assert re.fullmatch(r"[0-9a-f]{64}", shell.meta["dagops-csrf"])
    assert shell.meta["dagops-list-url"] == PAGE
    assert "back" in shell.testids
    assert "INLINE" not in shell.scripts
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    # Only integer ids are routes; the script shows the API's 404 for an unknown one.
    assert web.client.get("/dagops/checks/abc").status_code == 404
    missing = web.client.get(f"{API}/checks/999999")
    assert missing.status_code == 404
    script = (WWW / "static" / "dagops.js").read_text()
    assert 'api("GET", "checks/" + encodeURIComponent(CONFIG.checkId))' in script


def test_the_commit_status_details_link_is_the_check_page(web):
    """The Git host's "Details" link (checks.service.check_url) opens this page, not the raw JSON."""
    from airflow_dagops.checks import service as checks
    from airflow_dagops.www.views import PLUGINS_MOUNT

    url = urlsplit(checks.check_url(42))
    assert url.path == f"{PLUGINS_MOUNT}/dagops/checks/42"
    web.sign_in_with_cookie("reader")
    shell = _shell(web.client.get(url.path[len(PLUGINS_MOUNT) :]))  # the test client has no /pluginsv2 mount
    assert shell.body["data-page"] == "check" and shell.body["data-check-id"] == "42"
