"""Repository URL matching: every spelling of one repository reduces to one key."""

from __future__ import annotations

import pytest

from airflow_dagops.git.urls import host_of, normalize_repo_url, path_of

GITHUB = "github.com/acme/dags"


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("https://github.com/acme/dags", GITHUB),
        ("https://github.com/acme/dags.git", GITHUB),
        ("https://github.com/acme/dags/", GITHUB),
        ("https://github.com/acme/dags.git/", GITHUB),
        ("https://GitHub.COM/Acme/Dags.git", GITHUB),  # hosts look names up case-insensitively
        ("http://github.com/acme/dags", GITHUB),
        ("https://token@github.com/acme/dags.git", GITHUB),  # userinfo is not part of the identity
        ("https://github.com:443/acme/dags", GITHUB),
        ("ssh://git@github.com/acme/dags.git", GITHUB),
        ("ssh://git@github.com:22/acme/dags.git", GITHUB),
        ("git+ssh://git@github.com/acme/dags", GITHUB),
        ("git@github.com:acme/dags.git", GITHUB),  # scp-like
        ("git@github.com:acme/dags", GITHUB),
        ("github.com:acme/dags.git", GITHUB),  # scp-like without a user
        ("git@github.com:/acme/dags.git", GITHUB),
        ("git://github.com/acme/dags.git", GITHUB),
        ("https://gitlab.com/group/sub/project.git", "gitlab.com/group/sub/project"),
        ("git@gitlab.com:group/sub/project.git", "gitlab.com/group/sub/project"),
        ("https://git.example.com:3000/acme/dags.git", "git.example.com/acme/dags"),  # Gitea on HTTPS ...
        ("ssh://git@git.example.com:2222/acme/dags.git", "git.example.com/acme/dags"),  # ... and on SSH
        ("https://bitbucket.org/acme/dags", "bitbucket.org/acme/dags"),
        ("https://alice@bitbucket.org/acme/dags.git", "bitbucket.org/acme/dags"),
        ("file:///srv/git/Team/dags.git", "file:///srv/git/Team/dags"),  # local paths keep their case
        ("/srv/git/Team/dags/", "file:///srv/git/Team/dags"),
        ("https://github.com/acme/dags%2Dx", "github.com/acme/dags-x"),
    ],
)
def test_spellings_of_one_repository_share_a_key(url, key):
    assert normalize_repo_url(url) == key


@pytest.mark.parametrize(
    "url", [None, "", "https://github.com", "https://github.com/", "ext::sh -c x", "host:has space", "not a url"]
)
def test_what_is_not_a_repository_url_has_no_key(url):
    assert normalize_repo_url(url) is None


def test_different_repositories_differ():
    keys = {
        normalize_repo_url(u)
        for u in (
            "https://github.com/acme/dags",
            "https://github.com/acme/dags-prod",
            "https://github.com/other/dags",
            "https://gitlab.com/acme/dags",
            "https://github.com/acme/dags/sub",
        )
    }
    assert len(keys) == 5


def test_host_and_path_for_the_status_api():
    assert host_of("git@GitLab.example.com:group/sub/project.git") == "gitlab.example.com"
    assert path_of("git@gitlab.example.com:Group/Sub/Project.git") == "Group/Sub/Project"
    assert path_of("https://github.com/Acme/Dags.git") == "Acme/Dags"
    assert host_of("file:///srv/git/dags") is None
