"""Imports check: missing modules found without importing user code, with the pip distribution to install."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_dagops.validate import imports
from airflow_dagops.validate.compat import check_compat
from airflow_dagops.validate.imports import (
    RULES,
    ModuleResolver,
    check_imports,
    likely_distribution,
    provider_distribution,
)
from tests.helpers.repos import write_file as write

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "bad"

DAG_TAIL = """

@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False)
def example():
    @task
    def run() -> int:
        return 1

    run()


example()
"""


def dag_with(imports_block: str) -> str:
    return "import pendulum\nfrom airflow.sdk import dag, task\n" + imports_block + DAG_TAIL


def missing_modules(findings) -> list[str]:
    return [f.message.split("`")[1] for f in findings]


@pytest.mark.parametrize("fixture", sorted(p.name for p in FIXTURES.glob("imports_*.py")))
def test_each_imports_fixture_reports_its_declared_rule_and_severity(fixture):
    severity, rule = (FIXTURES / fixture).read_text().splitlines()[0].removeprefix("# expect:").split()
    findings = check_imports(FIXTURES, [fixture])
    if rule == "provider-missing":
        # The imports step alone reports the module; in the pipeline the dependencies step names the provider
        # distribution instead (tests/validate/test_corpus.py checks the declared rule there).
        rule = "missing-module"
    assert (severity, rule) in {(f.severity, f.rule) for f in findings}, findings


def test_a_module_that_is_nowhere_is_an_error_naming_it():
    [finding] = check_imports(FIXTURES, ["imports_missing_module.py"])
    assert (finding.rule, finding.severity, finding.file, finding.line) == (
        "missing-module",
        "error",
        "imports_missing_module.py",
        6,
    )
    assert "`acme_internal_sdk_nonexistent`" in finding.message
    assert "pip install acme_internal_sdk_nonexistent" in finding.hint


def test_a_missing_provider_names_its_distribution():
    [finding] = check_imports(FIXTURES, ["imports_missing_provider.py"])
    assert (finding.rule, finding.severity, finding.line) == ("missing-module", "error", 7)
    assert "`airflow.providers.amazon.aws.operators.s3`" in finding.message
    assert "`airflow.providers.amazon`" in finding.message
    assert "apache-airflow-providers-amazon" in finding.hint


def test_installed_modules_are_not_flagged(tmp_path):
    source = dag_with(
        "import json\nimport os.path\nimport yaml\nfrom google.protobuf import message\n"
        "from airflow.providers.standard.operators.bash import BashOperator\n"
        "from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator\n"
        "from airflow.sdk.definitions.asset import Asset\n"
    )
    write(tmp_path, "dags/ok.py", source)
    assert check_imports(tmp_path, ["dags/ok.py"]) == []


def test_helpers_in_the_release_are_local_not_missing(tmp_path):
    write(tmp_path, "dags/helpers/__init__.py", "")
    write(tmp_path, "dags/helpers/dates.py", "X = 1\n")
    write(tmp_path, "dags/common_utils.py", "Y = 2\n")
    write(tmp_path, "include/team_lib/sql/queries.py", "Q = 'select 1'\n")  # namespace folders, no __init__
    source = dag_with(
        "import common_utils\nfrom helpers.dates import X\nimport team_lib.sql.queries\n"
        "from dags.helpers import dates\nfrom . import sibling\nfrom .helpers import dates as d2\n"
    )
    write(tmp_path, "dags/etl.py", source)
    assert check_imports(tmp_path, ["dags/etl.py"]) == []


def test_guarded_and_type_checking_imports_are_not_flagged(tmp_path):
    source = dag_with(
        "import contextlib\nfrom typing import TYPE_CHECKING\nimport typing\n"
        "try:\n    import ujson_nonexistent as fast_json\nexcept ImportError:\n    fast_json = None\n"
        "try:\n    import orjson_nonexistent\nexcept (ModuleNotFoundError, OSError):\n    pass\n"
        "try:\n    import anything_nonexistent\nexcept Exception:\n    pass\n"
        "with contextlib.suppress(ImportError):\n    import optional_nonexistent\n"
        "if TYPE_CHECKING:\n    from typing_only_nonexistent import Thing\n"
        "if typing.TYPE_CHECKING:\n    import also_typing_only_nonexistent\n"
    )
    write(tmp_path, "guarded.py", source)
    assert check_imports(tmp_path, ["guarded.py"]) == []


def test_an_import_guard_that_only_reraises_does_not_hide_the_import(tmp_path):
    source = dag_with(
        "try:\n    import required_sdk_nonexistent\nexcept ImportError as err:\n"
        "    raise RuntimeError('install required-sdk') from err\n"
        "if TYPE_CHECKING:\n    pass\nelse:\n    import else_branch_nonexistent\n"
        "try:\n    import fallback_a_nonexistent\nexcept ImportError:\n    import fallback_b_nonexistent\n"
    )
    write(tmp_path, "strict.py", "TYPE_CHECKING = False\n" + source)
    findings = check_imports(tmp_path, ["strict.py"])
    assert missing_modules(findings) == [
        "required_sdk_nonexistent",
        "else_branch_nonexistent",
        "fallback_b_nonexistent",
    ]
    assert {f.rule for f in findings} == {"missing-module"}


def test_imports_inside_functions_warn_unless_the_function_runs_in_another_environment(tmp_path):
    source = dag_with(
        "from airflow.providers.standard.operators.python import PythonVirtualenvOperator\n\n\n"
        "@task\ndef at_runtime():\n    import runtime_only_nonexistent\n\n\n"
        "@task.virtualenv(requirements=['venv-lib'])\ndef in_venv():\n    import venv_only_nonexistent\n\n\n"
        "@task.docker(image='python:3.12')\ndef in_container():\n    import container_only_nonexistent\n\n\n"
        "def callable_for_venv():\n    import callable_venv_nonexistent\n\n\n"
        "PythonVirtualenvOperator(task_id='v', python_callable=callable_for_venv, requirements=['x'])\n"
    )
    write(tmp_path, "runtime.py", source)
    [finding] = check_imports(tmp_path, ["runtime.py"])
    assert (finding.rule, finding.severity) == ("missing-module-runtime", "warning")
    assert "`runtime_only_nonexistent`" in finding.message and finding.line == 8


def test_airflow2_module_paths_are_missing_with_their_airflow3_replacement():
    [finding] = check_imports(FIXTURES, ["compat_airflow2_import.py"])
    assert (finding.rule, finding.severity, finding.line) == ("missing-module", "error", 7)
    assert "`airflow.operators.bash_operator` does not exist in Airflow 3" in finding.message
    assert "`airflow.providers.standard.operators.bash`" in finding.hint
    assert "apache-airflow-providers-standard" in finding.hint


def test_ruff_and_the_imports_check_agree_on_the_airflow2_import():
    """Both report the Airflow 2 BashOperator import; both point at the same new module and provider."""
    [missing] = check_imports(FIXTURES, ["compat_airflow2_import.py"])
    [moved] = [f for f in check_compat(FIXTURES, ["compat_airflow2_import.py"]) if f.rule.startswith("AIR30")]
    for finding in (missing, moved):
        assert finding.severity == "error"
        assert "airflow.providers.standard.operators.bash" in finding.hint
        assert "apache-airflow-providers-standard" in finding.hint


@pytest.mark.parametrize(
    "statement, missing, hint_part",
    [
        ("from airflow.contrib.operators.ssh_operator import SSHOperator", "airflow.contrib", "provider packages"),
        ("from airflow.operators.subdag import SubDagOperator", "airflow.operators.subdag", "TaskGroup"),
        ("from airflow.hooks.base_hook import BaseHook", "airflow.hooks.base_hook", "`airflow.sdk`"),
        ("from airflow.sensors.s3_key_sensor import S3KeySensor", "airflow.sensors.s3_key_sensor", "amazon"),
        ("import airflow.definitely_not_a_module", "airflow.definitely_not_a_module", "upgrade guide"),
    ],
)
def test_other_missing_airflow_paths_get_specific_hints(tmp_path, statement, missing, hint_part):
    write(tmp_path, "old.py", dag_with(statement + "\n"))
    [finding] = check_imports(tmp_path, ["old.py"])
    assert finding.rule == "missing-module" and hint_part in finding.hint
    assert f"`{missing}`" in finding.message or missing in finding.message


FRESH_INTERPRETER_CHECK = """
import json, sys
from airflow_dagops.validate.imports import check_imports
before = {name for name in sys.modules if name.split(".")[0] == "airflow"}
findings = check_imports(sys.argv[1], sys.argv[2:])
imported = sorted(name for name in sys.modules if name.split(".")[0] == "airflow" and name not in before)
print(json.dumps({"rules": [f.rule for f in findings], "airflow_modules_imported": imported}))
"""


def check_in_fresh_interpreter(root: Path, files: list[str]) -> dict:
    """Run the check where nothing of Airflow is imported yet, as `dagops validate` does."""
    result = subprocess.run(
        [sys.executable, "-c", FRESH_INTERPRETER_CHECK, str(root), *files],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_airflow2_paths_that_airflow3_still_serves_are_not_missing(tmp_path):
    # Airflow 3 keeps these as deprecation shims (ruff's AIR311/AIR312 warn about them instead); the shims only
    # exist once their parent package has run, so check from an interpreter that has not imported Airflow yet.
    source = dag_with(
        "from airflow.operators.python import PythonOperator\nfrom airflow.operators.empty import EmptyOperator\n"
        "from airflow.sensors.external_task import ExternalTaskSensor\nfrom airflow.models import Variable\n"
        "import airflow.operators.bash\n"
    )
    write(tmp_path, "shims.py", source)
    assert check_in_fresh_interpreter(tmp_path, ["shims.py"])["rules"] == []
    assert check_imports(tmp_path, ["shims.py"]) == []


def test_an_airflow3_dag_is_checked_without_importing_airflow(tmp_path):
    source = dag_with(
        "from airflow.providers.standard.operators.bash import BashOperator\nfrom airflow.sdk import Asset\n"
    )
    write(tmp_path, "modern.py", source)
    write(tmp_path, "missing.py", dag_with("import not_installed_nonexistent\n"))
    result = check_in_fresh_interpreter(tmp_path, ["modern.py", "missing.py"])
    assert result == {"rules": ["missing-module"], "airflow_modules_imported": []}


def test_a_missing_module_of_an_installed_provider_names_the_provider_version(tmp_path):
    write(tmp_path, "typo.py", dag_with("from airflow.providers.standard.operators.bashh import BashOperator\n"))
    [finding] = check_imports(tmp_path, ["typo.py"])
    assert "installed `apache-airflow-providers-standard`" in finding.message
    assert "`airflow.providers.standard.operators.bashh`" in finding.message


def test_namespace_packages_are_walked_on_disk_and_regular_packages_are_not_imported(tmp_path, monkeypatch):
    site = tmp_path / "site"
    write(site, "acme_ns/present.py", "")  # a namespace package: no __init__
    marker = tmp_path / "imported.marker"
    write(site, "acme_regular/__init__.py", f"open({str(marker)!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(site))
    source = dag_with(
        "from acme_ns import present\nfrom acme_ns import absent_mod\nimport acme_ns.absent_two\n"
        "import acme_regular.made_by_init\n"
    )
    write(tmp_path / "release", "ns.py", source)
    findings = check_imports(tmp_path / "release", ["ns.py"])
    assert missing_modules(findings) == ["acme_ns.absent_mod", "acme_ns.absent_two"]
    # acme_regular/__init__ might create made_by_init: we can't tell without running it, and we never run it.
    assert not marker.exists() and "acme_regular" not in sys.modules


def test_release_code_is_never_imported(tmp_path):
    marker = tmp_path / "ran.marker"
    write(tmp_path / "release", "evil.py", f"open({str(marker)!r}, 'w').close()\n")
    write(tmp_path / "release", "evil_pkg/__init__.py", f"open({str(marker)!r}, 'w').close()\n")
    write(tmp_path / "release", "dag.py", dag_with("import evil\nimport evil_pkg.nothing_here\n"))
    assert check_imports(tmp_path / "release", ["dag.py"]) == []
    assert not marker.exists()


def test_the_same_missing_module_is_reported_once_per_file_at_its_first_import(tmp_path):
    source = dag_with("import gone_nonexistent\nfrom gone_nonexistent import a\nimport gone_nonexistent\n")
    write(tmp_path, "dup.py", source)
    findings = check_imports(tmp_path, ["dup.py"])
    assert [(f.line, missing_modules([f])[0]) for f in findings] == [(3, "gone_nonexistent")]


def test_only_the_given_files_are_checked(tmp_path):
    write(tmp_path, "a.py", dag_with("import a_missing_nonexistent\n"))
    write(tmp_path, "b.py", dag_with("import b_missing_nonexistent\n"))
    findings = check_imports(tmp_path, ["b.py", "notes.txt"])
    assert [f.file for f in findings] == ["b.py"]


def test_bad_inputs_never_raise(tmp_path, monkeypatch):
    root = tmp_path / "release"
    outside = tmp_path / "outside"
    write(outside, "secret.py", "import outside_missing_nonexistent\n")
    files = [
        write(root, "syntax.py", "import broken_nonexistent\ndef f(:\n"),
        write(root, "latin1.py", b'import latin_nonexistent\nx = "h\xe9llo"\n'),
        write(root, "nulls.py", b"import nulls_nonexistent\x00\n"),
        write(root, "deep.py", "x = " + "(" * 5000 + ")" * 5000 + "\n"),
        write(root, "too_long_expr.py", "import long_nonexistent\nx = " + " + ".join(["'a'"] * 50_000) + "\n"),
        write(root, "big.py", "import big_nonexistent\n" + "# padding\n" * 200),
        "vanished.py",
        "../outside/secret.py",
    ]
    (root / "escape.py").symlink_to(outside / "secret.py")
    files.append("escape.py")
    monkeypatch.setattr(imports, "MAX_FILE_BYTES", 1000)
    assert check_imports(root, files) == []


def test_a_long_generated_expression_does_not_exhaust_the_recursion_limit(tmp_path):
    # 1,000 chained `+` parse fine but nest 1,000 BinOp nodes deep: a plain ast.NodeVisitor would overflow.
    write(tmp_path, "generated.py", "import gen_nonexistent\nx = " + " + ".join(["'a'"] * 1000) + "\n")
    assert missing_modules(check_imports(tmp_path, ["generated.py"])) == ["gen_nonexistent"]


@pytest.mark.parametrize(
    "module, distribution",
    [
        ("yaml", "PyYAML"),
        ("sklearn.ensemble", "scikit-learn"),
        ("cv2", "opencv-python"),
        ("PIL.Image", "Pillow"),
        ("bs4", "beautifulsoup4"),
        ("dateutil.parser", "python-dateutil"),
        ("psycopg2.extras", "psycopg2-binary"),
        ("snowflake.connector", "snowflake-connector-python"),
        ("google.cloud.bigquery", "google-cloud-bigquery"),
        ("google.cloud.bigquery_storage", "google-cloud-bigquery-storage"),
        ("dotenv", "python-dotenv"),
        ("jwt", "PyJWT"),
        ("airflow.sdk", "apache-airflow-task-sdk"),
        ("airflow", "apache-airflow"),
        ("acme_internal", "acme_internal"),
        ("airflow.providers.amazon.aws.operators.s3", "apache-airflow-providers-amazon"),
        ("airflow.providers.microsoft.azure.hooks.wasb", "apache-airflow-providers-microsoft-azure"),
        ("airflow.providers.cncf.kubernetes.operators.pod", "apache-airflow-providers-cncf-kubernetes"),
        ("airflow.providers.apache.spark.operators.spark_submit", "apache-airflow-providers-apache-spark"),
        ("airflow.providers.google.cloud.operators.bigquery", "apache-airflow-providers-google"),
        ("airflow.providers.dbt.cloud.operators.dbt", "apache-airflow-providers-dbt-cloud"),
    ],
)
def test_likely_distribution(module, distribution):
    assert likely_distribution(module) == distribution


def test_installed_provider_ids_come_from_get_provider_info(tmp_path):
    resolver = ModuleResolver(tmp_path)
    assert provider_distribution("airflow.providers.common.sql.operators.sql", resolver) == (
        "apache-airflow-providers-common-sql"
    )
    assert provider_distribution("airflow.providers.standard.operators.bash", resolver) == (
        "apache-airflow-providers-standard"
    )


def test_every_emitted_rule_is_declared(tmp_path):
    write(tmp_path, "rt.py", dag_with("@task\ndef f():\n    import rt_nonexistent\n"))
    shutil.copy(FIXTURES / "imports_missing_provider.py", tmp_path / "p.py")
    findings = check_imports(tmp_path, ["rt.py", "p.py"])
    assert {f.rule for f in findings} == set(RULES)
    assert all(f.hint and f.line and f.file for f in findings)
