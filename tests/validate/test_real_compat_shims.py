"""Airflow 2/3 compatibility shims are not false errors.

Real DAG repositories import through `try: <Airflow 3 path>` / `except ImportError: <Airflow 2 path>` (or the other
way round) while their deployments move to Airflow 3. The fallback branch only runs where the `try` fails, so:
an import in the handler of a `try` that works is never reported (neither as a missing module nor as an AIR3xx
finding); a missing `try` import whose fallback works is at most info; when both branches are missing it stays an
error naming the module. `if TYPE_CHECKING:` imports are never missing modules.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from airflow_dagops.validate import validate
from airflow_dagops.validate.compat import check_compat
from airflow_dagops.validate.dependencies import check_providers
from airflow_dagops.validate.imports import check_imports

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "real" / "compat_shims"


def stage(case: str, root: Path) -> Path:
    shutil.copytree(FIXTURES / case, root / "dags", ignore=shutil.ignore_patterns("__pycache__"))
    return root


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    out = {}
    for case in ("good", "bad"):
        tmp_path = tmp_path_factory.mktemp(f"compat_shims_{case}")
        out[case] = validate(stage(case, tmp_path / "release"), cache_path=tmp_path / "cache.db")
    return out


def write(root: Path, name: str, content: str) -> str:
    (root / name).write_text(content)
    return name


def test_real_shims_pass_the_full_pipeline(reports):
    report = reports["good"]
    assert report.errors == [], [f.to_dict() for f in report.errors]
    assert report.passed
    assert len(report.dags) == 3
    # No finding of any kind on a fallback line, nor about a TYPE_CHECKING import.
    assert not [f for f in report.findings if f.rule.startswith("AIR3") or f.rule == "provider-missing"]
    assert not [f for f in report.findings if "mypy_boto3_s3" in f.message or "airflow.operators.dummy" in f.message]


def test_airflow2_first_shims_are_info_naming_the_fallback(reports):
    infos = {(f.file, f.line): f for f in reports["good"].findings if f.rule == "missing-module"}
    assert {f.severity for f in infos.values()} == {"info"}
    assert set(infos) == {("dags/airflow2_first.py", 8), ("dags/airflow2_first.py", 9), ("dags/airflow2_first.py", 15)}
    bash = infos[("dags/airflow2_first.py", 8)].message
    assert (
        "`airflow.operators.bash_operator`" in bash
        and "falls back to `airflow.providers.standard.operators.bash`" in bash
    )
    assert "falls back to `airflow.sdk`" in infos[("dags/airflow2_first.py", 15)].message


def test_neither_branch_importable_is_still_an_error_naming_the_module(reports):
    # As before shims were settled: the error is on the fallback's line, and now names the `try` module too.
    errors = {(f.rule, f.file, f.line): f for f in reports["bad"].errors}
    library = errors[("missing-module", "dags/neither_library.py", 11)].message
    assert library.startswith("cannot import `dagops_shim_fixture_lib_legacy`")
    assert "fallback of `dagops_shim_fixture_lib`" in library
    provider = errors[("missing-module", "dags/neither_provider.py", 11)]
    assert "`airflow.contrib.hooks.slack_webhook_hook`" in provider.message
    assert "`airflow.providers.slack.hooks.slack_webhook`" in provider.message
    assert "apache-airflow-providers-slack" in provider.hint
    assert not reports["bad"].passed


def test_the_handler_of_a_working_try_is_not_checked(tmp_path):
    name = write(
        tmp_path,
        "a.py",
        "try:\n"
        "    from airflow.sdk import DAG\n"
        "except ImportError:\n"
        "    from airflow.contrib.hooks.slack_webhook_hook import SlackWebhookHook\n"
        "    import dagops_nonexistent_shim\n",
    )
    assert check_imports(tmp_path, [name]) == []


def test_a_missing_try_import_with_a_missing_fallback_is_an_error_on_the_fallback_line(tmp_path):
    name = write(
        tmp_path,
        "a.py",
        "try:\n    import dagops_nonexistent_new\nexcept ModuleNotFoundError:\n    import dagops_nonexistent_old\n",
    )
    [finding] = check_imports(tmp_path, [name])
    assert (finding.rule, finding.severity, finding.line) == ("missing-module", "error", 4)
    assert finding.message.startswith("cannot import `dagops_nonexistent_old`")
    assert "`dagops_nonexistent_new`" in finding.message


def test_an_optional_import_without_fallback_and_a_reraise_keep_their_behaviour(tmp_path):
    optional = write(tmp_path, "opt.py", "try:\n    import dagops_nonexistent_a\nexcept ImportError:\n    X = None\n")
    reraise = write(tmp_path, "re.py", "try:\n    import dagops_nonexistent_b\nexcept ImportError:\n    raise\n")
    findings = check_imports(tmp_path, [optional, reraise])
    assert [(f.file, f.severity) for f in findings] == [("re.py", "error")]


def test_a_handler_after_a_try_without_imports_is_checked(tmp_path):
    name = write(
        tmp_path,
        "a.py",
        "import importlib\n"
        "try:\n"
        "    mod = importlib.import_module('x')\n"
        "except ImportError:\n"
        "    import dagops_nonexistent_c\n",
    )
    [finding] = check_imports(tmp_path, [name])
    assert (finding.severity, finding.line) == ("error", 5)


def test_nested_shims_are_settled_one_by_one(tmp_path):
    name = write(
        tmp_path,
        "a.py",
        "try:\n"
        "    import dagops_nonexistent_d\n"
        "except ImportError:\n"
        "    try:\n"
        "        import dagops_nonexistent_e\n"
        "    except ImportError:\n"
        "        import json\n",
    )
    findings = check_imports(tmp_path, [name])
    # The outer fallback (line 5) is missing but has a working fallback of its own: the outer shim works.
    assert [(f.line, f.severity) for f in findings] == [(5, "info")]


def test_type_checking_imports_are_never_missing(tmp_path):
    name = write(
        tmp_path,
        "a.py",
        "import typing\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import dagops_nonexistent_f\n"
        "if typing.TYPE_CHECKING:\n    from dagops_nonexistent_g import X\n",
    )
    assert check_imports(tmp_path, [name]) == []


def test_provider_in_a_fallback_or_with_a_working_fallback_is_not_provider_missing(tmp_path):
    name = write(
        tmp_path,
        "a.py",
        "try:\n"
        "    from airflow.providers.standard.operators.bash import BashOperator\n"
        "except ImportError:\n"
        "    from airflow.providers.dagops_nonexistent.operators import BashOperator\n"
        "try:\n"
        "    from airflow.providers.dagops_nonexistent2.operators.x import XOperator\n"
        "except ImportError:\n"
        "    from airflow.providers.standard.operators.empty import EmptyOperator as XOperator\n",
    )
    assert check_providers(tmp_path, [name]) == []
    [info] = check_imports(tmp_path, [name])
    assert (info.severity, info.line) == ("info", 6)


def test_air3_findings_inside_import_error_handlers_are_dropped_elsewhere_kept(tmp_path):
    name = write(
        tmp_path,
        "a.py",
        "try:\n"
        "    from airflow.sdk import DAG\n"
        "except (ImportError, ModuleNotFoundError):\n"
        "    from airflow.operators.dummy import DummyOperator\n"
        "\n"
        "    DummyOperator(task_id='x')\n"
        "try:\n"
        "    from airflow.sdk import DAG\n"
        "except Exception:\n"
        "    from airflow.contrib.hooks.slack_webhook_hook import SlackWebhookHook\n"
        "\n"
        "    SlackWebhookHook()\n"
        "from airflow.operators.dummy import DummyOperator as Dummy2\n"
        "\n"
        "Dummy2(task_id='y')\n",
    )
    findings = check_compat(tmp_path, [name])
    assert [(f.rule, f.line) for f in findings if f.rule.startswith("AIR3")] == [("AIR302", 15)]
