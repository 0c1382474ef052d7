"""The one Git host client (airflow_dagops/git/host_api.py): which host serves a URL, where its API is, which
header carries the token, and how a report (a commit status) that the host refuses is said, without the token.
A local HTTP server is the host."""

from __future__ import annotations

import pytest

from airflow_dagops.errors import ReportError
from airflow_dagops.git import host_api
from airflow_dagops.statuses import CheckStatus
from tests.helpers.servers import start_fake_api

TOKEN = "ghp_" + "HostApiT0ken" * 3  # noqa: S105 - a fake token, searched for in every message


@pytest.mark.parametrize(
    ("url", "extra", "provider"),
    [
        ("https://github.com/acme/dags.git", {}, "github"),
        ("git@gitlab.com:group/sub/dags.git", {}, "gitlab"),
        ("https://codeberg.org/acme/dags", {}, "gitea"),
        ("https://gitea.com/acme/dags", {}, "gitea"),
        ("https://forgejo.acme.internal/acme/dags", {}, "gitea"),
        ("https://github.acme.com/acme/dags", {}, "github"),  # GitHub Enterprise, by its name
        ("https://git.acme.com/acme/dags", {"provider": "GitLab"}, "gitlab"),  # the connection says it
        ("https://git.acme.com/acme/dags", {}, None),  # nothing says which
        ("https://bitbucket.org/acme/dags", {}, None),  # told apart, but no API dagops calls
        ("/srv/git/dags", {}, None),
    ],
)
def test_the_provider_comes_from_the_connection_else_the_host(url, extra, provider):
    assert host_api.provider_of(url, extra) == provider


def test_bitbucket_is_known_where_it_is_asked_for():
    assert host_api.provider_of_host("bitbucket.org") == "bitbucket"
    assert host_api.provider_of("https://bitbucket.acme.com/x/y", among=("bitbucket",)) == "bitbucket"


@pytest.mark.parametrize(
    ("provider", "url", "api"),
    [
        ("github", "https://github.com/acme/dags", "https://api.github.com"),
        ("github", "https://github.acme.com/acme/dags", "https://github.acme.com/api/v3"),
        ("gitlab", "git@gitlab.com:group/dags.git", "https://gitlab.com/api/v4"),
        ("gitlab", "https://gitlab.acme.com/group/dags", "https://gitlab.acme.com/api/v4"),
        ("gitea", "https://codeberg.org/acme/dags", "https://codeberg.org/api/v1"),
        ("bitbucket", "https://bitbucket.org/acme/dags", "https://api.bitbucket.org/2.0"),
        ("bitbucket", "https://bitbucket.acme.com/scm/acme/dags.git", "https://bitbucket.acme.com/rest/api/1.0"),
        ("github", "/srv/git/dags", None),
    ],
)
def test_the_api_root_of_public_and_self_hosted_servers(provider, url, api):
    assert host_api.default_api(provider, url) == api


def test_the_token_travels_in_each_hosts_header_only():
    assert host_api.auth_headers("github", TOKEN)["Authorization"] == f"Bearer {TOKEN}"
    assert host_api.auth_headers("gitlab", TOKEN) == {"Authorization": f"Bearer {TOKEN}"}
    assert host_api.auth_headers("gitea", TOKEN) == {"Authorization": f"token {TOKEN}"}
    assert "Authorization" not in host_api.auth_headers("github", "")  # a public listing


def test_a_refused_commit_status_says_why_without_the_token():
    fake = start_fake_api()
    try:
        fake.status = 401
        endpoint = host_api.Endpoint("gitlab", fake.url, "group/sub/dags", TOKEN)
        status = host_api.CommitStatus("a" * 40, CheckStatus.FAILURE, "2 errors in 1 file", "http://x/1")
        with pytest.raises(ReportError) as refused:
            host_api.post(endpoint, status)
        message = str(refused.value)
        assert "gitlab API answered 401 to the commit status of aaaaaaaaaaaa" in message
        assert "GitLab api" in message and TOKEN not in message
        [call] = fake.calls
        assert call.path == f"/projects/group%2Fsub%2Fdags/statuses/{'a' * 40}"
        assert call.body == {"state": "failed", "name": "dagops/validate", "description": "2 errors in 1 file",
                             "target_url": "http://x/1"}  # fmt: skip
    finally:
        fake.server.shutdown()
        fake.server.server_close()


def test_an_unreachable_host_is_a_report_error():
    endpoint = host_api.Endpoint("github", "http://127.0.0.1:9", "acme/dags", TOKEN)
    with pytest.raises(ReportError, match="cannot reach the github API"):
        host_api.post(endpoint, host_api.CommitStatus("b" * 40, CheckStatus.SUCCESS, "Passed", "http://x/2"))
