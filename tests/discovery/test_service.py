"""Automatic repository discovery (issue 23, part 1): scan an organization on a fake GitHub, GitLab or Gitea API,
propose what matches the rule, register it, flag what disappears, never delete anything silently."""

from __future__ import annotations

import pytest

from airflow_dagops.discovery import service as discovery
from airflow_dagops.discovery.rules import Rule, derive_name
from airflow_dagops.errors import ConfigInvalid, HostApiError, HostPermissionDenied, InvalidInput, NotFound
from airflow_dagops.repositories.info import get_repository, list_repositories
from airflow_dagops.repositories.registry import add_repository, remove_repository
from tests.discovery.conftest import READ, TOKEN, WEAK_TOKEN, git_connection, source


@pytest.fixture(params=["github", "gitlab", "gitea"])
def org(request, git_host, dagops_env, monkeypatch):
    """An organization of three repositories on each host: two with the topic (one holds .dagops.yaml), one without."""
    provider = request.param
    fake = git_host(provider)
    base = "data/platform" if provider == "gitlab" else "acme"  # GitLab: a subgroup of the group `data`
    fake.add_repo(f"{base}/sales-dags", topics=["airflow-dags"], files={".dagops.yaml"})
    fake.add_repo(f"{base}/Finance.DAGs", topics=["Airflow-DAGs", "finance"], default_branch="trunk")
    fake.add_repo(f"{base}/website", topics=["web"])
    fake.tokens[TOKEN] = READ[provider]
    fake.tokens[WEAK_TOKEN] = set()
    git_connection(monkeypatch, "org_token", TOKEN, api_url=fake.url)
    fake.base = base
    return fake


def _names(result: dict, status: str | None = None) -> list[str]:
    return sorted(r["name"] for r in result["repositories"] if status is None or r["status"] == status)


def test_a_scan_lists_the_organization_and_proposes_what_matches(org):
    discovery.configure([source(org.provider)])
    result = discovery.scan()
    prefix = "platform-" if org.provider == "gitlab" else ""
    assert _names(result, "proposed") == [f"{prefix}finance-dags", f"{prefix}sales-dags"]
    if org.provider == "github":
        assert org.calls("GET", "/orgs/acme/repos")[0].query["per_page"] == "100"
    elif org.provider == "gitlab":
        [call] = org.calls("GET", "/groups/data/projects")
        assert call.query["include_subgroups"] == "true"
    else:
        assert org.calls("GET", "/orgs/acme/repos")[0].query["limit"] == "100"
    [stats] = result["sources"]
    assert stats["listed"] == 3 and stats["matched"] == 2 and len(stats["new"]) == 2
    finance = next(r for r in result["repositories"] if r["name"].endswith("finance-dags"))
    assert finance["ref"] == "trunk" and finance["url"].endswith("Finance.DAGs.git")
    assert list_repositories() == []  # proposed only: nothing registered


def test_a_required_file_is_looked_up_with_the_contents_api(org):
    discovery.configure([source(org.provider, rule={"topic": "airflow-dags", "require_file": ".dagops.yaml"})])
    result = discovery.scan()
    assert [r["full_name"] for r in result["repositories"]] == [f"{org.base}/sales-dags"]
    if org.provider == "gitlab":
        paths = {c.path for c in org.calls("GET", "/repository/files/")}
        assert paths == {
            "/projects/data%2Fplatform%2Fsales-dags/repository/files/.dagops.yaml",
            "/projects/data%2Fplatform%2FFinance.DAGs/repository/files/.dagops.yaml",
        }
    else:
        paths = {c.path for c in org.calls("GET", "/contents/")}
        assert paths == {
            "/repos/acme/sales-dags/contents/.dagops.yaml",
            "/repos/acme/Finance.DAGs/contents/.dagops.yaml",
        }
    assert sorted(c.query["ref"] for c in org.calls("GET", ".dagops.yaml")) == ["main", "trunk"]  # default branches


def test_apply_registers_with_the_derived_namespace_branch_and_connection(org):
    discovery.configure([source(org.provider, namespace_prefix="org-")])
    result = discovery.scan(apply=True, verify=False)
    registered = _names(result, "registered")
    assert len(registered) == 2 and all(name.startswith("org-") for name in registered)
    finance = get_repository(next(n for n in registered if n.endswith("finance-dags")))
    assert finance.namespace == finance.name and finance.ref == "trunk" and finance.conn_id == "org_token"
    again = discovery.scan(apply=True, verify=False)  # idempotent: nothing new, nothing registered twice
    assert again["sources"][0]["new"] == [] and again["sources"][0]["registered"] == []
    assert sorted(r.name for r in list_repositories()) == registered


def test_new_matches_appear_and_removed_ones_are_flagged_never_deleted(org):
    discovery.configure([source(org.provider)])
    discovery.scan(apply=True, verify=False)
    org.repos.pop(f"{org.base}/sales-dags")  # deleted on the host
    org.repos[f"{org.base}/Finance.DAGs"].topics = ["finance"]  # topic taken off
    org.add_repo(f"{org.base}/hr-dags", topics=["airflow-dags"])
    result = discovery.scan()
    [stats] = result["sources"]
    assert stats["new"] == [f"{org.base}/hr-dags"]
    assert sorted(stats["removed"]) == sorted([f"{org.base}/sales-dags", f"{org.base}/Finance.DAGs"])
    statuses = {r["full_name"]: (r["status"], r["repository"]) for r in result["repositories"]}
    prefix = "platform-" if org.provider == "gitlab" else ""
    assert statuses[f"{org.base}/sales-dags"] == ("removed", f"{prefix}sales-dags")  # flagged; registration stays
    assert statuses[f"{org.base}/hr-dags"] == ("proposed", None)
    assert get_repository(f"{prefix}sales-dags").name == f"{prefix}sales-dags"  # still registered
    org.add_repo(f"{org.base}/sales-dags", topics=["airflow-dags"])  # back again
    back = discovery.scan()
    assert back["sources"][0]["back"] == [f"{org.base}/sales-dags"]
    assert {r["full_name"]: r["status"] for r in back["repositories"]}[f"{org.base}/sales-dags"] == "registered"


def test_a_source_that_registers_by_itself(org):
    discovery.configure([source(org.provider, register=True)])
    result = discovery.scan(verify=False)
    assert len(_names(result, "registered")) == 2 and len(list_repositories()) == 2


def test_a_registration_removed_by_hand_is_not_made_again(org):
    discovery.configure([source(org.provider, register=True)])
    result = discovery.scan(verify=False)
    name = _names(result, "registered")[0]
    remove_repository(name)
    again = discovery.scan(verify=False)
    row = next(r for r in again["repositories"] if r["name"] == name)
    assert row["status"] == "ignored" and "removed from dagops" in row["reason"]
    assert name not in [r.name for r in list_repositories()]
    discovery.ignore(name, ignored=False)
    assert discovery.register([name], verify=False)[0]["ok"]


def test_names_and_urls_already_taken(org):
    prefix = "platform-" if org.provider == "gitlab" else ""
    url = org.repos[f"{org.base}/sales-dags"].clone_url
    add_repository("sales", url, verify=False)  # the same repository, registered by hand under another name
    add_repository(f"{prefix}finance-dags", "https://elsewhere.example.com/x/finance.git", verify=False)
    discovery.configure([source(org.provider)])
    result = discovery.scan(apply=True, verify=False)
    rows = {r["full_name"]: r for r in result["repositories"]}
    sales = rows[f"{org.base}/sales-dags"]
    assert sales["status"] == "registered" and sales["repository"] == "sales"
    finance = rows[f"{org.base}/Finance.DAGs"]
    assert finance["status"] == "proposed" and "is used by repository" in finance["reason"]
    assert sorted(r.name for r in list_repositories()) == sorted(["sales", f"{prefix}finance-dags"])


def test_ignored_matches_are_not_proposed_or_registered(org):
    discovery.configure([source(org.provider)])
    discovery.scan()
    prefix = "platform-" if org.provider == "gitlab" else ""
    discovery.ignore(f"{prefix}sales-dags")
    result = discovery.scan(apply=True, verify=False)
    assert {r["name"]: r["status"] for r in result["repositories"]}[f"{prefix}sales-dags"] == "ignored"
    assert [r.name for r in list_repositories()] == [f"{prefix}finance-dags"]


def test_an_unknown_organization_a_token_without_scope_and_a_bad_token(org, monkeypatch):
    discovery.configure([source(org.provider, url=_org_url(org, "nobody"))])
    with pytest.raises(NotFound, match="knows no organization 'nobody'"):
        discovery.scan()
    assert discovery.list_sources()[0]["last_error"]
    discovery.configure([source(org.provider)])
    git_connection(monkeypatch, "org_token", "tok-unknown", api_url=org.url)
    with pytest.raises(HostApiError, match="wrong or expired") as caught:
        discovery.scan()
    assert "tok-unknown" not in str(caught.value)


def _org_url(org, name: str) -> str:
    host = {"github": "github.example.com", "gitlab": "gitlab.example.com", "gitea": "gitea.example.com"}[org.provider]
    return f"https://{host}/{name}"


def test_a_403_names_the_scope_the_listing_needs(git_host, dagops_env, monkeypatch):
    fake = git_host("github")
    fake.add_repo("acme/dags", topics=["airflow-dags"])
    fake.tokens[WEAK_TOKEN] = set()
    fake.refused.add("/orgs/")
    git_connection(monkeypatch, "org_token", WEAK_TOKEN, api_url=fake.url)
    discovery.configure([source("github")])
    with pytest.raises(HostPermissionDenied, match="lacks the scope this needs: repo"):
        discovery.scan()


def test_sources_are_checked_before_anything_is_stored(dagops_env):
    bad = [
        source("github", rule={}),
        source("github", name="Bad Name"),
        source("github", url="git@github.com:acme"),
        source("gitea", name="two", url="https://gitea.example.com/acme/sub"),
        source("github", name="three", provider=None, url="https://git.internal/acme"),
    ]
    with pytest.raises(ConfigInvalid) as caught:
        discovery.configure(bad)
    problems = caught.value.problems
    assert len(problems) == 5, problems
    assert "at least one of topic" in problems[0] and "invalid discovery source name" in problems[1]
    assert "organization's web address" in problems[2] and "one name" in problems[3] and "provider" in problems[4]
    assert discovery.list_sources() == []


@pytest.mark.parametrize(
    ("url", "provider"),
    [
        ("https://github.com/acme", "github"),
        ("https://codeberg.org/acme", "gitea"),
        ("https://gitlab.acme.com/data/platform", "gitlab"),
        ("https://forgejo.acme.com/acme", "gitea"),
    ],
)
def test_a_sources_provider_is_told_from_its_host_as_every_git_host_call_tells_it(url, provider):
    assert discovery.clean_source(source("github", provider=None, url=url)).provider == provider


def test_configure_adds_changes_and_removes_sources(dagops_env):
    assert discovery.configure([source("github"), source("gitlab")]) == [
        "added discovery source github-org (https://github.example.com/acme: topic airflow-dags)",
        "added discovery source gitlab-org (https://gitlab.example.com/data: topic airflow-dags)",
    ]
    assert discovery.configure([source("github", register=True)]) == [
        "removed discovery source gitlab-org",
        "changed discovery source github-org",
    ]
    assert discovery.configure([source("github", register=True)]) == []
    assert [s["name"] for s in discovery.list_sources()] == ["github-org"]


@pytest.mark.parametrize(
    ("relative", "prefix", "name"),
    [
        ("sales-dags", None, "sales-dags"),
        ("Finance.DAGs", None, "finance-dags"),
        ("platform/etl", "team-", "team-platform-etl"),
        ("---", None, None),
        ("x" * 80, None, "x" * 63),
    ],
)
def test_derived_names(relative, prefix, name):
    assert derive_name(relative, prefix) == name


def test_rules():
    rule = Rule.from_dict({"topics": ["Airflow-DAGs", "dags"], "name_pattern": "*-dags"})
    assert rule.name_matches("Sales-DAGs") and not rule.name_matches("website")
    assert rule.topics_match(["airflow-dags"]) and not rule.topics_match(["web"]) and not rule.topics_match(None)
    for bad in ({"require_file": "../etc/passwd"}, {"require_file": "/abs"}, {"colour": "red"}, {"topic": ""}):
        with pytest.raises(InvalidInput):
            Rule.from_dict(bad)


def test_two_matches_deriving_one_name_the_first_keeps_it(git_host, dagops_env, monkeypatch):
    fake = git_host("github")
    fake.add_repo("acme/sales-dags", topics=["airflow-dags"])
    fake.add_repo("acme/Sales.DAGs", topics=["airflow-dags"])
    fake.tokens[TOKEN] = READ["github"]
    git_connection(monkeypatch, "org_token", TOKEN, api_url=fake.url)
    discovery.configure([source("github")])
    result = discovery.scan(apply=True, verify=False)
    rows = {r["full_name"]: r for r in result["repositories"]}
    assert rows["acme/sales-dags"]["status"] == "registered"
    assert rows["acme/Sales.DAGs"]["status"] == "proposed" and "found first" in rows["acme/Sales.DAGs"]["reason"]
    assert [r.name for r in list_repositories()] == ["sales-dags"]
