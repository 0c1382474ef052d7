"""The structure step: DAG files loaded by Airflow's DagBag in sandboxed children.

Starting a sandbox costs an Airflow import (~2 s), so each test that needs real children loads several files in
one `check_structure` call; the pure functions (environment scrubbing, death classification, cross-file rules)
are tested directly.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import textwrap
from pathlib import Path

import pytest

from airflow_dagops.redaction import is_sensitive
from airflow_dagops.validate import structure
from airflow_dagops.validate.structure import (
    DEFAULT_MEMORY_LIMIT,
    DEFAULT_TIMEOUT,
    RULES,
    DagInfo,
    SandboxLimits,
    SandboxUnavailable,
    check_structure,
    dag_id_taken_findings,
    death_outcome,
    duplicate_dag_id_findings,
    parse_settings,
    python_files_inside,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
BAD = sorted(p for p in (FIXTURES / "bad").glob("structure_*") if p.name != "__pycache__")
GOOD = sorted((FIXTURES / "good").glob("*.py"))
MEMORY_LIMIT = 512 * 2**20


def expectation(case: Path) -> tuple[str, str]:
    first = (case / "EXPECT" if case.is_dir() else case).read_text().split("\n", 1)[0]
    severity, rule = first.removeprefix("# expect: ").split()
    return severity, rule


def case_files(case: Path) -> list[str]:
    if case.is_dir():
        return sorted(f"{case.name}/{p.name}" for p in case.glob("*.py"))
    return [case.name]


def dag_file(body: str, *, dag_id: str) -> str:
    """A real Airflow 3 DAG file whose top-level code runs `body` first."""
    return (
        textwrap.dedent(body).strip()
        + "\n\n"
        + textwrap.dedent(
            f"""
        import pendulum
        from airflow.sdk import dag, task


        @dag(
            dag_id="{dag_id}", schedule=None, start_date=pendulum.datetime(2024, 1, 1), tags=["t"]
        )
        def {dag_id}():
            @task
            def noop():
                return 1

            noop()


        {dag_id}()
        """
        )
    )


def rules_by_file(result) -> dict[str, set[tuple[str, str]]]:
    found: dict[str, set[tuple[str, str]]] = {}
    for f in result.findings:
        found.setdefault(f.file, set()).add((f.severity, f.rule))
    return found


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Every structure fixture and every good fixture, loaded in ONE call: the hang and the memory hog share the
    call with the others, so this also shows the validator survives them and still reports everything else."""
    root = tmp_path_factory.mktemp("release")
    for case in BAD:
        if case.is_dir():
            shutil.copytree(case, root / case.name, ignore=shutil.ignore_patterns("EXPECT", "__pycache__"))
        else:
            shutil.copy(case, root / case.name)
    for case in GOOD:
        shutil.copy(case, root / case.name)
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.py"))
    result = check_structure(root, files, timeout=3, memory_limit=MEMORY_LIMIT, workers=2)
    return root, files, result


def test_the_corpus_has_the_structure_cases():
    expected = {expectation(case)[1] for case in BAD}
    assert expected >= {"import-timeout", "import-memory-limit", "import-exit", "dag-cycle", "duplicate-dag-id"}
    assert expected >= {"variable-at-import", "no-dag-in-file", "import-error"}
    assert {p.name for p in GOOD} >= {"taskflow.py", "dynamic_mapping.py", "assets.py", "task_groups.py"}


@pytest.mark.parametrize("case", BAD, ids=[p.name for p in BAD])
def test_each_bad_fixture_reports_exactly_its_rule(case, corpus):
    _, _, result = corpus
    severity, rule = expectation(case)
    found = rules_by_file(result)
    for file in case_files(case):
        assert found.get(file) == {(severity, rule)}, f"{file}: {found.get(file)}"


@pytest.mark.parametrize("case", GOOD, ids=[p.name for p in GOOD])
def test_each_good_fixture_loads_cleanly_and_lists_its_dags(case, corpus):
    _, _, result = corpus
    assert rules_by_file(result).get(case.name) is None
    dags = [d for d in result.dags if d.file == case.name]
    assert dags, f"{case.name} defines no DAG"
    assert all(d.task_count > 0 and d.schedule_explicit and d.owners and d.tags and d.line for d in dags)
    assert result.import_seconds[case.name] < 3


def test_the_hang_and_the_memory_hog_do_not_stop_the_other_files(corpus):
    _, files, result = corpus
    assert set(result.import_seconds) == set(files)  # every file got loaded and timed, the hang included
    assert result.import_seconds["structure_infinite_loop.py"] >= 3
    hog = next(f for f in result.findings if f.file == "structure_memory_hog.py")
    assert hog.message.startswith("MemoryError") and hog.line == 9
    assert {d.dag_id for d in result.dags} >= {"good_taskflow", "good_assets_consumer", "good_task_groups"}


def test_import_error_names_the_exception_and_trims_the_traceback_to_user_frames(corpus):
    _, _, result = corpus
    error = next(f for f in result.findings if f.rule == "import-error")
    assert error.file == "structure_import_error.py" and error.line == 17
    assert error.message.startswith("ValueError: retention for 'invoices' must be a number of days")
    assert 'File "structure_import_error.py", line 22, in <module>' in error.message
    assert 'File "structure_import_error.py", line 17, in parse_retention' in error.message
    assert "site-packages" not in error.message and "importlib" not in error.message
    assert error.hint


def test_dag_facts_come_from_the_loaded_dags(corpus):
    _, _, result = corpus
    by_id = {d.dag_id: d for d in result.dags}
    consumer = by_id["good_assets_consumer"]
    assert consumer.schedule == "assets: s3://reports/daily.parquet" and consumer.line == 27
    mapping = by_id["good_dynamic_mapping"]
    assert (mapping.schedule, mapping.retries, mapping.owners, mapping.task_count) == ("0 3 * * *", 3, ["warehouse"], 3)
    assert by_id["good_task_groups"].task_count == 5


def test_cycle_and_exit_and_variable_findings_point_at_the_line(corpus):
    _, _, result = corpus
    lines = {f.rule: f.line for f in result.findings}
    assert lines["dag-cycle"] == 10  # the `with DAG(` line
    assert lines["import-exit"] == 14  # sys.exit(...)
    assert lines["variable-at-import"] == 9  # Variable.get(...)
    assert lines["import-timeout"] == 12  # where the loop was spinning when Airflow's alarm fired
    no_dag = next(f for f in result.findings if f.rule == "no-dag-in-file")
    assert "weekly_cleanup()" in no_dag.message


def test_every_emitted_rule_is_declared_and_hinted(corpus):
    _, _, result = corpus
    assert {f.rule for f in result.findings} <= set(RULES)
    assert all(f.hint for f in result.findings)


SECRET_ENV = {
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql://airflow:hunter2@db/airflow",
    "AIRFLOW__CORE__SQL_ALCHEMY_CONN": "postgresql://airflow:hunter2@db/airflow",
    "AIRFLOW__DAGOPS__SQL_ALCHEMY_CONN": "postgresql://dagops:hunter2@db/dagops",
    "AIRFLOW_CONN_WAREHOUSE": "postgresql://etl:hunter2@warehouse/db",
    "AIRFLOW_VAR_API_URL": "https://api.example.com",
    "AIRFLOW__CORE__FERNET_KEY": "x" * 44,
    "AIRFLOW__API__SECRET_KEY": "s3cr3t",
    "AIRFLOW__CORE__SQL_ALCHEMY_CONN_CMD": "cat /etc/airflow-db-url",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "GITHUB_TOKEN": "ghp_example",
    "SMTP_PASSWORD": "hunter2",
    "REPORTING_DSN": "mysql://report:hunter2@reporting/db",
}


def test_the_child_sees_no_db_url_no_connections_no_secrets_and_runs_in_a_temp_dir(tmp_path, monkeypatch):
    import airflow.configuration  # noqa: F401 - the parent's Airflow must not itself pick up the fake DB URL below

    for name, value in SECRET_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DAGOPS_TEST_VISIBLE", "yes")
    root = tmp_path / "release"
    (root / "helpers").mkdir(parents=True)
    secret_words = ("SECRET", "TOKEN", "PASSWORD", "KEY")
    (root / "env_dump.py").write_text(
        dag_file(
            """
            import os
            from airflow.sdk import BaseHook, Variable

            # Variables and Connections are answered by placeholders,
            # without the metadata DB or a secrets backend.
            REGION = Variable.get("region")
            SETTINGS = Variable.get("settings", deserialize_json=True)
            CONN_TYPE = BaseHook.get_connection("warehouse").conn_type
            assert (REGION, SETTINGS, CONN_TYPE) == ("placeholder", {}, "placeholder")
            """,
            dag_id="env_dump",
        )
    )
    # What the sandbox's environment looks like, told through the only channel a DAG file has: its findings.
    (root / "probe.py").write_text(
        f"""# an airflow dag file that reports what it sees
import json, os

SECRETS = {sorted(SECRET_ENV)!r}
SEEN = {{
    "visible": os.environ.get("DAGOPS_TEST_VISIBLE"),
    "secret_names": [n for n in os.environ if n in SECRETS or n.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_",
                     "AIRFLOW__DATABASE__")) or any(w in n.upper() for w in {secret_words!r})],
    "hunter2": any("hunter2" in v for v in os.environ.values()),
    "home": os.environ["HOME"],
    "airflow_home": os.environ["AIRFLOW_HOME"],
    "cwd": os.getcwd(),
    "gc": __import__("gc").isenabled(),
}}
raise RuntimeError("SEEN " + json.dumps(SEEN))
"""
    )
    # Neither of these is considered by Airflow: one is in .airflowignore, the other lacks "airflow"/"dag".
    (root / ".airflowignore").write_text("helpers/\n")
    (root / "helpers" / "broken.py").write_text("from airflow.sdk import dag\nraise RuntimeError('never imported')\n")
    (root / "plain.py").write_text("raise RuntimeError('never imported either')\n")
    # A helper module that reads a Variable and fails: both are reported on each DAG file that imports it.
    (root / "shared").mkdir()
    (root / "shared" / "__init__.py").write_text("")
    (root / "shared" / "config.py").write_text(
        "from airflow.sdk import Variable\n\nBUCKET = Variable.get('bucket')\n\n\ndef region():\n"
        "    raise KeyError('region is not configured')\n"
    )
    (root / "with_helper.py").write_text(
        dag_file("from shared import config\n\nREGION = config.region()", dag_id="with_helper")
    )
    (root / "with_helper_too.py").write_text(dag_file("from shared.config import BUCKET", dag_id="with_helper_too"))
    result = check_structure(
        root,
        [
            "env_dump.py",
            "probe.py",
            "helpers/broken.py",
            "plain.py",
            "README.md",
            "with_helper.py",
            "with_helper_too.py",
        ],
        timeout=30,
        dag_owners={"env_dump": "team-b"},
    )

    probe = next(f for f in result.findings if f.file == "probe.py")
    seen = json.loads(probe.message.split("SEEN ", 1)[1].splitlines()[0])
    dag_line = (root / "env_dump.py").read_text().splitlines().index("@dag(") + 1
    assert seen["visible"] == "yes" and seen["secret_names"] == [] and seen["hunter2"] is False
    assert seen["gc"] is True  # off while the zygote imports Airflow, on for DAG code (structure.BOOTSTRAP)
    home = Path(seen["home"])
    assert home != Path.home() and Path(seen["airflow_home"]) != Path(os.environ.get("AIRFLOW_HOME", "/nonexistent"))
    assert Path(seen["cwd"]) != Path.cwd() and not Path(seen["cwd"]).is_relative_to(root)
    assert not home.exists()  # the sandbox's own home (inside bwrap), or its temporary directory, is gone
    assert {(f.rule, f.file, f.line) for f in result.findings} == {
        ("variable-at-import", "env_dump.py", 6),
        ("variable-at-import", "env_dump.py", 7),
        ("dag-id-taken", "env_dump.py", dag_line),
        ("import-error", "probe.py", 15),
        ("variable-at-import", "with_helper.py", 1),  # the import line: the read itself is in shared/config.py
        ("import-error", "with_helper.py", 3),
        ("variable-at-import", "with_helper_too.py", 1),  # helpers are re-imported per file, as in production
    }
    taken = next(f for f in result.findings if f.rule == "dag-id-taken")
    assert taken.severity == "error" and "team-b" in taken.message
    variables = next(f for f in result.findings if f.rule == "variable-at-import" and f.line == 6)
    assert "'region'" in variables.message and "'settings'" not in variables.message  # one finding per line
    helper_read = next(f for f in result.findings if f.rule == "variable-at-import" and f.file == "with_helper.py")
    assert "(in shared/config.py:3)" in helper_read.message
    helper_error = next(f for f in result.findings if f.rule == "import-error" and f.file == "with_helper.py")
    assert helper_error.message.startswith("KeyError: 'region is not configured'")
    assert 'File "shared/config.py", line 7, in region' in helper_error.message
    # Ignored and non-DAG files are not imported.
    assert set(result.import_seconds) == {"env_dump.py", "probe.py", "with_helper.py", "with_helper_too.py"}


def test_children_that_swallow_the_alarm_exit_abort_or_kill_the_sandbox_are_reported_and_replaced(tmp_path):
    root = tmp_path / "release"
    root.mkdir()
    (root / "stubborn.py").write_text(
        dag_file(
            """
            import time

            while True:
                try:
                    time.sleep(60)
                except BaseException:  # swallows Airflow's timeout alarm: only a kill stops it
                    pass
            """,
            dag_id="stubborn",
        )
    )
    (root / "hard_exit.py").write_text(dag_file("import os\n\nos._exit(3)", dag_id="hard_exit"))
    (root / "aborts.py").write_text(dag_file("import os\n\nos.abort()", dag_id="aborts"))
    # Tries to kill the process that forked it: the sandbox refuses (and inside bwrap, its parent is out of sight).
    (root / "kills_parent.py").write_text(
        dag_file("import os, signal\n\nos.kill(os.getppid(), signal.SIGKILL)", dag_id="k")
    )
    (root / "fine.py").write_text(dag_file("", dag_id="fine"))
    files = ["stubborn.py", "hard_exit.py", "aborts.py", "kills_parent.py", "fine.py"]

    result = check_structure(root, files, timeout=1, memory_limit=MEMORY_LIMIT, workers=1)

    assert {(f.file, f.severity, f.rule) for f in result.findings} == {
        ("stubborn.py", "error", "import-timeout"),
        ("hard_exit.py", "error", "import-exit"),
        ("aborts.py", "error", "import-crash"),
        ("kills_parent.py", "error", "sandbox-process"),
    }
    assert [d.dag_id for d in result.dags] == ["fine"]  # loaded by a fresh generation after four dead ones
    assert "exit code 3" in next(f.message for f in result.findings if f.file == "hard_exit.py")


def test_no_python_file_means_no_sandbox(tmp_path, monkeypatch):
    monkeypatch.setattr(structure, "Sandbox", None)  # would fail if the step tried to start children
    (tmp_path / "notes.txt").write_text("airflow dag")
    result = check_structure(tmp_path, ["notes.txt", "missing.py"], timeout=1)
    assert (result.findings, result.dags, result.import_seconds) == ([], [], {})


def test_a_sandbox_that_cannot_start_raises_a_dagops_error(tmp_path, monkeypatch):
    (tmp_path / "a.py").write_text(dag_file("", dag_id="a"))
    monkeypatch.setattr(sys, "executable", shutil.which("false"))
    with pytest.raises(SandboxUnavailable, match="exited while starting"):
        check_structure(tmp_path, ["a.py"], timeout=1)


def test_files_outside_the_root_or_not_python_are_never_loaded(tmp_path):
    outside = tmp_path / "outside.py"
    outside.write_text("raise SystemExit")
    root = tmp_path / "release"
    root.mkdir()
    (root / "inside.py").write_text("x = 1")
    (root / "link.py").symlink_to(outside)
    assert python_files_inside(root, ["inside.py", "link.py", "../outside.py", "inside.py", "data.json"]) == [
        "inside.py"
    ]


@pytest.mark.parametrize(
    ("name", "value", "sensitive"),
    [
        ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "sqlite:////x.db", True),
        ("AIRFLOW__DAGOPS__SQL_ALCHEMY_CONN", "sqlite:////d.db", True),
        ("AIRFLOW_CONN_S3", "aws://", True),
        ("AIRFLOW_VAR_FOO", "bar", True),
        ("AIRFLOW__WEBSERVER__SECRET_KEY", "k", True),
        ("AIRFLOW__CORE__FERNET_KEY", "k", True),
        ("AIRFLOW__CELERY__BROKER_URL_CMD", "cat /run/url", True),
        ("AWS_ACCESS_KEY_ID", "AKIA...", True),
        ("SSH_AUTH_SOCK", "/tmp/agent", True),
        ("ANALYTICS_URL", "https://user:pw@analytics.example.com", True),
        ("LEGACY_DB", "postgresql+psycopg2://db/analytics", True),
        ("PATH", "/usr/bin", False),
        ("LANG", "C.UTF-8", False),
        ("AIRFLOW__CORE__EXECUTOR", "CeleryExecutor", False),
        ("DEPLOY_ENV", "prod", False),
        ("DOCS_URL", "https://docs.example.com/a:b", False),
    ],
)
def test_environment_scrubbing(name, value, sensitive):
    assert is_sensitive(name, value) is sensitive


@pytest.mark.parametrize(
    ("status", "log_tail", "rule"),
    [
        ({"exitcode": 3}, "", "import-exit"),
        ({"exitcode": 1}, "MemoryError\n", "import-memory-limit"),
        ({"signal": int(signal.SIGKILL)}, "", "import-memory-limit"),  # not ours: the kernel's OOM killer
        (
            {"signal": int(signal.SIGABRT)},
            "terminate called after throwing an instance of 'std::bad_alloc'",
            "import-memory-limit",
        ),
        ({"signal": int(signal.SIGSEGV)}, "", "import-crash"),
    ],
)
def test_a_dead_child_is_classified(status, log_tail, rule):
    outcome = death_outcome("dag.py", status, log_tail)
    (problem,) = outcome["problems"]
    assert problem["rule"] == rule and problem["file"] == "dag.py"
    assert problem["rule"] in RULES


def test_duplicate_dag_ids_are_reported_on_every_file_that_defines_them():
    dags = [DagInfo("a", "one.py", line=3), DagInfo("a", "two.py", line=7), DagInfo("b", "two.py")]
    findings = duplicate_dag_id_findings(dags)
    assert [(f.rule, f.file, f.line) for f in findings] == [
        ("duplicate-dag-id", "one.py", 3),
        ("duplicate-dag-id", "two.py", 7),
    ]
    assert "two.py:7" in findings[0].message and "one.py:3" in findings[1].message
    assert dag_id_taken_findings(dags, {"b": "other"})[0].file == "two.py"
    assert dag_id_taken_findings(dags, {}) == []


def test_the_worker_module_imports_no_airflow_at_import_time():
    # The parent imports nothing from the worker, but the worker must stay importable without side effects.
    code = "import sys, airflow_dagops.validate.sandbox_worker; print('airflow' in sys.modules)"
    import subprocess

    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ)
    assert shown.stdout.strip() == "False"


def test_limits_default_to_airflows_import_timeout_and_one_gib(monkeypatch):
    monkeypatch.setenv("AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT", "7")
    limits = SandboxLimits.resolve(None, None)
    assert (limits.timeout, limits.memory_limit) == (7.0, DEFAULT_MEMORY_LIMIT) and limits.kill_after > 7
    monkeypatch.setenv("AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT", "0")  # "no timeout" for Airflow; the validator caps it
    assert SandboxLimits.resolve(None, 0).timeout == DEFAULT_TIMEOUT
    assert SandboxLimits.resolve(2.5, 0) == SandboxLimits(timeout=2.5, memory_limit=0)


def test_parse_settings_forward_the_parents_airflow_config_but_not_what_the_environment_already_sets(monkeypatch):
    monkeypatch.setenv("AIRFLOW__CORE__DAG_DISCOVERY_SAFE_MODE", "False")
    forwarded = parse_settings(os.environ)
    assert "AIRFLOW__CORE__EXECUTOR" in forwarded and "AIRFLOW__CORE__DAG_DISCOVERY_SAFE_MODE" not in forwarded
    assert not [name for name in forwarded if is_sensitive(name, forwarded[name])]


def test_files_the_caller_listed_are_loaded_without_a_second_listing_in_the_sandbox(tmp_path):
    # The pipeline chooses the files with Airflow's listing (files.parse_view) and says so: the sandbox then takes
    # its word rather than listing the folder again. Without the word, it skips what its own listing leaves out.
    (tmp_path / ".airflowignore").write_text("ignored/\n")
    (tmp_path / "ignored").mkdir()
    (tmp_path / "ignored" / "job.py").write_text(dag_file("", dag_id="ignored_job"))
    own_listing = check_structure(tmp_path, ["ignored/job.py"], memory_limit=MEMORY_LIMIT)
    assert own_listing.dags == [] and own_listing.import_seconds == {}
    callers_listing = check_structure(tmp_path, ["ignored/job.py"], memory_limit=MEMORY_LIMIT, listed=True)
    assert [dag.dag_id for dag in callers_listing.dags] == ["ignored_job"]
