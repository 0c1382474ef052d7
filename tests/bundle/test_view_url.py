"""Links from a bundle version to its commits on the Git hosts, and the API route Airflow's UI links to."""

from __future__ import annotations

import pytest

from airflow_dagops.bundle import view_url
from airflow_dagops.store import bundle_versions

SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://github.com/acme/dags.git", f"https://github.com/acme/dags/commit/{SHA}"),
        ("git@github.com:acme/dags.git", f"https://github.com/acme/dags/commit/{SHA}"),
        ("https://token:x@github.example.com/acme/dags", f"https://github.example.com/acme/dags/commit/{SHA}"),
        ("https://gitlab.com/group/sub/dags.git", f"https://gitlab.com/group/sub/dags/-/commit/{SHA}"),
        ("ssh://git@gitlab.acme.io:2222/team/dags.git", f"https://gitlab.acme.io/team/dags/-/commit/{SHA}"),
        ("http://gitea.local:3000/team/dags.git", f"http://gitea.local:3000/team/dags/commit/{SHA}"),
        ("https://codeberg.org/team/dags", f"https://codeberg.org/team/dags/commit/{SHA}"),
        ("https://bitbucket.org/acme/dags.git", f"https://bitbucket.org/acme/dags/commits/{SHA}"),
        ("https://git.acme.io/team/dags.git", None),  # a host whose name says nothing: no guess
        ("file:///srv/git/dags", None),
        (None, None),
    ],
)
def test_commit_urls_of_each_git_host(url, expected):
    assert view_url.commit_url(url, SHA) == expected


def test_a_known_kind_overrides_the_guess():
    assert view_url.commit_url("https://git.acme.io/team/dags.git", SHA, kind="gitea") == (
        f"https://git.acme.io/team/dags/commit/{SHA}"
    )


def test_the_bundle_template_needs_an_absolute_base_url():
    assert view_url.version_page_template("http://airflow:8080/") == (
        "http://airflow:8080/pluginsv2/dagops/api/v1/bundle/versions/{version}"
    )
    assert view_url.version_page_template("") is None


def test_the_version_page_redirects_to_the_one_commit_a_version_changed(web):
    namespaces = {
        "team": {"repository": "team", "commit": SHA, "url": "https://github.com/acme/team.git"},
        "other": {"repository": "other", "commit": "f" * 40, "url": "https://gitlab.com/acme/other.git"},
    }
    bundle_versions.record("v-one", {"namespaces": namespaces, "changed": ["team"]})
    bundle_versions.record("v-two", {"namespaces": namespaces, "changed": ["team", "other"]})

    one = web.api("GET", "bundle/versions/v-one")
    assert one.status_code == 302
    assert one.headers["Location"] == f"https://github.com/acme/team/commit/{SHA}"

    two = web.api("GET", "bundle/versions/v-two").get_json()
    assert [row["namespace"] for row in two["namespaces"]] == ["other", "team"]
    assert two["namespaces"][0]["url"] == f"https://gitlab.com/acme/other/-/commit/{'f' * 40}"
    assert web.api("GET", "bundle/versions/v-one?format=json").status_code == 200
    assert web.api("GET", "bundle/versions/nope").status_code == 404
    assert web.api("GET", "bundle/versions/v-one", as_=None).status_code == 401
