"""Tests for the security check: bandit mapping, detect-secrets rules, the import-time AST rule, bad input."""

from __future__ import annotations

import logging
import os
import random
import string
import textwrap
from pathlib import Path

import pytest
from bandit.core import manager as bandit_manager
from detect_secrets.settings import get_settings

from airflow_dagops.validate import security
from airflow_dagops.validate.security import RULES, bandit_severity, check_security

FIXTURES = Path(__file__).parent.parent / "fixtures" / "bad"
SECURITY_FIXTURES = sorted(FIXTURES.glob("security_*.py"))

# AWS's documented example key pair.
AWS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def random_token(length: int, alphabet: str = string.ascii_letters + string.digits, seed: int = 7) -> str:
    """A random-looking value made at run time, so this file holds no scanner bait of its own."""
    return "".join(random.Random(seed).choices(alphabet, k=length))


def write(root: Path, relative: str, content: str | bytes) -> str:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(textwrap.dedent(content))
    return relative


def rules_of(findings, severity: str | None = None) -> set[str]:
    return {f.rule for f in findings if severity is None or f.severity == severity}


def findings_for(tmp_path: Path, relative: str, content: str | bytes, rule: str | None = None):
    write(tmp_path, relative, content)
    findings = check_security(tmp_path, [relative])
    return [f for f in findings if rule is None or f.rule == rule]


# ------------------------------------------------------------------------------------------------
# The bad-DAG corpus
# ------------------------------------------------------------------------------------------------


def expectation(path: Path) -> tuple[str, str]:
    first_line = path.read_text().splitlines()[0]
    assert first_line.startswith("# expect: "), f"{path.name} must declare what it expects"
    severity, rule = first_line.removeprefix("# expect: ").split()
    return severity, rule


def test_the_corpus_has_the_security_cases():
    names = {path.name for path in SECURITY_FIXTURES}
    assert {
        "security_aws_key.py",
        "security_private_key.py",
        "security_password_literal.py",
        "security_os_system.py",
        "security_subprocess_alias.py",
    } <= names


@pytest.mark.parametrize("fixture", SECURITY_FIXTURES, ids=lambda p: p.name)
def test_bad_fixture_reports_exactly_its_expected_error(fixture: Path):
    severity, rule = expectation(fixture)
    findings = check_security(FIXTURES, [fixture.name])
    assert (severity, rule) in {(f.severity, f.rule) for f in findings}
    # No other error from this check: each fixture has one defect.
    assert rules_of(findings, "error") == {rule}
    assert all(f.file == fixture.name and f.line and f.hint for f in findings)


def test_aws_fixture_reports_both_key_lines_without_the_values():
    findings = check_security(FIXTURES, ["security_aws_key.py"])
    aws = [f for f in findings if f.rule == "hardcoded-secret-aws"]
    source = (FIXTURES / "security_aws_key.py").read_text().splitlines()
    assert [source[f.line - 1].split(" = ")[0] for f in aws] == ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
    for finding in findings:
        assert AWS_KEY_ID not in finding.message + finding.hint
        assert AWS_SECRET not in finding.message + finding.hint


# ------------------------------------------------------------------------------------------------
# 1. bandit
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("severity", "confidence", "expected"),
    [
        ("HIGH", "HIGH", "error"),
        ("HIGH", "MEDIUM", "error"),
        ("HIGH", "LOW", "warning"),
        ("MEDIUM", "HIGH", "warning"),
        ("MEDIUM", "LOW", "warning"),
        ("LOW", "HIGH", "info"),
        ("UNDEFINED", "UNDEFINED", "info"),
    ],
)
def test_bandit_severity_mapping(severity, confidence, expected):
    assert bandit_severity(severity, confidence) == expected


def test_bandit_results_become_findings_with_mapped_severity(tmp_path):
    findings = findings_for(
        tmp_path,
        "dags/etl.py",
        """\
        import pickle
        import subprocess

        import yaml
        from airflow.sdk import task


        @task
        def run(command: str, raw: str):
            assert command
            subprocess.call(command, shell=True)
            return yaml.load(raw)
        """,
    )
    by_rule = {f.rule: f for f in findings}
    assert by_rule["bandit-B602"].severity == "error"  # shell=True with a variable: HIGH/HIGH
    assert by_rule["bandit-B602"].line == 11
    assert by_rule["bandit-B506"].severity == "warning"  # yaml.load: MEDIUM/HIGH
    assert by_rule["bandit-B403"].severity == "info"  # import pickle: LOW/HIGH
    assert "bandit-B101" not in by_rule  # asserts are not reported
    assert by_rule["bandit-B602"].file == "dags/etl.py"
    assert "b602" in by_rule["bandit-B602"].hint and "# nosec B602" in by_rule["bandit-B602"].hint
    # The check itself is about the task: nothing here runs at import time.
    assert "import-time-side-effect" not in by_rule


def test_bandit_nosec_comment_is_honoured(tmp_path):
    findings = findings_for(
        tmp_path,
        "dags/etl.py",
        """\
        import subprocess


        def run(command):
            subprocess.call(command, shell=True)  # nosec B602 - command comes from a fixed list
        """,
    )
    assert "bandit-B602" not in rules_of(findings)


def test_bandit_runs_once_over_all_python_files(tmp_path, monkeypatch):
    runs = []
    original = bandit_manager.BanditManager.run_tests

    def counting_run_tests(self):
        runs.append(list(self.files_list))
        return original(self)

    monkeypatch.setattr(bandit_manager.BanditManager, "run_tests", counting_run_tests)
    files = [write(tmp_path, f"dags/d{n}.py", "import pickle\n") for n in range(3)]
    files.append(write(tmp_path, "config.yaml", "a: 1\n"))
    findings = check_security(tmp_path, files)
    assert len(runs) == 1 and len(runs[0]) == 3
    assert {f.file for f in findings if f.rule == "bandit-B403"} == {"dags/d0.py", "dags/d1.py", "dags/d2.py"}


def test_bandit_password_tests_are_info_without_the_value(tmp_path):
    password = "Zx9-" + random_token(12)
    findings = findings_for(
        tmp_path,
        "dags/conn.py",
        f"""\
        from airflow.sdk import Connection

        conn = Connection(conn_id="warehouse", conn_type="postgres", password="{password}")
        """,
    )
    # detect-secrets drops this line ("= Connection(...)" looks like an indirect reference); bandit sees it.
    b106 = [f for f in findings if f.rule == "bandit-B106"]
    assert [(f.severity, f.line) for f in b106] == [("info", 3)]
    assert all(password not in f.message + f.hint for f in findings)


def test_a_line_is_not_reported_by_both_bandit_and_detect_secrets(tmp_path):
    findings = findings_for(tmp_path, "dags/a.py", f'db_password = "{random_token(16)}"\n')
    assert [(f.rule, f.line) for f in findings] == [("hardcoded-secret-password", 1)]


def test_bandit_output_does_not_reach_stdout(tmp_path, capsys, caplog):
    # At INFO bandit would draw a progress bar on stdout for more than 50 files.
    caplog.set_level(logging.INFO)
    files = [write(tmp_path, f"dags/d{n:02d}.py", "import subprocess\n") for n in range(60)]
    files.append(write(tmp_path, "dags/broken.py", "def broken(:\n"))
    findings = check_security(tmp_path, files)
    assert len([f for f in findings if f.rule == "bandit-B404"]) == 60
    assert capsys.readouterr().out == ""
    assert not [r for r in caplog.records if r.name.startswith(("bandit", "stevedore"))]


# ------------------------------------------------------------------------------------------------
# 2. detect-secrets
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("relative", "content", "rule", "severity"),
    [
        ("deploy/.env", f"AWS_ACCESS_KEY_ID={AWS_KEY_ID}\n", "hardcoded-secret-aws", "error"),
        (
            "keys/deploy.json",
            '{"key": "-----BEGIN OPENSSH PRIVATE KEY-----"}\n',
            "hardcoded-secret-private-key",
            "error",
        ),
        ("config/settings.cfg", f"[github]\ntoken_value = ghp_{random_token(36)}\n", "hardcoded-secret-token", "error"),
        (
            "dags/notify.py",
            f'SLACK = "xoxb-{random_token(11, string.digits)}-{random_token(24)}"\n',
            "hardcoded-secret-token",
            "error",
        ),
        (
            "config/db.yaml",
            "warehouse:\n  url: postgresql://loader:Pa55-w0rd-x@db.internal:5432/dwh\n",
            "hardcoded-secret-basic-auth",
            "error",
        ),
        ("config/app.ini", "[db]\npassword = Tr0ub4dor-and-3\n", "hardcoded-secret-password", "error"),
        ("dags/blob.py", f'BLOB = "{random_token(48)}"\n', "hardcoded-secret-high-entropy", "warning"),
    ],
)
def test_secret_types_map_to_rules(tmp_path, relative, content, rule, severity):
    findings = findings_for(tmp_path, relative, content)
    secrets = [f for f in findings if f.rule.startswith("hardcoded-secret-")]
    assert [(f.rule, f.severity) for f in secrets] == [(rule, severity)]
    assert secrets[0].file == relative
    assert f"line {secrets[0].line}" in secrets[0].message
    assert "pragma: allowlist secret" in secrets[0].hint


def test_secret_values_never_appear_in_findings(tmp_path):
    token = f"ghp_{random_token(36)}"
    password = "Pa55-" + random_token(10)
    content = f'GITHUB = "{token}"\nurl = "https://bot:{password}@git.example.com/repo.git"\n'
    findings = findings_for(tmp_path, "dags/leak.py", content)
    assert rules_of(findings) >= {"hardcoded-secret-token", "hardcoded-secret-basic-auth"}
    for finding in findings:
        text = f"{finding.message} {finding.hint}"
        assert token not in text and random_token(36) not in text and password not in text


def test_most_specific_type_names_the_finding(tmp_path):
    # AWS key, keyword and Base64 entropy detectors all match this one line.
    findings = findings_for(tmp_path, "dags/a.py", f'aws_secret_access_key = "{AWS_SECRET}"\n')
    assert [f.rule for f in findings] == ["hardcoded-secret-aws"]
    assert "Secret Keyword" in findings[0].message


def test_allowlist_pragma_silences_a_line(tmp_path):
    content = f"""\
        from airflow.sdk import dag

        EXAMPLE_KEY = "{AWS_KEY_ID}"  # pragma: allowlist secret
        """
    assert not findings_for(tmp_path, "dags/docs_example.py", content)


def test_allowlist_pragma_only_covers_its_own_line(tmp_path):
    content = f'A = "{AWS_KEY_ID}"  # pragma: allowlist secret\nB = "{AWS_KEY_ID[:-1]}Z"\n'
    findings = findings_for(tmp_path, "dags/a.py", content)
    assert [(f.rule, f.line) for f in findings] == [("hardcoded-secret-aws", 2)]


def test_templated_and_indirect_values_are_not_secrets(tmp_path):
    content = """\
        from airflow.sdk import Variable

        password = "{{ var.value.db_password }}"
        api_key = Variable.get("api_key")
        postgres_conn_id = "warehouse"
        """
    assert not rules_of(findings_for(tmp_path, "dags/a.py", content)) & set(security.SECRET_RULES)


def test_detect_secrets_global_settings_are_restored(tmp_path):
    before = get_settings().json()
    findings_for(tmp_path, "dags/a.py", f'KEY = "{AWS_KEY_ID}"\n')
    assert get_settings().json() == before


# ------------------------------------------------------------------------------------------------
# 3. import-time side effects
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "shown"),
    [
        ("import os\nos.system('ls')\n", "os.system"),
        ("import os\nos.popen('ls')\n", "os.popen"),
        ("import os\nos.execv('/bin/ls', ['ls'])\n", "os.execv"),
        ("import os\nos.spawnl(os.P_WAIT, '/bin/ls', 'ls')\n", "os.spawnl"),
        ("import subprocess as sp\nsp.run(['ls'])\n", "sp.run"),
        ("from os import system\nsystem('ls')\n", "system"),
        ("from subprocess import check_output as co\nco(['ls'])\n", "co"),
        ("import subprocess\nout = subprocess.Popen(['ls']).communicate()\n", "subprocess.Popen"),
        ("import requests\nrequests.get('https://example.com', timeout=5)\n", "requests.get"),
        ("import requests\nrequests.Session().post('https://example.com', timeout=5)\n", "requests.Session().post"),
        ("import httpx\nhttpx.post('https://example.com')\n", "httpx.post"),
        ("import urllib.request\nurllib.request.urlopen('https://example.com')\n", "urllib.request.urlopen"),
        ("from urllib.request import urlopen as fetch\nfetch('https://example.com')\n", "fetch"),
        ("import http.client\nhttp.client.HTTPSConnection('example.com')\n", "http.client.HTTPSConnection"),
        ("import socket\nsocket.create_connection(('example.com', 80))\n", "socket.create_connection"),
        ("import socket\nsocket.socket().connect(('example.com', 80))\n", "socket.socket().connect"),
        ("import socket\ns = socket.socket()\ns.connect(('example.com', 80))\n", "s.connect"),
        ("exec('x = 1')\n", "exec"),
        ("value = eval('1 + 1')\n", "eval"),
        # Nested in top-level blocks: all of these still run on import.
        ("import os\nif os.environ.get('X'):\n    os.system('ls')\n", "os.system"),
        ("import os\ntry:\n    os.system('ls')\nexcept OSError:\n    pass\n", "os.system"),
        ("import os\nfor name in ['a']:\n    os.system(name)\n", "os.system"),
        ("import os\nwith open('f') as f:\n    os.system('ls')\n", "os.system"),
        ("import os\nif __name__ == '__main__':\n    pass\nelse:\n    os.system('ls')\n", "os.system"),
        # Decorators and default values are evaluated when the module is imported.
        ("import os\ndef f(code=os.system('ls')):\n    return code\n", "os.system"),
        ("import subprocess\n@subprocess.check_call\ndef f():\n    pass\n", "subprocess.check_call"),
    ],
)
def test_import_time_calls_are_flagged(tmp_path, source, shown):
    findings = findings_for(tmp_path, "dags/side_effect.py", source, rule="import-time-side-effect")
    assert len(findings) == 1
    finding = findings[0]
    assert finding.severity == "error"
    assert finding.message.startswith(f"`{shown}(...)`")
    assert "30 s" in finding.hint and "task" in finding.hint


def test_alias_is_resolved_in_the_message(tmp_path):
    (finding,) = findings_for(
        tmp_path, "dags/a.py", "import subprocess as sp\nsp.run(['ls'])\n", rule="import-time-side-effect"
    )
    assert finding.message == "`sp.run(...)` (`subprocess.run`) starts a process when the module is imported"
    assert finding.line == 2


@pytest.mark.parametrize(
    "source",
    [
        # The same calls inside a task, a function, a class body or behind the main guard.
        """\
        import os
        import subprocess as sp
        from datetime import datetime

        import requests
        from airflow.sdk import dag, task


        @dag(schedule=None, start_date=datetime(2024, 1, 1))
        def pipeline():
            @task
            def work():
                os.system("ls")
                sp.run(["ls"])
                requests.get("https://example.com", timeout=5)
                exec("x = 1")

            work()


        pipeline()
        """,
        "import os\nclass Job:\n    def run(self):\n        os.system('ls')\n",
        "import os\nclass Job:\n    os.system('ls')\n",
        "import os\nif __name__ == '__main__':\n    os.system('ls')\n",
        "import os\nrun = lambda: os.system('ls')\n",
        # Look-alikes that are not dangerous.
        "import ast\nimport os\nvalue = ast.literal_eval('1')\npath = os.path.join('a', 'b')\n",
        "import pandas as pd\ndf = pd.DataFrame()\ndf.eval('a + b')\n",
        "def eval(text):\n    return text\neval('shadowed')\n",
        "import socket\nHOST = socket.gethostname()\n",
    ],
)
def test_code_that_does_not_run_at_import_is_not_flagged(tmp_path, source):
    assert not findings_for(tmp_path, "dags/fine.py", source, rule="import-time-side-effect")


def test_import_time_rule_only_applies_to_python_files(tmp_path):
    assert not findings_for(tmp_path, "scripts/setup.sh", "import os\nos.system('ls')\n")


# ------------------------------------------------------------------------------------------------
# Bad input: never crash
# ------------------------------------------------------------------------------------------------


def test_non_utf8_files_do_not_crash(tmp_path):
    files = [
        write(tmp_path, "dags/latin1.py", b"# -*- coding: latin-1 -*-\nname = '\xe9t\xe9'\n"),
        write(tmp_path, "dags/garbage.py", b"x = '\xff\xfe\xfa'\nimport os\nos.system('ls')\n"),
        write(tmp_path, "notes.txt", b"caf\xe9 \xff\n"),
    ]
    findings = check_security(tmp_path, files)
    assert all(f.rule in RULES for f in findings)
    assert not rules_of(findings, "error")


def test_a_5_mb_file_is_skipped_and_reported_as_info(tmp_path):
    line = f'VALUE = "{AWS_KEY_ID}"\n'
    relative = write(tmp_path, "dags/huge.py", line * (5 * 1024 * 1024 // len(line) + 1))
    findings = check_security(tmp_path, [relative])
    assert [(f.rule, f.severity, f.file) for f in findings] == [("security-scan-skipped", "info", relative)]
    assert "5.0 MiB" in findings[0].message


def test_binary_files_are_skipped(tmp_path):
    relative = write(tmp_path, "assets/logo.png", b"\x89PNG\r\n\x1a\n\x00\x00" + AWS_KEY_ID.encode())
    assert check_security(tmp_path, [relative]) == []


def test_missing_files_directories_and_syntax_errors_do_not_crash(tmp_path):
    (tmp_path / "dags").mkdir()
    files = ["missing.py", "dags", write(tmp_path, "dags/broken.py", "import os\nos.system('ls'\n")]
    assert check_security(tmp_path, files) == []


def test_files_outside_the_release_are_never_read(tmp_path):
    outside = tmp_path / "outside"
    write(outside, "creds.py", f'KEY = "{AWS_KEY_ID}"\n')
    root = tmp_path / "release"
    root.mkdir()
    (root / "link.py").symlink_to(outside / "creds.py")
    assert check_security(root, ["link.py", "../outside/creds.py"]) == []


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_does_not_block_the_check(tmp_path):
    os.mkfifo(tmp_path / "pipe.py")
    assert check_security(tmp_path, ["pipe.py"]) == []


def test_results_for_a_file_do_not_depend_on_the_other_files(tmp_path):
    # The pipeline may shard files across a process pool and concatenate the findings.
    files = [path.name for path in SECURITY_FIXTURES]
    together = check_security(FIXTURES, files)
    apart = [finding for name in files for finding in check_security(FIXTURES, [name])]
    assert sorted(together, key=repr) == sorted(apart, key=repr)


def test_only_the_given_files_are_checked(tmp_path):
    write(tmp_path, "a.py", f'KEY = "{AWS_KEY_ID}"\n')
    write(tmp_path, "b.py", f'KEY = "{AWS_KEY_ID}"\n')
    assert {f.file for f in check_security(tmp_path, ["b.py"])} == {"b.py"}
    assert check_security(tmp_path, []) == []


# ------------------------------------------------------------------------------------------------
# Rules metadata
# ------------------------------------------------------------------------------------------------


def test_rules_declare_own_rules_and_bandit_tests():
    assert {
        "hardcoded-secret-aws",
        "hardcoded-secret-private-key",
        "hardcoded-secret-token",
        "hardcoded-secret-basic-auth",
        "hardcoded-secret-password",
        "hardcoded-secret-high-entropy",
        "import-time-side-effect",
        "security-scan-skipped",
        "bandit-B602",
        "bandit-B105",
        "bandit-B403",
    } <= set(RULES)
    assert "bandit-B101" not in RULES
    assert all(description and "\n" not in description for description in RULES.values())


def test_every_emitted_rule_is_declared(tmp_path):
    files = [path.name for path in FIXTURES.iterdir() if path.is_file()]
    findings = check_security(FIXTURES, files)
    assert findings
    assert {f.rule for f in findings} <= set(RULES)


def test_airflows_own_example_dags_raise_no_security_error():
    import airflow

    examples = Path(airflow.__file__).parent / "example_dags"
    files = [p.relative_to(examples).as_posix() for p in examples.rglob("*.py") if "__pycache__" not in p.parts]
    findings = check_security(examples, files)
    assert len(files) > 20 and findings  # bandit does find warnings and infos there
    assert [f.to_dict() for f in findings if f.severity == "error"] == []
