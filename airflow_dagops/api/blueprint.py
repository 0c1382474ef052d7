"""REST routes. Each one parses input, calls one service, and renders the result (docs/api.md)."""

from __future__ import annotations

from flask import Blueprint, g, jsonify, request, url_for
from jsonschema import Draft202012Validator
from werkzeug.exceptions import HTTPException

from airflow_dagops import safety, settings
from airflow_dagops.airflow import bridge as airflow_bridge
from airflow_dagops.alerts import release_health
from airflow_dagops.api import auth
from airflow_dagops.api.errors import ApiError, answer_in_the_envelope, exempt_from_form_csrf, from_http_error
from airflow_dagops.api.openapi import body_schema, document
from airflow_dagops.health import service as health_service
from airflow_dagops.releases import rollback as rollbacks
from airflow_dagops.releases.rollback import live_dags
from airflow_dagops.repositories import info as repo_info
from airflow_dagops.repositories import options as repo_options
from airflow_dagops.repositories import registry
from airflow_dagops.repositories.registry import add_repository, remove_repository
from airflow_dagops.store.views import RepositoryInfo
from airflow_dagops.sync.runs import get_sync_run, list_sync_runs, reconcile_sync_runs, request_sync

PREFIX = "/dagops/api/v1"
MAX_BODY = 64 * 1024  # the body-limit middleware (api/body_limit.py) refuses larger bodies before they are read
MAX_PATH_PARAM = 255  # names, ids and shas are much shorter
MAX_QUERY_PARAM = 1024
# Body fields that are file contents, not text: any character but NUL (proposals' files[].content).
RAW_TEXT_KEYS = frozenset({"content"})
# Routes that answer without a login, or check a monitoring token or a login themselves (api/health.py).
PUBLIC_ENDPOINTS = {"dagops_api.health", "dagops_api.health_of_repository", "dagops_api.metrics"}
# Endpoints whose permission is not simply "read for GET, write for the rest".
ACTION_OF_ENDPOINT = {"dagops_api.delete_repository": "delete", "dagops_api.list_connections": "connections"}

api_blueprint = Blueprint("dagops_api", __name__, url_prefix=PREFIX)
exempt_from_form_csrf(api_blueprint)  # the page sends our own CSRF header instead (checked in `_authorize`)
answer_in_the_envelope(api_blueprint)


# -- cross-cutting: authentication, authorization, CSRF, errors -----------------------------------------
@api_blueprint.before_request
def _authorize():
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    principal = auth.current_principal()
    if principal is None:
        raise ApiError(401, "unauthenticated", "sign in to Airflow, or send Authorization: Bearer <token>")
    g.dagops_principal = principal  # who asks: the checks below and the routes read it
    writes = request.method not in ("GET", "HEAD")
    require_right(ACTION_OF_ENDPOINT.get(request.endpoint) or ("write" if writes else "read"))
    if writes and not auth.csrf_ok(principal):
        message = f"missing or wrong {auth.CSRF_HEADER} header for a cookie-authenticated request"
        raise ApiError(403, "csrf_failed", message)
    return None


@api_blueprint.before_request
def _check_parameters():
    """Path and query parameters of every route: no control characters, NULs or lone surrogates, and no
    overlong values (after authorization, so a stranger learns nothing). A path value of that kind names
    nothing that can exist: 404; a query value: 422."""
    for key, value in (request.view_args or {}).items():
        if isinstance(value, str) and (safety.has_control_characters(value) or len(value) > MAX_PATH_PARAM):
            raise ApiError(
                404, "not_found", f"no {key} can hold control characters or more than {MAX_PATH_PARAM} characters"
            )
    for key, value in request.args.items(multi=True):
        if safety.has_control_characters(key) or safety.has_control_characters(value) or len(value) > MAX_QUERY_PARAM:
            raise ApiError(
                422,
                "invalid_query",
                f"query parameter {key[:64]!r}: at most {MAX_QUERY_PARAM} characters, without control characters",
            )


@api_blueprint.app_errorhandler(404)
@api_blueprint.app_errorhandler(405)
def _routing_error(err: HTTPException):
    """Unknown API paths answer in the envelope too (blueprint handlers never see routing failures)."""
    if request.path.startswith(PREFIX + "/") or request.path == PREFIX:
        return from_http_error(err)
    return err


def actor_name() -> str:
    return g.dagops_principal.name


def require_right(action: str, message: str | None = None) -> None:
    """403 `forbidden` unless the caller's Airflow role allows `action` (api/auth.py's actions), with `message`
    saying why this request needs it (by default, which action it is)."""
    if not auth.is_allowed(g.dagops_principal, action):
        raise ApiError(
            403, "forbidden", message or f"your Airflow role does not allow this ({action}); see docs/api.md"
        )


def _require_option_rights(body: dict, *, repository: str | None = None) -> None:
    """Some options need more than the right to edit DAGs (`needs` in repositories/options.py):

    - naming a connection points its secret at the repository's URL: whoever sets it must be allowed to use
      Airflow's connections (else a DAG editor could send a token to their server);
    - an isolated environment installs whatever the repository declares, with uv, on the machine that syncs it:
      only an admin may turn it on (turning it off, or re-sending the value it has, needs nothing more)."""
    if repo_options.set_needing("connections", body):
        require_right("connections", "choosing a connection needs Airflow's connection read permission")
    admin_only = repo_options.set_needing("admin", body)
    if admin_only and repository is not None:
        current = repo_info.get_repository(repository)
        admin_only = [key for key in admin_only if body[key] != getattr(current, key)]
    if admin_only:
        require_right(
            "admin",
            f"through the API only Airflow admins may set {', '.join(admin_only)} (the dagops CLI and dagops.yaml "
            "may); nothing was changed",
        )


def require_connection_use(what: str) -> None:
    """Acting on a Git host with a connection's token beyond fetching (creating its webhook, registering a discovered
    repository with the source's connection) needs, on top of DAG edit, the right that choosing the connection needs:
    a DAG editor alone cannot spend an admin-scoped token."""
    require_right(
        "connections",
        f"{what} acts with an Airflow connection's token: it needs Airflow's connection read permission (as "
        "choosing a connection does); nothing was changed",
    )


def _require_connection_access_for_url(name: str, body: dict) -> None:
    """Pointing a repository that has a connection somewhere else is choosing where its credentials go: it needs
    the same right as choosing the connection (the credentials themselves stay with the host they were attached
    for until the connection is set again: git/credentials.py). Dropping the connection in the same request
    (`"conn_id": null`) needs no such right: then no credential follows the URL."""
    if "url" not in body or not isinstance(body["url"], str):
        return
    info = repo_info.get_repository(name)
    conn_after = body["conn_id"] if "conn_id" in body else info.conn_id
    if conn_after and safety.display_url(body["url"].strip()) != info.url:
        require_right(
            "connections",
            f"changing the URL of {name!r}, which uses connection {conn_after!r}, needs Airflow's connection read "
            "permission, as choosing the connection does; nothing was changed",
        )


def _require_file_url_rights(body: dict, *, repository: str | None = None) -> None:
    """A file:// URL (or a local path) publishes any git repository on the api-server's disk: through the API,
    only an Airflow admin may register one, unless the operator allows every writer ([dagops] api_file_urls).
    The CLI, run by someone with the server's shell, is not asked. Re-sending a repository's own URL unchanged
    (an update of other settings) chooses nothing new."""
    url = body.get("url")
    if not isinstance(url, str) or safety.url_scheme(url.strip()) != "file":
        return
    if settings.get_bool("api_file_urls") or auth.is_allowed(g.dagops_principal, "admin"):
        return
    if repository is not None and safety.display_url(url.strip()) == repo_info.get_repository(repository).url:
        return
    raise ApiError(
        403,
        "file_url_forbidden",
        "file:// URLs and local paths read repositories on the Airflow server's own disk: through the API only "
        "Airflow admins may register them (the dagops CLI may); an operator can allow every user with "
        "[dagops] api_file_urls = True",
    )


# -- input ---------------------------------------------------------------------------------------------------
def read_body(schema: str, *, max_body: int = MAX_BODY) -> dict:
    """The JSON body, size-limited and checked against the OpenAPI schema; an absent body is {}."""
    if request.content_length is not None and request.content_length > max_body:
        raise ApiError(413, "body_too_large", f"request bodies are limited to {max_body // 1024} KiB")
    raw = request.stream.read(max_body + 1)
    if len(raw) > max_body:
        raise ApiError(413, "body_too_large", f"request bodies are limited to {max_body // 1024} KiB")
    if not raw.strip():
        data = {}
    else:
        try:
            data = safety.loads_json(raw)  # UTF-8, at most MAX_JSON_DEPTH levels: never a RecursionError
        except safety.MalformedJson as err:
            raise ApiError(400, "malformed_json", str(err)) from err
    bad = safety.bad_text_field(data, raw_text_keys=RAW_TEXT_KEYS)
    if bad is not None:
        field, why = bad
        message = f"{field or 'the body'} {why}"
        raise ApiError(422, "invalid_body", message, {"errors": [{"field": field, "message": message}]})
    errors = sorted(Draft202012Validator(body_schema(schema)).iter_errors(data), key=lambda e: list(e.path))
    if errors:
        details = [{"field": _field_of(e), "message": e.message} for e in errors]
        raise ApiError(422, "invalid_body", "; ".join(d["message"] for d in details), {"errors": details})
    return data


def _field_of(error) -> str:
    """The offending key: the error's path, or for a missing/unknown key the name quoted in its message."""
    if error.path:
        return ".".join(str(part) for part in error.path)
    if error.validator in ("required", "additionalProperties") and "'" in error.message:
        return error.message.split("'")[1]
    return ""


def _paging() -> tuple[int, int]:
    limit, offset = _int_arg("limit", 50, 1, 200), _int_arg("offset", 0, 0, 10**9)
    return limit, offset


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ApiError(422, "invalid_query", f"{name} must be an integer from {low} to {high}")
    return value


def _bool_arg(name: str) -> bool:
    raw = (request.args.get(name) or "false").lower()
    if raw not in ("true", "false", "1", "0"):
        raise ApiError(422, "invalid_query", f"{name} must be true or false")
    return raw in ("true", "1")


def _page(items: list, total: int, limit: int, offset: int):
    return jsonify({"items": items, "total": total, "limit": limit, "offset": offset})


# -- output --------------------------------------------------------------------------------------------------
def _repository(info: RepositoryInfo, health: dict | None = None) -> dict:
    """A Repository (api/openapi.py): every repository option, then what dagops knows of its state. `health`:
    the repository's entry of a `health_service.health_of` read for a whole page, else it is read here."""
    live = None
    if info.live_release_id:
        live = {
            "release_id": info.live_release_id,
            "commit": info.live_commit,
            "short_commit": (info.live_commit or "")[:7],
            "message": info.live_message,
            "author": info.live_author,
            "committed_at": info.live_committed_at,
        }
    name = info.name
    return {
        "name": name,
        **{option.name: getattr(info, option.name) for option in repo_options.OPTIONS},
        "status": info.status,
        "status_message": info.status_message,
        "live": live,
        "pinned_release_id": info.pinned_release_id,
        "dag_count": info.dag_count,
        "last_sync": _sync_run(info.last_sync) if info.last_sync else None,
        "health": health or health_service.health_of([name]).get(name),
        "links": {
            "self": url_for("dagops_api.get_repository", name=name),
            "page": f"{request.script_root}/dagops/repositories/{name}",
            "syncs": url_for("dagops_api.list_syncs", name=name),
            "releases": url_for("dagops_api.list_releases", name=name),
            "dags": url_for("dagops_api.list_dags", name=name),
        },
    }


def _sync_run(run: dict) -> dict:
    links = {"self": url_for("dagops_api.get_sync", run_id=run["id"])}
    if run.get("airflow_run_id"):
        links["airflow_run"] = airflow_bridge.sync_run_url(run["airflow_run_id"])
    return {**run, "links": links}


def _release(release: dict) -> dict:
    return {**release, "links": {"self": url_for("dagops_api.get_release", release_id=release["id"])}}


# -- routes --------------------------------------------------------------------------------------------------
@api_blueprint.get("/openapi.json")
def openapi():
    return jsonify(document(request.script_root + PREFIX))


@api_blueprint.get("/repositories")
def list_repositories():
    limit, offset = _paging()
    reconcile_sync_runs(None, airflow_bridge.sync_run_states)
    repos = repo_info.list_repositories()
    page = repos[offset : offset + limit]
    health = health_service.health_of([r.name for r in page])
    return _page([_repository(r, health.get(r.name)) for r in page], len(repos), limit, offset)


@api_blueprint.post("/repositories")
def create_repository():
    body = read_body("RepositoryCreate")
    _require_option_rights(body)
    _require_file_url_rights(body)
    info = add_repository(
        body.pop("name"), body.pop("url"), verify=body.pop("verify", True), **{k: v for k, v in body.items()}
    )
    return jsonify(_repository(info)), 201


@api_blueprint.get("/repositories/<name>")
def get_repository(name: str):
    reconcile_sync_runs(name, airflow_bridge.sync_run_states)
    return jsonify(_repository(repo_info.get_repository(name)))


@api_blueprint.patch("/repositories/<name>")
def update_repository(name: str):
    body = read_body("RepositoryUpdate")
    _require_option_rights(body, repository=name)
    _require_connection_access_for_url(name, body)
    _require_file_url_rights(body, repository=name)
    return jsonify(_repository(registry.update_repository(name, verify=body.pop("verify", True), **body)))


@api_blueprint.delete("/repositories/<name>")
def delete_repository(name: str):
    return jsonify({"message": remove_repository(name, keep_dags=_bool_arg("keep_dags"))})


@api_blueprint.post("/repositories/<name>/sync")
def sync_repository(name: str):
    body = read_body("SyncRequest")
    run = request_sync(name, actor=actor_name(), force=body.get("force", False))
    return jsonify(_sync_run(run)), 202


@api_blueprint.get("/repositories/<name>/syncs")
def list_syncs(name: str):
    limit, offset = _paging()
    reconcile_sync_runs(name, airflow_bridge.sync_run_states)
    runs, total = list_sync_runs(name, limit=limit, offset=offset)
    return _page([_sync_run(r) for r in runs], total, limit, offset)


@api_blueprint.get("/syncs/<int:run_id>")
def get_sync(run_id: int):
    return jsonify(_sync_run(get_sync_run(run_id)))


@api_blueprint.get("/repositories/<name>/releases")
def list_releases(name: str):
    limit, offset = _paging()
    releases, total = rollbacks.list_releases(name, limit=limit, offset=offset)
    runs = release_health.run_health_of_releases(name, [r["id"] for r in releases])  # DAG runs vs the previous
    return _page([_release({**r, "run_health": runs.get(r["id"])}) for r in releases], total, limit, offset)


@api_blueprint.get("/releases/<int:release_id>")
def get_release(release_id: int):
    return jsonify(_release(rollbacks.get_release(release_id)))


@api_blueprint.post("/repositories/<name>/rollback")
def rollback(name: str):
    body = read_body("RollbackRequest")
    info = rollbacks.rollback(name, body.get("release"), actor=actor_name(), pin=body.get("pin", False))
    return jsonify(_repository(info))


@api_blueprint.post("/repositories/<name>/pin")
def pin(name: str):
    body = read_body("PinRequest")
    return jsonify(_repository(rollbacks.pin(name, body.get("release"), actor=actor_name())))


@api_blueprint.post("/repositories/<name>/unpin")
def unpin(name: str):
    read_body("Empty")
    return jsonify(_repository(rollbacks.unpin(name, actor=actor_name())))


@api_blueprint.get("/repositories/<name>/dags")
def list_dags(name: str):
    namespace, dags = live_dags(name)
    errors_by_file: dict[str, list[dict]] = {}
    for entry in airflow_bridge.import_errors(namespace):
        errors_by_file.setdefault(entry.filename, []).append(
            {
                "filename": entry.filename,
                "stack_trace": entry.stack_trace,
                "timestamp": entry.timestamp.isoformat() if entry.timestamp else None,
            }
        )
    items = [
        {
            **dag,
            "airflow_url": airflow_bridge.dag_url(dag["dag_id"]),
            "import_errors": errors_by_file.get(dag["file"], []),
        }
        for dag in dags
    ]
    # Files Airflow failed to import hold no DAG Airflow knows of; list their errors too.
    all_errors = [error for errors in errors_by_file.values() for error in errors]
    return jsonify({"items": items, "total": len(items), "import_errors": all_errors})


@api_blueprint.get("/connections")
def list_connections():
    items = airflow_bridge.git_connections()
    return jsonify({"items": items, "total": len(items)})
