from __future__ import annotations

import pytest

from airflow_dagops.errors import InvalidInput
from airflow_dagops.safety import display_url, redact, validate_name, validate_ref, validate_subdir, validate_url

ALLOWED = ["https", "ssh", "git", "file"]


@pytest.mark.parametrize("name", ["team-etl", "a", "x_1", "0abc", "a" * 63])
def test_good_names_are_accepted(name):
    assert validate_name(name) == name


@pytest.mark.parametrize("name", ["", "-rm", "a/b", "..", "../x", "Upper", "with space", "a" * 64, "_lead", "a.b"])
def test_bad_names_are_refused_with_the_rule(name):
    with pytest.raises(InvalidInput, match="lower-case letters"):
        validate_name(name)


@pytest.mark.parametrize("ref", ["main", "release/2024", "v1.2.3", "a" * 40, "refs/heads/dev"])
def test_good_refs(ref):
    assert validate_ref(ref)


def test_refs_heads_prefix_is_dropped():
    assert validate_ref("refs/heads/dev") == "dev"


@pytest.mark.parametrize(
    "ref", ["-oops", "--upload-pack=touch", "a..b", "a b", "x~1", "y^", "bad:ref", "@{u}", "end/", "x.lock", ""]
)
def test_bad_refs_are_refused(ref):
    with pytest.raises(InvalidInput, match="invalid ref"):
        validate_ref(ref)


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/org/repo.git",
        "git@github.com:org/repo.git",
        "ssh://git@host:2222/repo.git",
        "file:///srv/repo",
        "/srv/repo",
        "git://host/repo",
    ],
)
def test_good_urls(url):
    assert validate_url(url, allowed_protocols=ALLOWED) == url


@pytest.mark.parametrize(
    "url,match",
    [
        ("ext::sh -c touch% /tmp/x", "must not"),
        ("ext::sh", "never allowed"),
        ("fd::3", "never allowed"),
        ("-uhttps://x", "must not"),
        ("http://plain.example/repo", "not allowed"),
        ("ftp://x/y", "not allowed"),
        ("", "must not"),
        ("https://user:hunter2@github.com/o/r", "contains credentials"),
        ("https://ghp_abcdef@github.com/o/r", "contains credentials"),
    ],
)
def test_bad_urls_are_refused(url, match):
    with pytest.raises(InvalidInput, match=match) as raised:
        validate_url(url, allowed_protocols=ALLOWED)
    assert "hunter2" not in str(raised.value) and "ghp_abcdef" not in str(raised.value)


def test_redaction_hides_userinfo_everywhere_in_a_text():
    text = (
        "fatal: unable to access 'https://bob:s3cret@git.example.com/r.git/': 403 and "
        "https://tok123@h/x and ssh://git@host/r and ssh://u:pw@host/r"
    )
    redacted = redact(text)
    for secret in ("s3cret", "tok123", "pw@"):
        assert secret not in redacted
    assert "ssh://git@host/r" in redacted  # a bare ssh user is no secret
    assert display_url("https://a:b@h/r/") == "https://***@h/r"


@pytest.mark.parametrize("subdir", ["/etc", "../up", "a/../../b", "-x"])
def test_bad_subdirs(subdir):
    with pytest.raises(InvalidInput):
        validate_subdir(subdir)


def test_subdir_is_normalised():
    assert validate_subdir("dags/") == "dags"
    assert validate_subdir(".") is None
