"""The detect-secrets line screen (validate/secret_screen.py) skips only lines no plugin would report.

Secret-shaped values are assembled at run time, so this file holds no scanner bait.
"""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from detect_secrets.settings import get_plugins, transient_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_dagops.validate import secret_screen, security
from airflow_dagops.validate.security import check_security

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
# File names whose type changes what the keyword plugin looks for (Python needs quotes, YAML/INI do not).
FILENAMES = ("dags/x.py", "config/x.yaml", "x.ini", "x.env", "x.js")

B64 = "QWxhZGRpbjpvcGVuIHNlc2FtZQ0K"  # assembled below into longer runs
FRAGMENTS = [
    "password",
    "PASSWD",
    "api_key",
    "db_pass",
    "secret",
    "contraseña",
    "token",
    " = ",
    ": ",
    "=",
    ":=",
    "'",
    '"',
    "`",
    "(",
    ")",
    "[0]",
    "//registry.npmjs.org/:_authToken=",
    "://",
    "@",
    "AK" + "IA",
    "A" * 16,
    "xo" + "xb-",
    "1234-",
    "sk_" + "live_",
    "gh" + "p_",
    "ey" + "J",
    "-----BEGIN " + "RSA PRIVATE KEY-----",
    B64,
    B64[::-1],
    "0123456789abcdef",
    "fedcba9876543210",
    "cloudant",
    "ibm_cos_hmac",
    "aws_secret_access_key",
    " ",
    "x",
    "#",
    "\t",
]


def _reported(line: str) -> bool:
    """Whether any enabled plugin reports something on `line`, for any of the file types."""
    return any(
        plugin.analyze_line(filename=name, line=line, line_number=1) for name in FILENAMES for plugin in get_plugins()
    )


def _corpus_lines() -> list[str]:
    lines = []
    for path in sorted(FIXTURES.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            lines += [line.rstrip() for line in path.read_text(errors="replace").splitlines()]
    return lines


@pytest.fixture
def configured():
    with transient_settings(security._detect_secrets_config()) as configured:
        yield configured


def test_no_line_of_the_fixtures_that_a_plugin_reports_is_screened_out(configured):
    lines = _corpus_lines()
    assert len(lines) > 1000
    missed = [line for line in lines if secret_screen.holds_nothing_to_find(line) and _reported(line)]
    assert missed == []
    reported = [line for line in lines if _reported(line)]
    assert reported, "the fixtures hold secrets the plugins report: the check above compared something"
    skipped = sum(secret_screen.holds_nothing_to_find(line) for line in lines)
    assert skipped > len(lines) // 2, "most lines of DAG code hold nothing a plugin could report"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=8))
def test_no_generated_line_that_a_plugin_reports_is_screened_out(configured, fragments):
    line = "".join(fragments)
    if _reported(line):
        assert not secret_screen.holds_nothing_to_find(line), line


@pytest.mark.parametrize("alphabet", [string.ascii_letters + string.digits + "+/", "0123456789abcdef"])
def test_the_shortest_quoted_strings_with_enough_entropy_pass_the_screen(configured, alphabet):
    # n different characters have the highest entropy n characters can have (log2 n): the screen's length bound
    # must let through the first n whose entropy passes a plugin's limit.
    reported = 0
    for n in range(1, len(alphabet) + 1):
        line = f'value = "{alphabet[:n]}"'
        if _reported(line):
            reported += 1
            assert not secret_screen.holds_nothing_to_find(line), line
    assert reported > 0


def test_check_security_finds_the_same_with_and_without_the_screen(monkeypatch):
    roots = [FIXTURES / "real" / "secrets" / "good", FIXTURES / "real" / "secrets" / "bad", FIXTURES / "bad"]

    def scan_all() -> list:
        findings = []
        for root in roots:
            files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
            findings += check_security(root, files)
        return [f.to_dict() for f in findings]

    screened = scan_all()
    unscreened_config = security._detect_secrets_config

    def without_screen() -> dict:
        config = unscreened_config()
        config["filters_used"] = [f for f in config["filters_used"] if f["path"] != secret_screen.FILTER_PATH]
        return config

    monkeypatch.setattr(security, "_detect_secrets_config", without_screen)
    assert scan_all() == screened
    assert any(f["rule"].startswith("hardcoded-secret") for f in screened)


def test_the_screen_is_tried_before_detect_secrets_own_line_filters(configured):
    secret_screen.run_first(configured)
    assert next(iter(configured.filters)) == secret_screen.FILTER_PATH


def test_a_plugin_of_an_unknown_kind_turns_the_screen_off(configured):
    assert secret_screen.screen_for(get_plugins()) is not None
    assert secret_screen.screen_for([*get_plugins(), object()]) is None
