"""A local fake of the GitHub, GitLab and Gitea REST APIs for webhook registration and repository discovery.

One server speaks one host's dialect (`FakeGitHost(provider)`), keeps state like the host (repositories with their
topics and files, webhooks, deliveries), enforces tokens and their scopes the way the host does (401 for an unknown
token, 403 for a token without the scope), pages listings with `Link: rel="next"`, and records every request with
its JSON body, so tests assert what dagops sent against the hosts' documented formats.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, unquote, urlsplit

import pytest

# The scope each host wants to manage webhooks (what a 403 is about).
HOOK_SCOPE = {"github": "admin:repo_hook", "gitlab": "api", "gitea": "write:repository"}


@dataclass
class Request:
    method: str
    path: str
    query: dict
    headers: dict
    body: dict | list | None


@dataclass
class FakeRepo:
    full_name: str  # owner/name (GitLab: group/sub/name)
    topics: list[str] = field(default_factory=list)
    files: set[str] = field(default_factory=set)
    default_branch: str = "main"
    clone_url: str = ""
    archived: bool = False


@dataclass
class FakeGitHost:
    provider: str
    tokens: dict[str, set[str]] = field(default_factory=dict)  # token -> scopes
    repos: dict[str, FakeRepo] = field(default_factory=dict)
    hooks: dict[str, list[dict]] = field(default_factory=dict)  # full_name -> hooks as the host stores them
    deliveries: dict[int, list[dict]] = field(default_factory=dict)  # hook id -> deliveries, newest first
    requests: list[Request] = field(default_factory=list)
    page_size: int | None = None  # when set, listings are paged at most this many per page, whatever was asked
    events_api: bool = True  # GitLab < 17 has no hook events API
    server: ThreadingHTTPServer | None = None
    _next_id: int = 100

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def add_repo(self, full_name: str, **kwargs) -> FakeRepo:
        repo = FakeRepo(full_name, **kwargs)
        repo.clone_url = repo.clone_url or f"https://{self.provider}.example.com/{full_name}.git"
        self.repos[full_name] = repo
        return repo

    def calls(self, method: str | None = None, contains: str = "") -> list[Request]:
        return [r for r in self.requests if (method is None or r.method == method) and contains in r.path]

    def writes(self) -> list[Request]:
        return [r for r in self.requests if r.method != "GET"]

    # -- the host's logic ---------------------------------------------------------------------------------------
    def token_of(self, headers: dict) -> str | None:
        value = headers.get("Authorization", "")
        prefix = "token " if self.provider == "gitea" else "Bearer "
        if self.provider == "gitlab" and headers.get("PRIVATE-TOKEN"):
            return headers["PRIVATE-TOKEN"]
        return value[len(prefix) :] if value.startswith(prefix) else None

    def handle(self, method: str, raw_path: str, headers: dict, body) -> tuple[int, object, dict]:
        parts = urlsplit(raw_path)
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        self.requests.append(Request(method, parts.path, query, headers, body))
        token = self.token_of(headers)
        if token not in self.tokens:
            return 401, {"message": "Bad credentials" if self.provider == "github" else "401 Unauthorized"}, {}
        scopes = self.tokens[token]
        segments = [unquote(s) for s in parts.path.strip("/").split("/")]
        route = getattr(self, f"_{self.provider}")
        return route(method, segments, query, body, scopes, parts.path)

    def _page(self, items: list, query: dict, path: str) -> tuple[int, object, dict]:
        size = int(query.get("per_page") or query.get("limit") or 30)
        if self.page_size:
            size = min(size, self.page_size)
        page = int(query.get("page") or 1)
        chunk = items[(page - 1) * size : page * size]
        headers = {}
        if page * size < len(items):
            rest = {**query, "page": str(page + 1)}
            link = f"{self.url}{path}?" + "&".join(f"{k}={quote(str(v))}" for k, v in rest.items())
            headers["Link"] = f'<{link}>; rel="next"'
        return 200, chunk, headers

    def _new_hook(self, full_name: str, hook: dict) -> dict:
        self._next_id += 1
        hook = {**hook, "id": self._next_id}
        self.hooks.setdefault(full_name, []).append(hook)
        return hook

    def _find_hook(self, full_name: str, hook_id: str) -> dict | None:
        return next((h for h in self.hooks.get(full_name, []) if str(h["id"]) == hook_id), None)

    def _hook_request(self, method, full_name, hook_id, body, scopes, item_of, update, query, path):
        if full_name not in self.repos:
            return 404, {"message": "Not Found"}, {}
        if HOOK_SCOPE[self.provider] not in scopes:
            return 403, {"message": self._forbidden_message()}, {}
        if hook_id is None:
            if method == "GET":
                return self._page([item_of(h) for h in self.hooks.get(full_name, [])], query, path)
            if method == "POST":
                return 201, item_of(self._new_hook(full_name, body)), {}
            return 405, {"message": "Method Not Allowed"}, {}
        hook = self._find_hook(full_name, hook_id)
        if hook is None:
            return 404, {"message": "Not Found"}, {}
        if method == "DELETE":
            self.hooks[full_name].remove(hook)
            return 204, None, {}
        if method in ("PATCH", "PUT"):
            update(hook, body)
            return 200, item_of(hook), {}
        return 200, item_of(hook), {}

    def _forbidden_message(self) -> str:
        return {
            "github": "Resource not accessible by personal access token",
            "gitlab": "403 Forbidden",
            "gitea": "token does not have at least one of required scope(s): [write:repository]",
        }[self.provider]

    # GitHub -------------------------------------------------------------------------------------------------------
    def _github(self, method, seg, query, body, scopes, path):
        if seg[:1] == ["orgs"] and len(seg) == 3 and seg[2] == "repos":
            items = [self._github_repo(r) for r in self.repos.values() if r.full_name.split("/")[0] == seg[1]]
            if not items:
                return 404, {"message": "Not Found"}, {}
            return self._page(items, query, path)
        if seg[:1] == ["repos"] and len(seg) >= 4 and seg[3] == "hooks":
            full_name = f"{seg[1]}/{seg[2]}"
            hook_id = seg[4] if len(seg) > 4 else None
            if len(seg) == 6 and seg[5] == "deliveries":
                if HOOK_SCOPE["github"] not in scopes:
                    return 403, {"message": self._forbidden_message()}, {}
                return 200, self.deliveries.get(int(hook_id), [])[: int(query.get("per_page", 30))], {}

            def item(hook):
                config = {k: v for k, v in hook["config"].items() if k != "secret"}  # GitHub never shows it
                if "secret" in hook["config"]:
                    config["secret"] = "********"
                return {"id": hook["id"], "name": "web", "active": hook.get("active", True), "events": hook["events"],
                        "config": config}  # fmt: skip

            def update(hook, changes):
                hook.update({k: v for k, v in changes.items() if k != "config"})
                hook["config"] = {**hook["config"], **changes.get("config", {})}

            return self._hook_request(method, full_name, hook_id, body, scopes, item, update, query, path)
        if seg[:1] == ["repos"] and len(seg) >= 5 and seg[3] == "contents":
            repo = self.repos.get(f"{seg[1]}/{seg[2]}")
            wanted = "/".join(seg[4:])
            if repo is None or wanted not in repo.files:
                return 404, {"message": "Not Found"}, {}
            return 200, {"type": "file", "path": wanted, "name": wanted.rsplit("/", 1)[-1]}, {}
        return 404, {"message": "Not Found"}, {}

    def _github_repo(self, repo: FakeRepo) -> dict:
        owner, name = repo.full_name.split("/", 1)
        return {
            "name": name,
            "full_name": repo.full_name,
            "owner": {"login": owner},
            "topics": repo.topics,
            "default_branch": repo.default_branch,
            "clone_url": repo.clone_url,
            "ssh_url": f"git@github.example.com:{repo.full_name}.git",
            "html_url": f"https://github.example.com/{repo.full_name}",
            "archived": repo.archived,
        }

    # GitLab -------------------------------------------------------------------------------------------------------
    def _gitlab(self, method, seg, query, body, scopes, path):
        if seg[:1] == ["groups"] and len(seg) == 3 and seg[2] == "projects":
            group = seg[1]
            subgroups = query.get("include_subgroups") == "true"
            items = [
                self._gitlab_project(r)
                for r in self.repos.values()
                if r.full_name.rsplit("/", 1)[0] == group or (subgroups and r.full_name.startswith(group + "/"))
            ]
            if not any(r.full_name.startswith(group + "/") for r in self.repos.values()):
                return 404, {"message": "404 Group Not Found"}, {}
            return self._page(items, query, path)
        if seg[:1] == ["projects"] and len(seg) >= 3 and seg[2] == "hooks":
            full_name = seg[1]
            hook_id = seg[3] if len(seg) > 3 else None
            if len(seg) == 5 and seg[4] == "events":
                if not self.events_api:
                    return 404, {"message": "404 Not Found"}, {}
                return 200, self.deliveries.get(int(hook_id), [])[: int(query.get("per_page", 20))], {}

            def item(hook):
                return {k: v for k, v in hook.items() if k != "token"}  # GitLab never shows the token

            def update(hook, changes):
                hook.update(changes)

            return self._hook_request(method, full_name, hook_id, body, scopes, item, update, query, path)
        if seg[:1] == ["projects"] and len(seg) >= 5 and seg[2:4] == ["repository", "files"]:
            repo = self.repos.get(seg[1])
            wanted = "/".join(seg[4:])
            if repo is None or wanted not in repo.files:
                return 404, {"message": "404 File Not Found"}, {}
            return 200, {"file_name": wanted.rsplit("/", 1)[-1], "file_path": wanted}, {}
        return 404, {"message": "404 Not Found"}, {}

    def _gitlab_project(self, repo: FakeRepo) -> dict:
        return {
            "id": abs(hash(repo.full_name)) % 10_000,
            "name": repo.full_name.rsplit("/", 1)[1],
            "path": repo.full_name.rsplit("/", 1)[1],
            "path_with_namespace": repo.full_name,
            "topics": repo.topics,
            "default_branch": repo.default_branch,
            "http_url_to_repo": repo.clone_url,
            "ssh_url_to_repo": f"git@gitlab.example.com:{repo.full_name}.git",
            "web_url": f"https://gitlab.example.com/{repo.full_name}",
            "archived": repo.archived,
        }

    # Gitea --------------------------------------------------------------------------------------------------------
    def _gitea(self, method, seg, query, body, scopes, path):
        if seg[:1] == ["orgs"] and len(seg) == 3 and seg[2] == "repos":
            items = [self._gitea_repo(r) for r in self.repos.values() if r.full_name.split("/")[0] == seg[1]]
            if not items:
                return 404, {"message": "GetOrgByName", "errors": ["org does not exist"]}, {}
            return self._page(items, query, path)
        if seg[:1] == ["repos"] and len(seg) >= 4 and seg[3] == "hooks":
            full_name = f"{seg[1]}/{seg[2]}"
            hook_id = seg[4] if len(seg) > 4 else None

            def item(hook):
                config = {k: v for k, v in hook["config"].items() if k != "secret"}
                return {"id": hook["id"], "type": hook.get("type", "gitea"), "config": config,
                        "events": hook["events"], "active": hook.get("active", True)}  # fmt: skip

            def update(hook, changes):
                hook.update({k: v for k, v in changes.items() if k != "config"})
                hook["config"] = {**hook["config"], **changes.get("config", {})}

            return self._hook_request(method, full_name, hook_id, body, scopes, item, update, query, path)
        if seg[:1] == ["repos"] and len(seg) >= 5 and seg[3] == "contents":
            repo = self.repos.get(f"{seg[1]}/{seg[2]}")
            wanted = "/".join(seg[4:])
            if repo is None or wanted not in repo.files:
                return 404, {"message": "GetContentsOrList", "errors": ["object does not exist"]}, {}
            return 200, {"type": "file", "path": wanted}, {}
        return 404, {"message": "not found"}, {}

    def _gitea_repo(self, repo: FakeRepo) -> dict:
        owner, name = repo.full_name.split("/", 1)
        return {
            "name": name,
            "full_name": repo.full_name,
            "owner": {"login": owner},
            "topics": repo.topics,
            "default_branch": repo.default_branch,
            "clone_url": repo.clone_url,
            "ssh_url": f"git@gitea.example.com:{repo.full_name}.git",
            "html_url": f"https://gitea.example.com/{repo.full_name}",
            "archived": repo.archived,
        }


def start_git_host(provider: str) -> FakeGitHost:
    fake = FakeGitHost(provider)

    class Handler(BaseHTTPRequestHandler):
        def _serve(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            status, answer, headers = fake.handle(self.command, self.path, dict(self.headers), body)
            data = b"" if answer is None else json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve  # noqa: N815 - http.server's naming

        def log_message(self, *args):  # keep test output quiet
            pass

    fake.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=fake.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return fake


@pytest.fixture
def git_host():
    """`git_host("github")`: a fake host API (FakeGitHost), stopped after the test."""
    started: list[FakeGitHost] = []

    def make(provider: str) -> FakeGitHost:
        started.append(start_git_host(provider))
        return started[-1]

    yield make
    for fake in started:
        assert fake.server is not None
        fake.server.shutdown()
        fake.server.server_close()
