"""The Airflow plugin entry point: the REST API blueprint, the "DAG Repositories" page and the MCP server.

Airflow 3 serves both from the FAB provider's Flask app mounted at /pluginsv2; the `external_views`
entry puts the page in the Airflow UI's Admin menu, shown inside the UI (docs/api.md). A root ASGI
middleware of the api-server refuses oversized bodies to our routes before the WSGI bridge buffers them
(api/body_limit.py).
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

# Route modules add routes to api_blueprint when imported (credentials, versions, and webhooks' GET /checks/{id}):
# they must be imported before any app registers the blueprint, which importing them here ensures.
import airflow_dagops.api.alerts  # noqa: F401
import airflow_dagops.api.bundle  # noqa: F401
import airflow_dagops.api.credentials  # noqa: F401
import airflow_dagops.api.discovery  # noqa: F401
import airflow_dagops.api.events  # noqa: F401
import airflow_dagops.api.experiments  # noqa: F401
import airflow_dagops.api.health  # noqa: F401
import airflow_dagops.api.marketplace  # noqa: F401
import airflow_dagops.api.promotion  # noqa: F401
import airflow_dagops.api.proposals  # noqa: F401
import airflow_dagops.api.versions  # noqa: F401
import airflow_dagops.api.webhook_registration  # noqa: F401
from airflow_dagops.api.blueprint import api_blueprint
from airflow_dagops.api.body_limit import BodyLimitMiddleware
from airflow_dagops.api.webhooks import webhook_blueprint
from airflow_dagops.mcp.http import URL_PREFIX as MCP_PREFIX
from airflow_dagops.mcp.http import mcp_app
from airflow_dagops.redaction import install_log_redaction
from airflow_dagops.www.views import DagRepositoriesView

install_log_redaction()  # the api-server's dagops log lines quote user text (git errors, findings)

PAGE_HREF = "/pluginsv2/dagops/"
MARKETPLACE_HREF = "/pluginsv2/dagops/marketplace"


class DagOpsPlugin(AirflowPlugin):
    name = "dagops"
    flask_blueprints = [api_blueprint, webhook_blueprint]
    # Only paths under /pluginsv2/dagops/ are looked at; the rest of the api-server passes through.
    fastapi_root_middlewares = [{"name": "dagops_body_limit", "middleware": BodyLimitMiddleware}]
    # The MCP server for assistants, streamable HTTP at /dagops/mcp (mcp/http.py, docs/assistants.md).
    fastapi_apps = [{"name": "dagops_mcp", "app": mcp_app(), "url_prefix": MCP_PREFIX}]
    # No "name": a named appbuilder view would add a second, generic nav entry.
    appbuilder_views = [{"view": DagRepositoriesView()}]
    external_views = [
        {"name": "DAG Repositories", "href": PAGE_HREF, "url_route": "dag-repositories", "category": "admin"},
        {"name": "Marketplace", "href": MARKETPLACE_HREF, "url_route": "marketplace", "category": "admin"},
    ]
