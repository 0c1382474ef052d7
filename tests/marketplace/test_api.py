"""The marketplace REST routes through Flask's test client, for SimpleAuthManager and FabAuthManager, on each
state DB (the `web` fixture of tests/helpers/web.py).

The catalog is a real git repository made from package folders by `catalog.repo_from_folder`, registered and
refreshed through the service. An install creates a real `dagops_sync` run in the session's Airflow DB; the
sync task's own work is then done here by calling what the task calls (`sync_repository` with the
Airflow run id), as tests/api/test_api.py does for "Sync Now".
"""

from __future__ import annotations

import textwrap

import pytest

from airflow_dagops.api import auth
from airflow_dagops.api.blueprint import PREFIX
from airflow_dagops.marketplace import catalogs
from airflow_dagops.marketplace.catalog_reader import repo_from_folder
from airflow_dagops.repositories.info import list_repositories
from airflow_dagops.sync.runs import get_sync_run
from airflow_dagops.sync.sync import sync_repository
from tests.helpers.repos import dag_source, write_file
from tests.helpers.web import airflow_runs_of_sync_dag

HTML_REVIEW = '<script>alert("x")</script><img src=x onerror="alert(1)"> works & "quotes"'


def _package(
    root, name: str, *, version: str, summary: str, tags: list[str], dag_ids: list[str], providers: list[str] = ()
) -> None:
    dags = "".join(f"\n  - dags/{dag_id}.py" for dag_id in dag_ids)
    needs = "".join(f"\n  - {provider}" for provider in providers)
    write_file(
        root,
        f"{name}/dagops-package.yaml",
        textwrap.dedent(
            f"""\
            name: {name}
            version: "{version}"
            summary: {summary}
            description: A package for the REST tests.
            tags: [{", ".join(tags)}]
            author: Data Platform
            license: Apache-2.0
            readme: README.md
            dags:"""
        )
        + dags
        + ("\nproviders:" + needs if needs else "")
        + "\n",
    )
    write_file(root, f"{name}/README.md", f"# {name}\n\n<script>alert(1)</script> and [a link](https://example.com)\n")
    for dag_id in dag_ids:
        write_file(root, f"{name}/dags/{dag_id}.py", dag_source(dag_id))


@pytest.fixture
def catalog(web, tmp_path, monkeypatch):
    """Catalog `community` with `pg_backup` (two DAGs) and `slack_alerts`, refreshed into the index."""
    # The structure step is what these tests need; the full pipeline is M1's tests' subject (and slower).
    monkeypatch.setenv("AIRFLOW__DAGOPS__VALIDATION_SKIP", "security,compat,imports,policy")
    source = tmp_path / "catalog-src"
    _package(
        source,
        "pg_backup",
        version="1.2.0",
        summary="Back up Postgres to S3",
        tags=["postgres", "backup"],
        dag_ids=["mp_pg_backup", "mp_pg_restore_check"],
    )
    _package(
        source,
        "slack_alerts",
        version="0.3.0",
        summary="Failure notifications to Slack",
        tags=["slack", "notifications"],
        dag_ids=["mp_slack_alerts"],
    )
    _package(
        source,
        "redshift_unload",
        version="2.0.0",
        summary="Unload Redshift tables",
        tags=["aws"],
        dag_ids=["mp_redshift_unload"],
        providers=["apache-airflow-providers-amazon"],
    )
    repo_from_folder(source, tmp_path / "catalog-repo")
    catalogs.add_catalog("community", f"file://{tmp_path / 'catalog-repo'}")
    catalogs.refresh_catalogs()
    return tmp_path / "catalog-repo"


def _error(response) -> dict:
    body = response.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, body
    return body["error"]


def _install(web, name="pg_backup", *, as_="admin", **body):
    response = web.api("POST", f"marketplace/packages/{name}/install", json=body, as_=as_)
    assert response.status_code == 202, response.get_json()
    return response.get_json()


def _run_the_sync_task(accepted: dict) -> dict:
    """What the dagops_sync task does with the run the install created."""
    sync_repository(accepted["repository"], trigger="manual", airflow_run_id=accepted["airflow_run_id"])
    return get_sync_run(accepted["sync"]["id"])


# -- reading ------------------------------------------------------------------------------------------------------
def test_search_ranks_and_links_and_an_empty_query_lists_everything(web, catalog):
    response = web.api("GET", "marketplace/search?q=postgres backup", as_="reader")
    assert response.status_code == 200, response.get_json()
    found = response.get_json()
    assert found["query"] == "postgres backup" and found["items"][0]["name"] == "pg_backup"
    first = found["items"][0]
    assert first["version"] == "1.2.0" and first["catalog"] == "community"
    assert first["badge"]["status"] in ("passing", "failing", "unknown")
    assert (first["rating"], first["ratings_count"], first["installs"]) == (None, 0, 0)
    assert first["links"]["self"] == f"{PREFIX}/marketplace/packages/pg_backup"
    assert first["links"]["page"].endswith("/dagops/marketplace/pg_backup")

    typo = web.api("GET", "marketplace/search?q=notifcations").get_json()
    assert [item["name"] for item in typo["items"]][:1] == ["slack_alerts"]
    everything = web.api("GET", "marketplace/search").get_json()
    assert {item["name"] for item in everything["items"]} == {"pg_backup", "slack_alerts", "redshift_unload"}


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=ten", "q=" + "x" * 201])
def test_bad_search_arguments_are_422(web, catalog, query):
    response = web.api("GET", f"marketplace/search?{query}")
    assert response.status_code == 422 and _error(response)["code"] == "invalid_query"


def test_package_info_and_unknown_package_404(web, catalog):
    info = web.api("GET", "marketplace/packages/pg_backup", as_="reader").get_json()
    assert info["name"] == "pg_backup" and [v["version"] for v in info["versions"]] == ["1.2.0"]
    assert info["readme"].startswith("# pg_backup")  # raw Markdown: the page renders it (test_page below)
    assert info["reviews"] == [] and info["installed_namespace"] is None
    for method, path in (
        ("GET", "marketplace/packages/nope"),
        ("POST", "marketplace/packages/nope/install"),
        ("POST", "marketplace/packages/nope/ratings"),
        ("POST", "marketplace/packages/nope/reviews"),
    ):
        body = {"stars": 3} if path.endswith("ratings") else {"text": "hi"} if path.endswith("reviews") else {}
        response = web.api(method, path, json=body)
        assert response.status_code == 404, (path, response.get_json())
        assert _error(response)["code"] == "not_found"


def test_catalogs_are_listed(web, catalog):
    catalogs = web.api("GET", "marketplace/catalogs", as_="reader").get_json()
    assert catalogs["total"] == 1 and catalogs["items"][0]["name"] == "community"


# -- install ------------------------------------------------------------------------------------------------------
def test_install_registers_triggers_a_sync_run_and_the_run_makes_the_dags_live(web, catalog, dagops_env):
    runs_before = {run["run_id"] for run in airflow_runs_of_sync_dag()}
    accepted = _install(web, namespace="backups")
    assert accepted["package"] == "pg_backup" and accepted["namespace"] == "backups"
    assert accepted["status"] == "registered" and accepted["sync"]["status"] == "queued"
    assert accepted["links"]["airflow_run"].endswith(f"/dags/dagops_sync/runs/{accepted['airflow_run_id']}")
    new_runs = [run for run in airflow_runs_of_sync_dag() if run["run_id"] not in runs_before]
    assert [run["run_id"] for run in new_runs] == [accepted["airflow_run_id"]]
    assert new_runs[0]["conf"]["repository"] == accepted["repository"]
    assert new_runs[0]["conf"]["requested_by"] == "admin"
    # Nothing was fetched or validated in the request: nothing is live until the run does its work.
    assert not (dagops_env.dags_folder / "backups").exists()

    finished = _run_the_sync_task(accepted)
    assert finished["status"] == "success", finished
    live = sorted(path.name for path in (dagops_env.dags_folder / "backups" / "dags").iterdir())
    assert live == ["mp_pg_backup.py", "mp_pg_restore_check.py"]
    sync = web.api("GET", accepted["links"]["sync"].removeprefix(PREFIX)).get_json()
    assert sync["status"] == "success"

    info = web.api("GET", "marketplace/packages/pg_backup").get_json()
    assert info["installed_namespace"] == "backups" and info["installs"] == 1
    installed = web.api("GET", "marketplace/installed").get_json()
    assert [item["namespace"] for item in installed["items"]] == ["backups"]


def test_install_refuses_bad_bodies_with_the_field(web, catalog):
    for body, field in (({"namespace": "Bad NS"}, "namespace"), ({"version": 12}, "version"), ({"x": 1}, "x")):
        response = web.api("POST", "marketplace/packages/pg_backup/install", json=body)
        assert response.status_code == 422, body
        assert _error(response)["details"]["errors"][0]["field"] == field
    assert web.api("GET", "marketplace/installed").get_json()["total"] == 0


def test_a_refused_sync_run_undoes_the_install(web, catalog):
    """Airflow cannot take the run (its DAG is paused): 503, and the package is not left half-installed."""
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    with create_session() as session:
        session.get(DagModel, "dagops_sync").is_paused = True
    try:
        response = web.api("POST", "marketplace/packages/pg_backup/install", json={})
    finally:
        with create_session() as session:
            session.get(DagModel, "dagops_sync").is_paused = False
    assert response.status_code == 503 and _error(response)["code"] == "airflow_unavailable"
    assert web.api("GET", "marketplace/installed").get_json()["total"] == 0
    assert list_repositories() == []
    assert _install(web)["status"] == "registered"  # and a later install works


def test_missing_providers_refuse_the_install_with_409_unless_forced(web, catalog):
    check = web.api("GET", "marketplace/packages/redshift_unload/install-check?namespace=warehouse", as_="reader")
    assert check.status_code == 200, check.get_json()
    said = check.get_json()
    assert (said["version"], said["namespace"], said["default_namespace"]) == ("2.0.0", "warehouse", "redshift_unload")
    assert said["missing_providers"] == ["apache-airflow-providers-amazon"] and said["needs_force"] is True

    refused = web.api("POST", "marketplace/packages/redshift_unload/install", json={"namespace": "warehouse"})
    assert refused.status_code == 409
    error = _error(refused)
    assert error["code"] == "requirements_missing" and "apache-airflow-providers-amazon" in error["message"]
    assert error["details"] == {"missing_providers": ["apache-airflow-providers-amazon"], "missing_packages": []}
    assert web.api("GET", "marketplace/installed").get_json()["total"] == 0 and list_repositories() == []

    accepted = _install(web, "redshift_unload", namespace="warehouse", force=True)
    assert accepted["forced"] is True and accepted["namespace"] == "warehouse"
    assert accepted["missing_providers"] == ["apache-airflow-providers-amazon"]


def test_install_check_refuses_a_bad_namespace_and_names_a_taken_one(web, catalog):
    bad = web.api("GET", "marketplace/packages/pg_backup/install-check?namespace=Bad%20NS")
    assert bad.status_code == 422 and "namespace" in _error(bad)["message"]
    _install(web, "slack_alerts", namespace="backups")
    taken = web.api("GET", "marketplace/packages/pg_backup/install-check?namespace=backups").get_json()
    assert taken["installable"] is False and "taken by repository 'pkg-slack_alerts'" in taken["refusals"][0]
    assert web.api("GET", "marketplace/packages/pg_backup/install-check").get_json()["installable"] is True


def test_paused_dags_of_an_installed_package_are_listed_and_unpaused(web, catalog):
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    _run_the_sync_task(_install(web))
    with create_session() as session:  # what the dag-processor does with a new DAG: paused at creation
        bundle = session.get(DagModel, "dagops_sync").bundle_name
        session.add(DagModel(dag_id="mp_pg_backup", bundle_name=bundle, is_paused=True))
    try:
        dags = web.api("GET", "marketplace/packages/pg_backup/dags", as_="reader").get_json()
        assert {d["dag_id"]: d["paused"] for d in dags["items"]} == {"mp_pg_backup": True, "mp_pg_restore_check": None}
        assert dags["paused"] == ["mp_pg_backup"] and dags["items"][0]["airflow_url"].endswith("/dags/mp_pg_backup")
        assert web.api("POST", "marketplace/packages/pg_backup/unpause", json={}, as_="reader").status_code == 403
        unpaused = web.api("POST", "marketplace/packages/pg_backup/unpause", json={}, as_="editor")
        assert unpaused.status_code == 200, unpaused.get_json()
        assert unpaused.get_json()["unpaused"] == ["mp_pg_backup"]
        with create_session() as session:
            assert session.get(DagModel, "mp_pg_backup").is_paused is False
        again = web.api("GET", "marketplace/packages/pg_backup/dags").get_json()
        assert again["paused"] == [] and again["items"][0]["paused"] is False
    finally:
        with create_session() as session:
            session.delete(session.get(DagModel, "mp_pg_backup"))
    missing = web.api("GET", "marketplace/packages/slack_alerts/dags")
    assert missing.status_code == 404 and _error(missing)["code"] == "not_found"


def test_reader_cannot_install_and_uninstall_needs_delete(web, catalog):
    refused = web.api("POST", "marketplace/packages/pg_backup/install", json={}, as_="reader")
    assert refused.status_code == 403 and _error(refused)["code"] == "forbidden"
    accepted = _install(web, as_="editor")
    _run_the_sync_task(accepted)
    assert web.api("DELETE", "marketplace/packages/pg_backup/install", as_="reader").status_code == 403
    removed = web.api("DELETE", "marketplace/packages/pg_backup/install", as_="editor")
    assert removed.status_code == 200, removed.get_json()
    assert removed.get_json()["message"]
    assert web.api("GET", "marketplace/installed").get_json()["total"] == 0
    assert web.api("GET", "marketplace/packages/pg_backup").get_json()["installed_namespace"] is None


def test_the_page_session_needs_the_csrf_header(web, catalog):
    token = web.sign_in_with_cookie("admin")
    path = f"{PREFIX}/marketplace/packages/pg_backup/ratings"
    refused = web.client.post(path, json={"stars": 4})
    assert refused.status_code == 403 and _error(refused)["code"] == "csrf_failed"
    principal = auth.Principal(user=None, name="admin", token=token, via_cookie=True)
    accepted = web.client.post(path, json={"stars": 4}, headers={auth.CSRF_HEADER: auth.csrf_token_for(principal)})
    assert accepted.status_code == 201, accepted.get_json()
    web.sign_out()


# -- ratings and reviews ------------------------------------------------------------------------------------------
def test_ratings_are_per_user_and_averaged(web, catalog):
    assert web.api("POST", "marketplace/packages/pg_backup/ratings", json={"stars": 5}).status_code == 201
    assert web.api("POST", "marketplace/packages/pg_backup/ratings", json={"stars": 2}, as_="editor").status_code == 201
    again = web.api("POST", "marketplace/packages/pg_backup/ratings", json={"stars": 4}, as_="editor")
    assert again.status_code == 201  # the editor changed their mind: replaced, not added
    info = web.api("GET", "marketplace/packages/pg_backup").get_json()
    assert (info["rating"], info["ratings_count"]) == (4.5, 2)
    result = web.api("GET", "marketplace/search?q=pg_backup").get_json()["items"][0]
    assert (result["rating"], result["ratings_count"]) == (4.5, 2)


@pytest.mark.parametrize("stars", [0, 6, "five", 4.5, None])
def test_bad_stars_are_422_naming_the_field_and_record_nothing(web, catalog, stars):
    response = web.api("POST", "marketplace/packages/pg_backup/ratings", json={"stars": stars})
    assert response.status_code == 422, response.get_json()
    error = _error(response)
    assert error["code"] == "invalid_body" and error["details"]["errors"][0]["field"] == "stars"
    assert error["message"] == "stars must be a whole number from 1 to 5"
    assert web.api("GET", "marketplace/packages/pg_backup").get_json()["ratings_count"] == 0


def test_missing_stars_is_422(web, catalog):
    response = web.api("POST", "marketplace/packages/pg_backup/ratings", json={})
    assert response.status_code == 422 and _error(response)["details"]["errors"][0]["field"] == "stars"


def test_reviews_are_stored_as_written_by_the_signed_in_user(web, catalog):
    posted = web.api("POST", "marketplace/packages/pg_backup/reviews", json={"text": HTML_REVIEW}, as_="editor")
    assert posted.status_code == 201, posted.get_json()
    assert posted.get_json()["author"] == "editor"
    web.api("POST", "marketplace/packages/pg_backup/reviews", json={"text": "Second, newer"})
    reviews = web.api("GET", "marketplace/packages/pg_backup", as_="reader").get_json()["reviews"]
    assert [(r["author"], r["text"]) for r in reviews] == [("admin", "Second, newer"), ("editor", HTML_REVIEW)]
    # JSON is not HTML: the review comes back verbatim, and escaping it is the page's job (test_ui_browser.py).
    assert web.api("GET", "marketplace/packages/pg_backup").content_type == "application/json"


def test_oversized_or_blank_reviews_are_422_and_record_nothing(web, catalog):
    oversized = web.api("POST", "marketplace/packages/pg_backup/reviews", json={"text": "x" * 2001})
    assert oversized.status_code == 422
    error = _error(oversized)
    rule = "text must be plain text of 1 to 2000 characters"
    assert error["details"]["errors"] == [{"field": "text", "message": rule}]
    assert error["message"] == rule  # in words, not jsonschema's quote of the 2001 characters
    blank = web.api("POST", "marketplace/packages/pg_backup/reviews", json={"text": "   "})
    assert blank.status_code == 422 and _error(blank)["code"] == "invalid_input"
    wrong_type = web.api("POST", "marketplace/packages/pg_backup/reviews", json={"text": ["a"]})
    assert wrong_type.status_code == 422 and _error(wrong_type)["details"]["errors"][0]["field"] == "text"
    assert web.api("GET", "marketplace/packages/pg_backup").get_json()["reviews"] == []
    exactly = web.api("POST", "marketplace/packages/pg_backup/reviews", json={"text": "y" * 2000})
    assert exactly.status_code == 201


def test_reader_cannot_rate_or_review(web, catalog):
    for suffix, body in (("ratings", {"stars": 3}), ("reviews", {"text": "hello"})):
        response = web.api("POST", f"marketplace/packages/pg_backup/{suffix}", json=body, as_="reader")
        assert response.status_code == 403 and _error(response)["code"] == "forbidden"


def test_every_marketplace_route_needs_a_token(web, catalog):
    for method, path in (
        ("GET", "marketplace/search?q=x"),
        ("GET", "marketplace/packages/pg_backup"),
        ("POST", "marketplace/packages/pg_backup/install"),
        ("DELETE", "marketplace/packages/pg_backup/install"),
        ("POST", "marketplace/packages/pg_backup/ratings"),
        ("POST", "marketplace/packages/pg_backup/reviews"),
        ("GET", "marketplace/installed"),
        ("GET", "marketplace/catalogs"),
    ):
        response = web.api(method, path, as_=None, json={})
        assert response.status_code == 401, (method, path)


# -- the page -----------------------------------------------------------------------------------------------------
def test_pages_render_the_readme_safely_and_need_a_login(web, catalog):
    assert web.client.get("/dagops/marketplace").status_code == 302  # not signed in: to Airflow's login
    web.sign_in_with_cookie("reader")
    listing = web.client.get("/dagops/marketplace")
    assert listing.status_code == 200 and b"marketplace.js" in listing.data
    page = web.client.get("/dagops/marketplace/pg_backup")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert(1)" not in html
    assert '<a href="https://example.com" rel="nofollow noopener noreferrer">a link</a>' in html
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    unknown = web.client.get("/dagops/marketplace/nope")
    assert unknown.status_code == 200 and b"has no README" in unknown.data  # the script shows the API's 404
    web.sign_out()
