"""The "DAG Repositories" page, mounted by the FAB provider at /pluginsv2/dagops/.

The views are thin on purpose: check who is asking (Airflow protects no plugin route, so every route
here does it itself, assets included), then render an HTML shell. The shell's script reads everything
from the REST API (airflow_dagops.api) with the same `_token` cookie, sending the CSRF token embedded
below on every state-changing request.
"""

from __future__ import annotations

from pathlib import Path

from flask import Response, redirect, render_template, request, send_from_directory, url_for
from flask_appbuilder import BaseView, expose
from werkzeug.security import safe_join
from werkzeug.wrappers import Response as BaseResponse

from airflow_dagops import __version__
from airflow_dagops.api import auth
from airflow_dagops.safety import NAME_PATTERN
from airflow_dagops.www.readme import package_readme

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
API_PATH = "/dagops/api/v1"  # the API blueprint's url_prefix, inside the same Flask app
PLUGINS_MOUNT = "/pluginsv2"  # where Airflow's api-server mounts the Flask app of plugins

# The page loads nothing but its own files and talks to nothing but its own origin.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'self'",  # shown in an iframe of the Airflow UI, on the same origin
    )
)


class DagRepositoriesView(BaseView):
    """List of repositories (`/`), one repository (`/repositories/<name>`) and the report of a pull-request
    check (`/checks/<id>`)."""

    route_base = "/dagops"
    default_view = "index"
    # BaseView resolves relative folders against flask_appbuilder's package, not ours.
    template_folder = str(HERE / "templates")

    @expose("/")
    def index(self):
        return _page("dagops/index.html", page="list")

    @expose("/repositories/<name>")
    def repository(self, name: str):
        # A name that cannot be registered cannot exist; a valid unknown one gets the shell, which shows
        # the API's "not found" answer (one source of truth for what exists).
        return _page("dagops/detail.html", page="detail", repository=name, valid=bool(NAME_PATTERN.match(name)))

    @expose("/checks/<int:check_id>")
    def check(self, check_id: int):
        # The report of a pull-request check: where the Git host's commit status "Details" link points.
        return _page("dagops/check.html", page="check", check_id=check_id)

    @expose("/marketplace")
    def marketplace(self):
        market_url = url_for("DagRepositoriesView.marketplace")
        return _page("dagops/marketplace.html", page="marketplace", market_url=market_url)

    @expose("/marketplace/<name>")
    def marketplace_package(self, name: str):
        # The README is rendered here, safely (www/readme.py), and only once the request is authorized:
        # the template calls `readme` lazily. Everything else on the page comes from the API.
        return _page(
            "dagops/marketplace_package.html",
            page="package",
            package=name,
            market_url=url_for("DagRepositoriesView.marketplace"),
            readme=lambda: package_readme(name),
        )

    @expose("/assets/<path:filename>")
    def asset(self, filename: str):
        principal = auth.current_principal()
        if principal is None:  # any signed-in user: the "access denied" page is styled by these too
            return _plain(401, "Sign in to Airflow first.")
        path = safe_join(str(STATIC_DIR), filename)
        if path is None or not Path(path).is_file():
            return _plain(404, "No such asset.")
        response = send_from_directory(STATIC_DIR, filename, max_age=3600)
        response.headers["Cache-Control"] = "private, max-age=3600"  # behind authentication: no shared caches
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def _page(template: str, *, page: str, valid: bool = True, **context) -> BaseResponse:
    principal = auth.current_principal()
    if principal is None:
        return redirect(auth.login_url(request.url))
    if not auth.is_allowed(principal, "read"):
        return _message(403, "Access denied", "Your Airflow role does not include access to DAG Repositories.")
    if not valid:
        return _message(
            404, "Repository not found", f"{context.get('repository')!r} is not a valid repository name.", back=True
        )
    html = render_template(
        template,
        page=page,
        user_name=principal.name,
        csrf_token=auth.csrf_token_for(principal),
        api_base=request.script_root + API_PATH,
        airflow_base=_airflow_base(),
        list_url=url_for("DagRepositoriesView.index"),
        can_write=auth.is_allowed(principal, "write"),
        can_delete=auth.is_allowed(principal, "delete"),
        # Registering a webhook or a discovered repository acts with a connection's token: the API asks for this too.
        can_use_connections=auth.is_allowed(principal, "write") and auth.is_allowed(principal, "connections"),
        asset=_asset_url,
        **context,
    )
    return _html(html, 200)


def _message(status: int, title: str, message: str, *, back: bool = False) -> Response:
    html = render_template(
        "dagops/message.html",
        status=status,
        title=title,
        message=message,
        back_url=url_for("DagRepositoriesView.index") if back else None,
        asset=_asset_url,
    )
    return _html(html, status)


def _html(html: str, status: int) -> Response:
    response = Response(html, status=status, mimetype="text/html")
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["Cache-Control"] = "no-store"  # the page embeds a per-session CSRF token
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def _plain(status: int, text: str) -> Response:
    return Response(text + "\n", status=status, mimetype="text/plain", headers={"Cache-Control": "no-store"})


def _asset_url(filename: str) -> str:
    return url_for("DagRepositoriesView.asset", filename=filename, v=__version__)


def _airflow_base() -> str:
    """The Airflow UI's root as the browser sees it ('' unless Airflow runs under a path prefix), for
    links to Airflow's own pages such as /dags/<dag_id>."""
    root = request.script_root
    return root[: -len(PLUGINS_MOUNT)] if root.endswith(PLUGINS_MOUNT) else ""
