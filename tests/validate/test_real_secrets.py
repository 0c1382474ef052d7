"""Real-world secret false positives and misses of the security check (tests/fixtures/real/secrets/).

good/: a DAG repository's placeholders, names of secrets, a Compose file's dev defaults and vendored code:
no error, only warnings that say why. bad/: import-time side effects one call away and file writes. URI
passwords with URL-special characters are built at run time, so this repository holds no scanner bait.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from airflow_dagops.validate.security import check_security

REAL = Path(__file__).resolve().parents[1] / "fixtures" / "real" / "secrets"
GOOD = REAL / "good"
BAD = REAL / "bad"


def all_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def scan(root: Path, relative: str, content: str) -> list:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(content))
    return check_security(root, [relative])


def test_good_repository_has_no_error() -> None:
    findings = check_security(GOOD, all_files(GOOD))
    errors = [f"{f.file}:{f.line} {f.rule} {f.message}" for f in findings if f.severity == "error"]
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize(
    ("file", "line", "reason"),
    [
        ("dags/placeholders_dag.py", 10, "a placeholder"),  # API_KEY = "changeme"
        ("dags/placeholders_dag.py", 11, "a placeholder"),  # api_secret = "xxx"
        ("dags/placeholders_dag.py", 14, "a placeholder"),  # SLACK_TOKEN = "REPLACE_ME"
        ("dags/placeholders_dag.py", 20, "the name or path of a secret"),  # SECRET_NAME = "prod/db/password"
        ("dags/placeholders_dag.py", 21, "the name or path of a secret"),  # secret = "postgres-secrets"
        ("dags/placeholders_dag.py", 22, "the name or path of a secret"),  # password_key = "db_password"
        ("dags/k8s_dag.py", 18, "the name or path of a secret"),
        ("docker-compose.yaml", 6, "a local development default"),  # postgresql://airflow:airflow@...
        ("docker-compose.yaml", 10, "a local development default"),  # _AIRFLOW_WWW_USER_PASSWORD: airflow
        ("docker-compose.yaml", 23, "a local development default"),  # postgresql://postgres:postgres@...
        ("docker-compose.yaml", 28, "a local development default"),  # MINIO_ROOT_PASSWORD: minioadmin
        ("vendor/somelib/.github/workflows/release.yml", 8, "vendored third-party code"),
        ("third_party/lib/settings.py", 3, "vendored third-party code"),
    ],
)
def test_good_findings_are_warnings_that_say_why(file: str, line: int, reason: str) -> None:
    findings = [f for f in check_security(GOOD, [file]) if f.line == line and f.rule.startswith("hardcoded-secret")]
    assert findings, f"expected a warning on {file}:{line}"
    assert all(f.severity == "warning" and reason in f.message for f in findings), findings


@pytest.mark.parametrize(
    "value",
    ["<your-token>", "github_pat_<...>", "changeme", "xxx", "${API_TOKEN}", "{{ var.value.api_token }}",
     "your_password_here", "REPLACE_ME", "aaaaaaaaaaaaaaaa"],
)  # fmt: skip
def test_placeholder_is_not_an_error(tmp_path: Path, value: str) -> None:
    findings = scan(tmp_path, "dags/a.py", f'api_token = "{value}"\npassword = "{value}"\n')
    assert not [f for f in findings if f.severity == "error"]


@pytest.mark.parametrize(
    "line",
    ['conn_id = "aws_secret"', 'password_key = "db_password"', 'SECRET_NAME = "prod/db/password"',
     'secret = "postgres-secrets"', 'api_key_variable = "openai_api_key"', 'token_conn_id = "slack_token"'],
)  # fmt: skip
def test_name_of_a_secret_is_not_an_error(tmp_path: Path, line: str) -> None:
    findings = scan(tmp_path, "dags/a.py", line + "\n")
    assert not [f for f in findings if f.severity == "error"]


def test_real_secrets_stay_errors(tmp_path: Path) -> None:
    value = "Qv7" + "#mZ2!pL9xT"  # assembled, so this file is not scanner bait
    findings = scan(tmp_path, "dags/a.py", f'password = "{value}"\napi_secret = "{value[::-1]}"\n')
    assert {f.line for f in findings if f.rule == "hardcoded-secret-password" and f.severity == "error"} == {1, 2}


@pytest.mark.parametrize("name", ["api_key", "client_secret", "SECRET_KEY"])
def test_lowercase_value_of_a_secret_valued_name_stays_an_error(tmp_path: Path, name: str) -> None:
    value = "qv7mz" + "-pl9xt-r4kw2"
    findings = scan(tmp_path, "dags/a.py", f'{name} = "{value}"\n')
    assert [f.severity for f in findings if f.rule.startswith("hardcoded-secret")] == ["error"]


def test_real_password_in_compose_file_stays_an_error(tmp_path: Path) -> None:
    value = "Qv7" + "mZ2pL9xTr4"
    findings = scan(
        tmp_path, "docker-compose.prod.yml", f"services:\n  db:\n    environment:\n      DB_PASSWORD: {value}\n"
    )
    assert [(f.line, f.severity) for f in findings if f.rule == "hardcoded-secret-password"] == [(4, "error")]


def test_dev_default_outside_a_compose_file_stays_an_error(tmp_path: Path) -> None:
    findings = scan(tmp_path, "dags/a.py", 'DB_URL = "postgresql://airflow:' + 'airflow@prod-db.internal/airflow"\n')
    assert [f.severity for f in findings if f.rule == "hardcoded-secret-basic-auth"] == ["error"]


def test_repository_own_ci_workflow_is_still_scanned(tmp_path: Path) -> None:
    value = "Qv7" + "mZ2pL9xTr4"
    findings = scan(tmp_path, ".github/workflows/ci.yml", f"env:\n  DB_PASSWORD: {value}\n")
    assert [f.severity for f in findings if f.rule == "hardcoded-secret-password"] == ["error"]


# ------------------------------------------------------------------------------------------------
# Misses: URI passwords with URL-special characters
# ------------------------------------------------------------------------------------------------

_URIS = [
    "postgresql://etl:p%40ss" + "#w0rd@db.internal/warehouse",
    "mysql://u:pa@" + "ss@h/db",
    "redis://:s3cr@" + "t!@cache:6379/0",
    "postgresql+psycopg2://etl:Zq9%23" + "x@db.internal:5432/warehouse?sslmode=require",
]


@pytest.mark.parametrize("uri", _URIS)
def test_uri_password_with_special_characters_in_python(tmp_path: Path, uri: str) -> None:
    findings = scan(tmp_path, "dags/a.py", f'import os\n\nDB = "{uri}"\n')
    assert [(f.line, f.severity) for f in findings if f.rule == "hardcoded-secret-basic-auth"] == [(3, "error")]
    assert all(uri.split("://")[1].split("@")[0] not in f.message for f in findings)


@pytest.mark.parametrize("uri", _URIS)
def test_uri_password_with_special_characters_in_env_file(tmp_path: Path, uri: str) -> None:
    findings = scan(tmp_path, ".env", f"# settings\nDATABASE_URL={uri}\n")
    assert [(f.line, f.severity) for f in findings if f.rule == "hardcoded-secret-basic-auth"] == [(2, "error")]


@pytest.mark.parametrize(
    "line",
    ['DB = "postgresql://etl:%s@db/warehouse" % password', 'DB = "postgresql://etl:{}@db/w".format(password)',
     'DB = "postgresql://etl:${DB_PASSWORD}@db/w"', 'DB = "postgresql://etl:<password>@db/w"',
     'DB = f"postgresql://{user}:{password}@{host}/w"', 'DB = "postgresql://etl:{{ conn.password }}@db/w"'],
)  # fmt: skip
def test_uri_with_template_password_is_not_an_error(tmp_path: Path, line: str) -> None:
    findings = scan(tmp_path, "dags/a.py", line + "\n")
    assert not [f for f in findings if f.severity == "error"]


def test_uri_allowlist_pragma_is_honoured(tmp_path: Path) -> None:
    findings = scan(tmp_path, ".env", f"DATABASE_URL={_URIS[0]}  # pragma: allowlist secret\n")
    assert not [f for f in findings if f.rule == "hardcoded-secret-basic-auth"]


# ------------------------------------------------------------------------------------------------
# Misses: import-time side effects one same-file call away, and file writes
# ------------------------------------------------------------------------------------------------


def side_effects(relative: str) -> dict[int, str]:
    findings = check_security(BAD, [relative])
    effects = [f for f in findings if f.rule == "import-time-side-effect"]
    assert all(f.severity == "error" for f in effects)
    return {f.line: f.message for f in effects}


def test_side_effects_one_call_away() -> None:
    effects = side_effects("fetch_config_dag.py")
    assert set(effects) == {36, 37, 38}  # not the @task call, not the recursive helper
    assert "Through `fetch_config()`, on line 15" in effects[36] and "makes a network call" in effects[36]
    assert "requests.get" in effects[37]
    assert "starts a process" in effects[38]


def test_file_writes_at_import() -> None:
    effects = side_effects("writes_at_import_dag.py")
    assert set(effects) == {24, 25, 26, 27, 28, 29, 30}
    assert "Through `write_manifest()`, on line 16" in effects[29]
    assert "Through `clean()`, on line 21" in effects[30]


def test_only_one_level_is_followed(tmp_path: Path) -> None:
    source = """\
        from urllib.request import urlopen


        def inner():
            return urlopen("https://example.com")


        def outer():
            return inner()


        def forever():
            return forever()


        X = outer()
        Y = forever()
        """
    findings = scan(tmp_path, "dags/a.py", source)
    assert not [f for f in findings if f.rule == "import-time-side-effect"]


def test_function_only_defined_is_not_followed(tmp_path: Path) -> None:
    source = """\
        import subprocess


        def build():
            subprocess.run(["make"], check=True)


        if __name__ == "__main__":
            build()
        """
    findings = scan(tmp_path, "dags/a.py", source)
    assert not [f for f in findings if f.rule == "import-time-side-effect"]
