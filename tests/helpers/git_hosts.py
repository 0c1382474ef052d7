"""A local fake of the GitHub, GitLab and Gitea REST APIs for webhook registration and repository discovery.

One server speaks one host's dialect (`FakeGitHost(provider)`; what differs between the hosts is `DIALECTS`, the
logic is one), keeps state like the host (repositories with their
topics and files, webhooks, deliveries), enforces tokens and their scopes the way the host does (401 for an unknown
token, 403 for a token without the scope), pages listings with `Link: rel="next"`, and records every request with
its JSON body, so tests assert what dagops sent against the hosts' documented formats.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, unquote, urlsplit

import pytest

# The scope each host wants to manage webhooks (what a 403 is about).
HOOK_SCOPE = {"github": "admin:repo_hook", "gitlab": "api", "gitea": "write:repository"}


@dataclass(frozen=True)
class Dialect:
    """How one host's API spells what all three do: the paths of an organization's listing, of a repository, of
    its files and of a hook's deliveries; whether a hook keeps its settings in `config` (GitHub, Gitea) or flat
    (GitLab), and how it hides the secret; the host's error messages."""

    organization: tuple[str, str]  # /<0>/<name>/<1>: an organization's (a group's) repositories
    repository: str  # /<repository>/<owner>/<name> (GitHub, Gitea) or /projects/<url-encoded path> (GitLab)
    files: tuple[str, ...]  # <repository path>/<files>/<file path>
    deliveries: str | None  # <hook path>/<deliveries>; None: the API lists none
    secret: str  # the key of the hook's secret (inside `config`, or flat)
    masked_secret: str | None  # what the host shows instead of a set secret (None: the key is left out)
    unauthorized: str
    forbidden: str
    not_found: dict
    organization_not_found: dict
    file_not_found: dict

    @property
    def flat_hooks(self) -> bool:
        return self.repository == "projects"


DIALECTS = {
    "github": Dialect(
        ("orgs", "repos"), "repos", ("contents",), "deliveries", "secret", "********", "Bad credentials",
        "Resource not accessible by personal access token", {"message": "Not Found"}, {"message": "Not Found"},
        {"message": "Not Found"},
    ),
    "gitlab": Dialect(
        ("groups", "projects"), "projects", ("repository", "files"), "events", "token", None, "401 Unauthorized",
        "403 Forbidden", {"message": "404 Not Found"}, {"message": "404 Group Not Found"},
        {"message": "404 File Not Found"},
    ),
    "gitea": Dialect(
        ("orgs", "repos"), "repos", ("contents",), None, "secret", None, "401 Unauthorized",
        "token does not have at least one of required scope(s): [write:repository]", {"message": "not found"},
        {"message": "GetOrgByName", "errors": ["org does not exist"]},
        {"message": "GetContentsOrList", "errors": ["object does not exist"]},
    ),
}  # fmt: skip

Answer = tuple[int, object, dict]


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
    refused: set[str] = field(default_factory=set)  # path prefixes answered 403 for every token (a missing scope)
    server: ThreadingHTTPServer | None = None
    _next_id: int = 100

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def dialect(self) -> Dialect:
        return DIALECTS[self.provider]

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

    def handle(self, method: str, raw_path: str, headers: dict, body) -> Answer:
        parts = urlsplit(raw_path)
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        self.requests.append(Request(method, parts.path, query, headers, body))
        token = self.token_of(headers)
        if token not in self.tokens:
            return 401, {"message": self.dialect.unauthorized}, {}
        if any(parts.path.startswith(prefix) for prefix in self.refused):
            return 403, {"message": self.dialect.forbidden}, {}
        segments = [unquote(s) for s in parts.path.strip("/").split("/")]
        return self._route(method, segments, query, body, self.tokens[token], parts.path)

    def _route(self, method: str, seg: list[str], query: dict, body, scopes: set[str], path: str) -> Answer:
        dialect = self.dialect
        if len(seg) == 3 and (seg[0], seg[2]) == dialect.organization:
            return self._organization(seg[1], query, path)
        full_name, rest = self._repository_of(seg)
        if full_name is None:
            return 404, dialect.not_found, {}
        if rest[:1] == ["hooks"]:
            hook_id = rest[1] if len(rest) > 1 else None
            if len(rest) == 3 and rest[2] == dialect.deliveries:
                return self._deliveries(hook_id, query, scopes)
            return self._hook_request(method, full_name, hook_id, body, scopes, query, path)
        files = len(dialect.files)
        if tuple(rest[:files]) == dialect.files and len(rest) > files:
            return self._file(full_name, "/".join(rest[files:]))
        return 404, dialect.not_found, {}

    def _repository_of(self, seg: list[str]) -> tuple[str | None, list[str]]:
        """(owner/name, the path after the repository) of a repository's path in this host's API."""
        if seg[:1] != [self.dialect.repository]:
            return None, []
        if self.dialect.repository == "projects":  # one segment: the URL-encoded path, decoded above
            return (seg[1], seg[2:]) if len(seg) > 1 else (None, [])
        return (f"{seg[1]}/{seg[2]}", seg[3:]) if len(seg) > 2 else (None, [])

    def _organization(self, name: str, query: dict, path: str) -> Answer:
        if self.provider == "gitlab":  # a group, and with include_subgroups its subgroups' projects too
            subgroups = query.get("include_subgroups") == "true"
            found = any(r.full_name.startswith(name + "/") for r in self.repos.values())
            items = [
                self._repo_item(r)
                for r in self.repos.values()
                if r.full_name.rsplit("/", 1)[0] == name or (subgroups and r.full_name.startswith(name + "/"))
            ]
        else:
            items = [self._repo_item(r) for r in self.repos.values() if r.full_name.split("/")[0] == name]
            found = bool(items)
        if not found:
            return 404, self.dialect.organization_not_found, {}
        return self._page(items, query, path)

    def _page(self, items: list, query: dict, path: str) -> Answer:
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

    def _hook_request(self, method, full_name, hook_id, body, scopes, query, path) -> Answer:
        if full_name not in self.repos:
            return 404, self.dialect.not_found, {}
        if HOOK_SCOPE[self.provider] not in scopes:
            return 403, {"message": self.dialect.forbidden}, {}
        if hook_id is None:
            if method == "GET":
                return self._page([self._hook_item(h) for h in self.hooks.get(full_name, [])], query, path)
            if method == "POST":
                return 201, self._hook_item(self._new_hook(full_name, body)), {}
            return 405, {"message": "Method Not Allowed"}, {}
        hook = self._find_hook(full_name, hook_id)
        if hook is None:
            return 404, self.dialect.not_found, {}
        if method == "DELETE":
            self.hooks[full_name].remove(hook)
            return 204, None, {}
        if method in ("PATCH", "PUT"):
            self._update_hook(hook, body)
        return 200, self._hook_item(hook), {}

    def _hook_item(self, hook: dict) -> dict:
        """A hook as the host shows it: never its secret."""
        dialect = self.dialect
        if dialect.flat_hooks:
            return {k: v for k, v in hook.items() if k != dialect.secret}
        config = {k: v for k, v in hook["config"].items() if k != dialect.secret}
        if dialect.masked_secret and dialect.secret in hook["config"]:
            config[dialect.secret] = dialect.masked_secret
        return {**hook, "active": hook.get("active", True), "config": config}

    def _update_hook(self, hook: dict, changes: dict) -> None:
        if self.dialect.flat_hooks:
            hook.update(changes)
            return
        hook.update({k: v for k, v in changes.items() if k != "config"})
        hook["config"] = {**hook["config"], **changes.get("config", {})}

    def _deliveries(self, hook_id: str, query: dict, scopes: set[str]) -> Answer:
        if self.provider == "gitlab" and not self.events_api:
            return 404, self.dialect.not_found, {}
        if HOOK_SCOPE[self.provider] not in scopes:
            return 403, {"message": self.dialect.forbidden}, {}
        return 200, self.deliveries.get(int(hook_id), [])[: int(query.get("per_page", 30))], {}

    def _file(self, full_name: str, wanted: str) -> Answer:
        repo = self.repos.get(full_name)
        if repo is None or wanted not in repo.files:
            return 404, self.dialect.file_not_found, {}
        if self.provider == "gitlab":
            return 200, {"file_name": wanted.rsplit("/", 1)[-1], "file_path": wanted}, {}
        return 200, {"type": "file", "path": wanted, "name": wanted.rsplit("/", 1)[-1]}, {}

    def _repo_item(self, repo: FakeRepo) -> dict:
        """A repository as the host's listing shows it."""
        host = f"{self.provider}.example.com"
        owner, name = repo.full_name.rsplit("/", 1)
        common = {"topics": repo.topics, "default_branch": repo.default_branch, "archived": repo.archived}
        if self.provider == "gitlab":
            return {
                **common,
                "id": abs(hash(repo.full_name)) % 10_000,
                "name": name,
                "path": name,
                "path_with_namespace": repo.full_name,
                "http_url_to_repo": repo.clone_url,
                "ssh_url_to_repo": f"git@{host}:{repo.full_name}.git",
                "web_url": f"https://{host}/{repo.full_name}",
            }
        return {
            **common,
            "name": name,
            "full_name": repo.full_name,
            "owner": {"login": owner},
            "clone_url": repo.clone_url,
            "ssh_url": f"git@{host}:{repo.full_name}.git",
            "html_url": f"https://{host}/{repo.full_name}",
        }


class JsonAnswers(BaseHTTPRequestHandler):
    """A fake API's request handler: `_answer(status, data)` writes a JSON answer; no access log."""

    def _answer(self, status: int, data: dict) -> None:
        raw = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args):  # keep test output quiet
        pass


def serve_json(
    handle: Callable[[str, str, dict, object], Answer],
    *,
    methods: tuple[str, ...] = ("GET", "POST", "PATCH", "PUT", "DELETE"),
) -> ThreadingHTTPServer:
    """A loopback JSON API in a thread: each request of one of `methods` is `handle(method, path, headers, body)`
    (body: the parsed JSON, None when empty), which answers (status, JSON or None, headers). Other methods get
    http.server's 501. Every fake Git host API is served this way (servers.py's recording fakes too)."""

    class Handler(BaseHTTPRequestHandler):
        def _serve(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            status, answer, headers = handle(self.command, self.path, dict(self.headers), body)
            data = b"" if answer is None else json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):  # keep test output quiet
            pass

    for method in methods:
        setattr(Handler, f"do_{method}", Handler._serve)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


def start_git_host(provider: str) -> FakeGitHost:
    fake = FakeGitHost(provider)
    fake.server = serve_json(fake.handle)
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
