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
from tests.conftest import dag_source

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
@pytest.mark.parametrize("path", [PAGE, "/dagops/repositories/team"])
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
    for path in (PAGE, "/dagops/repositories/team"):
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
    assert len(urls) == 2 and all(url.startswith("/dagops/assets/") for url in urls)
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
]  # fmt: skip


def test_the_page_files_carry_every_selector_of_the_contract():
    shipped = "\n".join(path.read_text() for path in WWW.rglob("*") if path.suffix in (".html", ".js"))
    # as an attribute or property (testid="x", testid: "x"), a builder's test id argument (..., "x") or default
    pattern = r'testid[=:]\s*["\']{0}["\']|, "{0}"\)|\|\| "{0}"'
    missing = [t for t in CONTRACT_TESTIDS if not re.search(pattern.format(re.escape(t)), shipped)]
    assert not missing
    for name in ("name", "url", "ref", "namespace", "priority", "conn_id"):
        assert f'name="{name}"' in shipped or f'name: "{name}"' in shipped, name


def test_the_script_never_writes_html_and_the_page_loads_nothing_from_outside():
    script = (WWW / "static" / "dagops.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script, sink
    assert 'headers["X-DagOps-CSRF"]' in script and 'credentials: "same-origin"' in script
    assert 'target: "_top"' in script
    external = re.compile(r"""(src|href)\s*=\s*["']?(https?:)?//|url\(\s*["']?(https?:)?//|@import""", re.I)
    for path in WWW.rglob("*"):
        if path.suffix in (".html", ".js", ".css"):
            assert not external.search(path.read_text()), path
    assert script.count("fetch(") == 1 and "fetch(CONFIG.api + " in script  # one way out: the dagops API
