"""REST route for the dagops-releases bundle's versions, added to the dagops API blueprint (its JWT auth and error
envelope apply). Airflow's UI links every DAG version to it (the bundle's `view_url_template`):

    GET /bundle/versions/{version}               -> 302 to the commit on its Git host, when the version changed
                                                    one namespace and its host is known
    GET /bundle/versions/{version}?format=json   -> {"version", "namespaces": [{namespace, repository, commit,
                                                    changed, url}]} (also the answer when no single link fits)
"""

from __future__ import annotations

from flask import jsonify, redirect, request

from airflow_dagops.api.blueprint import api_blueprint
from airflow_dagops.api.openapi import NAME_PARAM, json_content, operation, register
from airflow_dagops.bundle import view_url
from airflow_dagops.errors import NotFound
from airflow_dagops.store import bundle_versions


@api_blueprint.get("/bundle/versions/<name>")
def bundle_version(name: str):
    version = name  # `<name>`: a version id is a name too (hex digits), so the blueprint's checks apply as they are
    manifest = bundle_versions.load(version)
    if manifest is None:
        raise NotFound(f"the dagops-releases bundle has no version {version!r}")
    rows = view_url.links(manifest)
    changed = [row for row in rows if row["changed"]]
    if request.args.get("format") != "json" and len(changed) == 1 and changed[0]["url"]:
        return redirect(changed[0]["url"], code=302)
    return jsonify({"version": version, "namespaces": rows})


register(
    paths={
        "/bundle/versions/{name}": {
            "get": operation(
                "bundle_version",
                "A version of the dagops-releases DAG bundle (`{name}`: its id): a redirect to the one commit it "
                "changed on its Git host, or (`?format=json`, or when no single link fits) each namespace's commit",
                json_content({"type": "object"}, "The version's namespaces, commits and links"),
                params=[NAME_PARAM, {"name": "format", "in": "query", "required": False, "schema": {"enum": ["json"]}}],
            )
        }
    }
)
