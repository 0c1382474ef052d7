"""REST routes for the DAG marketplace, added to the dagops API blueprint (its JWT auth, CSRF check and error
envelope apply). Each route parses input, calls one airflow_dagops.marketplace use case and renders its answer
(docs/marketplace.md explains catalogs, packages and badges; docs/api.md lists the routes):

    GET    /marketplace/search?q=&limit=            ranked packages (an empty q lists every package)
    GET    /marketplace/packages/{name}             one package: metadata, versions, README text, reviews
    GET    /marketplace/packages/{name}/install-check?version=&namespace=
                                                    what an install would do: version, namespace, what is missing
    POST   /marketplace/packages/{name}/install     {version?, namespace?, force?} -> 202: registered + dagops_sync
                                                    run; 409 requirements_missing (nothing installed) unless force
    DELETE /marketplace/packages/{name}/install     uninstall (Airflow's DAG delete permission)
    GET    /marketplace/packages/{name}/dags        the installed package's DAGs, each paused or not in Airflow
    POST   /marketplace/packages/{name}/unpause     unpause its paused DAGs (Airflow's DAG edit permission)
    POST   /marketplace/packages/{name}/ratings     {stars: 1..5}  (one rating per user; again replaces it)
    POST   /marketplace/packages/{name}/reviews     {text: 1..2000 characters of plain text}
    GET    /marketplace/installed                   installed packages
    GET    /marketplace/catalogs                    configured catalogs

Install registers the package as a pinned repository without git work (`install(..., sync=False)`), then asks
Airflow for a `dagops_sync` run of it like "Sync Now" does: the fetch and the full validation pipeline run in
Airflow, never in the request. If Airflow cannot take that run, the install is undone so that nothing is left
half-installed, and the answer is the 503 saying why. Ratings and reviews are authored by the signed-in user.
"""

from __future__ import annotations

import logging

from flask import jsonify, request, url_for

from airflow_dagops.airflow import bridge as airflow_bridge
from airflow_dagops.api.blueprint import actor_name, api_blueprint, read_body, require_right
from airflow_dagops.api.errors import ApiError
from airflow_dagops.api.openapi import (
    AIRFLOW_RUN_ERRORS,
    NAME,
    NULLABLE_STRING,
    json_content,
    operation,
    register,
    write_operation,
)
from airflow_dagops.api.openapi import schema_ref as ref
from airflow_dagops.marketplace import catalogs, installs, listing, ratings
from airflow_dagops.sync.runs import request_sync

log = logging.getLogger(__name__)

BASE = "/marketplace"
MAX_QUERY = 200
DEFAULT_LIMIT, MAX_LIMIT = 20, 100
MAX_REVIEW = ratings.REVIEW_MAX  # the schema refuses longer reviews before the service would
# What a bad value of a known field must be, said in words: jsonschema's own messages quote the value, which
# for a 10 000-character review is no help ("'xxxx…' is too long").
FIELD_RULES = {
    "stars": "stars must be a whole number from 1 to 5",
    "text": f"text must be plain text of 1 to {MAX_REVIEW} characters",
    "version": "version must be a version string such as 1.2.0",
    "namespace": "namespace must be 1-63 lower-case letters, digits, '-' or '_', starting with a letter or digit",
}


# -- routes -------------------------------------------------------------------------------------------------------
@api_blueprint.get(f"{BASE}/search")
def marketplace_search():
    query, limit = _query_arg(), _limit_arg()
    sort = request.args.get("sort") or "relevance"
    if sort not in listing.SORTS:
        raise ApiError(422, "invalid_query", f"sort: one of {', '.join(listing.SORTS)}")
    order = request.args.get("order") or None
    if order is not None and (order not in listing.ORDERS or sort == "relevance"):
        orders = ", ".join(listing.ORDERS)
        raise ApiError(422, "invalid_query", f"order: one of {orders}, with a sort other than relevance")
    items = [_with_links(result) for result in listing.search(query, limit=limit, sort=sort, order=order)]
    return jsonify({"items": items, "total": len(items), "query": query, "limit": limit, "sort": sort, "order": order})


@api_blueprint.get(f"{BASE}/packages/<name>")
def marketplace_package(name: str):
    return jsonify(_with_links(listing.package_info(name)))


@api_blueprint.get(f"{BASE}/packages/<name>/install-check")
def marketplace_install_check(name: str):
    version, namespace = _text_arg("version", 64), _text_arg("namespace", 63)
    return jsonify(installs.install_check(name, version=version, namespace=namespace))


@api_blueprint.post(f"{BASE}/packages/<name>/install")
def marketplace_install(name: str):
    body = _read_body("MarketplaceInstall")
    installed = installs.install(
        name,
        version=body.get("version"),
        namespace=body.get("namespace"),
        actor=actor_name(),
        sync=False,
        force=body.get("force", False),
    )
    sync = _request_first_sync(name, installed["repository"])
    accepted = {
        **installed,
        "sync": sync,
        "airflow_run_id": sync["airflow_run_id"],
        "links": {
            "package": url_for("dagops_api.marketplace_package", name=name),
            "repository": url_for("dagops_api.get_repository", name=installed["repository"]),
            "repository_page": f"{request.script_root}/dagops/repositories/{installed['repository']}",
            "sync": url_for("dagops_api.get_sync", run_id=sync["id"]),
            "airflow_run": airflow_bridge.sync_run_url(sync["airflow_run_id"]),
        },
    }
    return jsonify(accepted), 202


@api_blueprint.delete(f"{BASE}/packages/<name>/install")
def marketplace_uninstall(name: str):
    require_right("delete")  # it removes a repository and its DAGs: the permission of DELETE /repositories/{name}
    return jsonify({"message": installs.uninstall(name, actor=actor_name())})


@api_blueprint.get(f"{BASE}/packages/<name>/dags")
def marketplace_package_dags(name: str):
    found = installs.installed_dags(name, paused_of=airflow_bridge.dags_paused)
    items = [{**dag, "airflow_url": airflow_bridge.dag_url(dag["dag_id"])} for dag in found["items"]]
    return jsonify({**found, "items": items, "total": len(items)})


@api_blueprint.post(f"{BASE}/packages/<name>/unpause")
def marketplace_unpause(name: str):
    read_body("Empty")
    return jsonify(installs.unpause(name, actor=actor_name(), unpause_dags=airflow_bridge.unpause_dags))


@api_blueprint.post(f"{BASE}/packages/<name>/ratings")
def marketplace_rate(name: str):
    body = _read_body("MarketplaceRating")
    return jsonify(ratings.rate(name, body["stars"], author=actor_name())), 201


@api_blueprint.post(f"{BASE}/packages/<name>/reviews")
def marketplace_review(name: str):
    body = _read_body("MarketplaceReview")
    return jsonify(ratings.review(name, body["text"], author=actor_name())), 201


@api_blueprint.get(f"{BASE}/installed")
def marketplace_installed():
    items = [_with_links(item) for item in installs.list_installed()]
    return jsonify({"items": items, "total": len(items)})


@api_blueprint.get(f"{BASE}/catalogs")
def marketplace_catalogs():
    items = catalogs.list_catalogs()
    return jsonify({"items": items, "total": len(items)})


# -- helpers ------------------------------------------------------------------------------------------------------
def _request_first_sync(package: str, repository: str) -> dict:
    """The install's dagops_sync run; if Airflow refuses it, undo the install (nothing is left half-done)."""
    try:
        run = request_sync(repository, actor=actor_name())
    except Exception:
        try:
            installs.uninstall(package, actor=actor_name())
        except Exception:  # the first error is the one to answer; this one only goes to the log
            log.exception("marketplace: could not undo the install of %s after Airflow refused its sync", package)
        raise
    links = {"self": url_for("dagops_api.get_sync", run_id=run["id"])}
    if run.get("airflow_run_id"):
        links["airflow_run"] = airflow_bridge.sync_run_url(run["airflow_run_id"])
    return {**run, "links": links}


def _read_body(schema: str) -> dict:
    """`read_body`, with each known field's rule in words instead of jsonschema's message."""
    try:
        return read_body(schema)
    except ApiError as err:
        if err.code != "invalid_body":
            raise
        errors = [
            {**error, "message": FIELD_RULES.get(error["field"], error["message"])}
            for error in err.details.get("errors", [])
        ]
        message = "; ".join(dict.fromkeys(error["message"] for error in errors)) or err.message
        raise ApiError(422, "invalid_body", message, {"errors": errors}) from None


def _with_links(item: dict) -> dict:
    name = item.get("package") or item["name"]
    links = {
        "self": url_for("dagops_api.marketplace_package", name=name),
        "page": f"{request.script_root}/dagops/marketplace/{name}",
    }
    return {**item, "links": links}


def _text_arg(name: str, limit: int) -> str | None:
    value = (request.args.get(name) or "").strip()
    if len(value) > limit:
        raise ApiError(422, "invalid_query", f"{name} is limited to {limit} characters")
    return value or None


def _query_arg() -> str:
    query = (request.args.get("q") or "").strip()
    if len(query) > MAX_QUERY:
        raise ApiError(422, "invalid_query", f"q is limited to {MAX_QUERY} characters")
    return query


def _limit_arg() -> int:
    raw = request.args.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise ApiError(422, "invalid_query", f"limit must be an integer from 1 to {MAX_LIMIT}")
    return int(raw)


# -- OpenAPI ------------------------------------------------------------------------------------------------------
PACKAGE_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 100}}
NULLABLE_NUMBER = {"type": ["number", "null"]}
BADGE = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": ["passing", "failing", "unknown"]},
        "checks": {"type": "object", "description": "per validation step: passed or failed"},
        "checked_at": {"type": ["string", "null"], "format": "date-time"},
    },
}
SEARCH_FIELDS = {
    "name": {"type": "string"},
    "version": {"type": "string"},
    "summary": NULLABLE_STRING,
    "tags": {"type": "array", "items": {"type": "string"}},
    "catalog": {"type": "string"},
    "rating": {**NULLABLE_NUMBER, "description": "average stars, null when unrated"},
    "ratings_count": {"type": "integer"},
    "installs": {"type": "integer"},
    "downloads": {"type": "object", "description": "{installs, updates, uninstalls, downloads} of every version"},
    "badge": BADGE,
    "installed_namespace": {**NULLABLE_STRING, "description": "where it is installed here, if it is"},
    "links": {"type": "object"},
}
SCHEMAS = {
    "MarketplaceInstall": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "version": {"type": "string", "minLength": 1, "maxLength": 64, "description": "default: the newest"},
            "namespace": {**NAME, "description": "default: the package name"},
            "force": {
                "type": "boolean",
                "description": "install even though providers or packages it needs are missing here",
            },
        },
    },
    "MarketplaceInstallCheck": {
        "type": "object",
        "required": ["package", "version", "namespace", "missing_providers", "missing_packages", "installable"],
        "properties": {
            "package": {"type": "string"},
            "version": {"type": "string"},
            "namespace": {"type": "string", "description": "the namespace asked for (checked), or the default"},
            "default_namespace": {"type": "string"},
            "providers": {"type": "array", "items": {"type": "string"}},
            "packages": {"type": "array", "items": {"type": "string"}},
            "missing_providers": {"type": "array", "items": {"type": "string"}},
            "missing_packages": {"type": "array", "items": {"type": "string"}},
            "needs_force": {"type": "boolean", "description": "something is missing: install only with force"},
            "installable": {"type": "boolean", "description": "false when already installed or namespace taken"},
            "refusals": {"type": "array", "items": {"type": "string"}},
        },
    },
    "MarketplacePackageDags": {
        "type": "object",
        "properties": {
            "package": {"type": "string"},
            "repository": {"type": "string"},
            "namespace": {"type": "string"},
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "dag_id": {"type": "string"},
                        "file": NULLABLE_STRING,
                        "paused": {
                            "type": ["boolean", "null"],
                            "description": "null until Airflow has parsed the DAG",
                        },
                        "airflow_url": {"type": "string"},
                    },
                },
            },
            "paused": {"type": "array", "items": {"type": "string"}, "description": "dag_ids paused in Airflow"},
            "total": {"type": "integer"},
        },
    },
    "MarketplaceUnpaused": {
        "type": "object",
        "properties": {
            "package": {"type": "string"},
            "unpaused": {"type": "array", "items": {"type": "string"}},
            "message": {"type": "string"},
        },
    },
    "MarketplaceRating": {
        "type": "object",
        "additionalProperties": False,
        "required": ["stars"],
        "properties": {"stars": {"type": "integer", "minimum": 1, "maximum": 5}},
    },
    "MarketplaceReview": {
        "type": "object",
        "additionalProperties": False,
        "required": ["text"],
        "properties": {
            "text": {"type": "string", "minLength": 1, "maxLength": MAX_REVIEW, "description": "plain text"}
        },
    },
    "MarketplaceResult": {"type": "object", "properties": SEARCH_FIELDS},
    "MarketplacePackage": {
        "type": "object",
        "properties": {
            **SEARCH_FIELDS,
            "description": NULLABLE_STRING,
            "author": NULLABLE_STRING,
            "license": NULLABLE_STRING,
            "versions": {
                "type": "array",
                "description": "newest first; only released (tagged) versions can be installed",
                "items": {
                    "type": "object",
                    "properties": {
                        "version": {"type": "string"},
                        "tag": NULLABLE_STRING,
                        "commit": {"type": "string"},
                        "released": {"type": "boolean"},
                    },
                },
            },
            "missing_providers": {"type": "array", "items": {"type": "string"}},
            "rating_histogram": {"type": "object", "description": 'stars ("1".."5") -> how many ratings'},
            "downloads_by_version": {"type": "array", "description": "per version, newest first: the downloads"},
            "providers": {"type": "array", "items": {"type": "string"}},
            "packages": {"type": "array", "items": {"type": "string"}},
            "dag_files": {"type": "array", "items": {"type": "string"}},
            "readme": {**NULLABLE_STRING, "description": "raw Markdown; the page renders it safely"},
            "example_config": NULLABLE_STRING,
            "other_catalogs": {"type": "array", "items": {"type": "object"}},
            "reviews": {"type": "array", "items": ref("MarketplaceReviewRecord")},
        },
    },
    "MarketplaceReviewRecord": {
        "type": "object",
        "properties": {
            "author": {"type": "string"},
            "text": {"type": "string", "description": "stored as written: escape it when showing it"},
            "created_at": {"type": "string", "format": "date-time"},
        },
    },
    "MarketplaceInstallAccepted": {
        "type": "object",
        "required": ["package", "repository", "namespace", "airflow_run_id"],
        "properties": {
            "package": {"type": "string"},
            "version": {"type": "string"},
            "repository": {"type": "string"},
            "namespace": {"type": "string"},
            "status": {"type": "string", "description": "registered: the dagops_sync run validates and publishes it"},
            "message": {"type": "string"},
            "sync": ref("SyncRun"),
            "airflow_run_id": {"type": "string"},
            "links": {"type": "object"},
        },
    },
}


def _items(schema: dict) -> dict:
    return {
        "type": "object",
        "properties": {"items": {"type": "array", "items": schema}, "total": {"type": "integer"}},
    }


_PACKAGE = [PACKAGE_NAME]
register(
    paths={
        "/marketplace/search": {
            "get": operation(
                "marketplace_search",
                "Ranked search over package names, tags, summaries and descriptions (typo tolerant)",
                json_content(_items(ref("MarketplaceResult"))),
                params=[
                    {"name": "q", "in": "query", "schema": {"type": "string", "maxLength": MAX_QUERY}},
                    {"name": "sort", "in": "query", "schema": {"enum": list(listing.SORTS), "default": "relevance"}},
                    {
                        "name": "order",
                        "in": "query",
                        "description": "turn the sort around; default: highest counts and ratings first, names A to Z",
                        "schema": {"enum": list(listing.ORDERS)},
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
                    },
                ],
            )
        },
        "/marketplace/packages/{name}": {
            "get": operation(
                "marketplace_package",
                "One package: versions, providers, README, ratings and reviews",
                json_content(ref("MarketplacePackage")),
                params=_PACKAGE,
            )
        },
        "/marketplace/packages/{name}/install": {
            "post": write_operation(
                "marketplace_install",
                "Install a package as a pinned repository and trigger its dagops_sync run (validated there)",
                json_content(ref("MarketplaceInstallAccepted"), "Accepted: registered; the Airflow run was created"),
                errors=AIRFLOW_RUN_ERRORS,
                params=_PACKAGE,
                body="MarketplaceInstall",
                status="202",
            ),
            "delete": write_operation(
                "marketplace_uninstall",
                "Uninstall a package: its repository and DAGs are removed",
                json_content(ref("Message")),
                params=_PACKAGE,
            ),
        },
        "/marketplace/packages/{name}/install-check": {
            "get": operation(
                "marketplace_install_check",
                "What installing would do, changing nothing: version, namespace, missing providers and packages",
                json_content(ref("MarketplaceInstallCheck")),
                params=[
                    *_PACKAGE,
                    {"name": "version", "in": "query", "schema": {"type": "string", "maxLength": 64}},
                    {"name": "namespace", "in": "query", "schema": {"type": "string", "maxLength": 63}},
                ],
            )
        },
        "/marketplace/packages/{name}/dags": {
            "get": operation(
                "marketplace_package_dags",
                "The installed package's live DAGs, each paused or not in Airflow",
                json_content(ref("MarketplacePackageDags")),
                params=_PACKAGE,
            )
        },
        "/marketplace/packages/{name}/unpause": {
            "post": write_operation(
                "marketplace_unpause",
                "Unpause the installed package's paused DAGs (Airflow creates new DAGs paused)",
                json_content(ref("MarketplaceUnpaused")),
                params=_PACKAGE,
                body="Empty",
            )
        },
        "/marketplace/packages/{name}/ratings": {
            "post": write_operation(
                "marketplace_rate",
                "Rate a package 1 to 5 stars as the signed-in user (rating again replaces it)",
                json_content({"type": "object"}, "Recorded"),
                params=_PACKAGE,
                body="MarketplaceRating",
                status="201",
            )
        },
        "/marketplace/packages/{name}/reviews": {
            "post": write_operation(
                "marketplace_review",
                "Review a package in plain text as the signed-in user",
                json_content(ref("MarketplaceReviewRecord"), "Recorded"),
                params=_PACKAGE,
                body="MarketplaceReview",
                status="201",
            )
        },
        "/marketplace/installed": {
            "get": operation("marketplace_installed", "Installed packages", json_content(_items({"type": "object"})))
        },
        "/marketplace/catalogs": {
            "get": operation(
                "marketplace_catalogs", "Configured catalogs, by priority", json_content(_items({"type": "object"}))
            )
        },
    },
    schemas=SCHEMAS,
)
