"""Dependencies: declarations (PEP 723, docstring, requirements.txt, pyproject.toml), checks against an
environment, provider-missing, and conflicts across namespaces."""

from __future__ import annotations

import os
from pathlib import Path

from packaging.requirements import Requirement

from airflow_dagops.validate.declarations import (
    read_declarations,
    read_docstring,
    read_pep723,
    read_pyproject,
    read_requirements_file,
    requirements_from_summary,
)
from airflow_dagops.validate.dependencies import (
    KnownEnvironment,
    check_declarations,
    check_providers,
    conflicts_for,
    dependency_conflicts,
)
from airflow_dagops.validate.pipeline import PipelineOptions, run_pipeline
from airflow_dagops.validate.rules import all_rules
from tests.helpers.repos import dag_source, write_file

ENV = KnownEnvironment({"pandas": "2.2.3", "requests": "2.32.0", "apache-airflow": "3.3.2"})


def declared(result) -> list[tuple[str, int | None]]:
    return [(str(r.requirement), r.line) for r in result.requirements]


def found(findings) -> list[tuple[str, int | None]]:
    return [(f.rule, f.line) for f in findings]


# --- PEP 723 ------------------------------------------------------------------------------------------------------

PEP723 = """\
# /// script
# requires-python = ">=3.10"
# dependencies = [
#   "pandas>=2,<3",
#   "requests==2.32.0; python_version >= '3.10'",
# ]
# ///
from airflow.sdk import dag
"""


def test_pep723_block_gives_each_requirement_its_own_line():
    result = read_pep723(PEP723, "dags/a.py")
    assert result.findings == []
    assert declared(result) == [("pandas<3,>=2", 4), ('requests==2.32.0; python_version >= "3.10"', 5)]
    assert {r.source for r in result.requirements} == {"pep723"}


def test_pep723_other_block_types_and_files_without_blocks_declare_nothing():
    assert read_pep723("# /// pyproject\n# x = 1\n# ///\n", "a.py").requirements == []
    assert read_pep723("import os\n", "a.py").requirements == []


def test_pep723_malformed_toml_is_a_finding_at_its_line():
    text = 'import os\n# /// script\n# dependencies = [\n#   "pandas",\n#   oops\n# ]\n# ///\n'
    result = read_pep723(text, "dags/a.py")
    assert result.requirements == []
    (finding,) = result.findings
    assert (finding.rule, finding.severity, finding.file) == ("dependency-invalid", "error", "dags/a.py")
    assert finding.line == 5  # the `oops` line: TOML's line 3 of the block that opens on line 2
    assert "not valid TOML" in finding.message


def test_pep723_unclosed_duplicate_and_badly_typed_blocks_are_findings():
    unclosed = read_pep723('x = 1\n# /// script\n# dependencies = ["pandas"]\nimport os\n', "a.py")
    assert found(unclosed.findings) == [("dependency-invalid", 2)]
    assert "never closed" in unclosed.findings[0].message
    block = '# /// script\n# dependencies = ["pandas"]\n# ///\n'
    twice = read_pep723(block + "\n" + block, "a.py")
    assert found(twice.findings) == [("dependency-invalid", 5)]
    assert "more than one" in twice.findings[0].message
    not_a_list = read_pep723('# /// script\n# dependencies = "pandas"\n# ///\n', "a.py")
    assert found(not_a_list.findings) == [("dependency-invalid", 1)]


def test_pep723_invalid_requirement_is_reported_on_its_line_and_the_rest_still_count():
    text = '# /// script\n# dependencies = [\n#   "pandas==2.2.3",\n#   "req ==! 1",\n# ]\n# ///\n'
    result = read_pep723(text, "a.py")
    assert declared(result) == [("pandas==2.2.3", 3)]
    assert found(result.findings) == [("dependency-invalid", 4)]
    assert "`req ==! 1` is not a valid requirement" in result.findings[0].message
    assert "\n" not in result.findings[0].message


# --- Docstring ----------------------------------------------------------------------------------------------------

DOCSTRING = '''\
"""Loads the sales data.

Dependencies:
  - pandas==2.2.3
  - requests>=2  # for the API

Owner: data team
  - not-a-dependency==1
"""
from airflow.sdk import dag
'''


def test_docstring_block_lists_requirements_up_to_the_blank_line():
    result = read_docstring(DOCSTRING, "dags/sales.py")
    assert result.findings == []
    assert declared(result) == [("pandas==2.2.3", 4), ("requests>=2", 5)]
    assert {r.source for r in result.requirements} == {"docstring"}


def test_docstring_malformed_item_is_a_finding_and_files_without_the_block_declare_nothing():
    text = '"""Dependencies:\n  - pandas==2.2.3\n  - pandas=2.2.3\n"""\n'
    result = read_docstring(text, "a.py")
    assert declared(result) == [("pandas==2.2.3", 2)]
    assert found(result.findings) == [("dependency-invalid", 3)]
    # Not the module docstring, or a file that does not parse (the syntax check reports it): nothing.
    assert read_docstring('x = 1\n"""Dependencies:\n  - pandas\n"""\n', "a.py").requirements == []
    assert read_docstring('"""Dependencies:\n  - pandas\n"""\ndef x(:\n', "a.py") == read_docstring("", "a.py")


# --- requirements.txt ---------------------------------------------------------------------------------------------


def test_requirements_file_comments_continuations_options_and_includes(tmp_path):
    write_file(
        tmp_path,
        "requirements.txt",
        "# the team's libraries\n"
        "\n"
        "pandas==2.2.3  # pinned for the parquet bug\n"
        "--index-url https://pypi.example.com/simple\n"
        "requests>=2 \\\n"
        "    --hash=sha256:abc\n"
        "-r requirements/extra.txt\n"
        "./wheels/local.whl\n"
        "-e .\n",
    )
    write_file(tmp_path, "requirements/extra.txt", "-r ../requirements.txt\nnumpy<2; python_version < '3'\n")
    result = read_requirements_file(tmp_path, "requirements.txt")
    assert declared(result) == [
        ("pandas==2.2.3", 3),
        ("requests>=2", 5),
        ('numpy<2; python_version < "3"', 2),  # the include cycle back to requirements.txt is read once
    ]
    assert [r.file for r in result.requirements] == ["requirements.txt", "requirements.txt", "requirements/extra.txt"]
    assert found(result.findings) == [
        ("dependency-option-ignored", 4),
        ("dependency-option-ignored", 8),
        ("dependency-option-ignored", 9),
    ]
    assert {f.severity for f in result.findings} == {"info"}


def test_requirements_include_outside_the_repository_is_refused(tmp_path):
    repo = tmp_path / "repo"
    write_file(tmp_path, "secret.txt", "very-secret-token==1\n")
    write_file(repo, "requirements.txt", "-r ../../etc/passwd\n--requirement=../secret.txt\n-r linked.txt\n")
    os.symlink(tmp_path / "secret.txt", repo / "linked.txt")
    result = read_requirements_file(repo, "requirements.txt")
    assert result.requirements == []
    assert found(result.findings) == [("dependency-invalid", 1), ("dependency-invalid", 2), ("dependency-invalid", 3)]
    assert all("outside the repository" in f.message for f in result.findings)
    assert not any("very-secret-token" in f.message for f in result.findings)


def test_requirements_include_that_does_not_exist_and_invalid_lines(tmp_path):
    write_file(tmp_path, "requirements.txt", "-r missing.txt\npandas==\n")
    result = read_requirements_file(tmp_path, "requirements.txt")
    assert found(result.findings) == [("dependency-invalid", 1), ("dependency-invalid", 2)]
    assert "missing.txt does not exist" in result.findings[0].message


# --- pyproject.toml -----------------------------------------------------------------------------------------------


def test_pyproject_dependencies_with_lines_and_malformed_files():
    text = '[project]\nname = "dags"\ndependencies = [\n  "pandas==2.2.3",\n  "requests>=2",\n]\n'
    assert declared(read_pyproject(text, "pyproject.toml")) == [("pandas==2.2.3", 4), ("requests>=2", 5)]
    assert read_pyproject("[tool.ruff]\nline-length = 100\n", "pyproject.toml").requirements == []
    broken = read_pyproject('[project]\ndependencies = ["pandas"\nname = "x"\n', "pyproject.toml")
    assert [f.rule for f in broken.findings] == ["dependency-invalid"] and broken.findings[0].line
    typed = read_pyproject('[project]\ndependencies = "pandas"\n', "pyproject.toml")
    assert found(typed.findings) == [("dependency-invalid", 2)]


def test_release_declarations_come_from_dag_files_and_root_files(tmp_path):
    write_file(tmp_path, "dags/a.py", PEP723)
    write_file(tmp_path, "dags/sales.py", DOCSTRING)
    write_file(tmp_path, "requirements.txt", "pandas==2.2.3\n")
    write_file(tmp_path, "pyproject.toml", '[project]\ndependencies = ["requests>=2"]\n')
    write_file(tmp_path, "dags/sub/requirements.txt", "not-read==1\n")  # only the release root's files count
    result = read_declarations(tmp_path, ["dags/a.py", "dags/sales.py", "dags/sub/requirements.txt"])
    assert {(r.file, r.source) for r in result.requirements} == {
        ("dags/a.py", "pep723"),
        ("dags/sales.py", "docstring"),
        ("requirements.txt", "requirements.txt"),
        ("pyproject.toml", "pyproject"),
    }


# --- Checks against the environment -------------------------------------------------------------------------------


def check(tmp_path: Path, requirements: str, environment=ENV):
    write_file(tmp_path, "requirements.txt", requirements)
    return check_declarations(tmp_path, [], environment).findings


def test_missing_distribution_names_the_exact_requirement(tmp_path):
    (finding,) = check(tmp_path, "polars>=1.0,<2\n")
    assert (finding.rule, finding.severity, finding.location()) == ("dependency-missing", "error", "requirements.txt:1")
    assert "`polars<2,>=1.0`" in finding.message and "no distribution `polars` is installed" in finding.message


def test_version_outside_the_specifier_names_requirement_and_installed_version(tmp_path):
    (finding,) = check(tmp_path, "pandas==2.1.0\n")
    assert finding.rule == "dependency-version"
    assert "`pandas==2.1.0`" in finding.message and "`pandas` 2.2.3 is installed" in finding.message


def test_satisfied_requirements_and_excluded_markers_give_no_findings(tmp_path):
    requirements = (
        "pandas>=2,<3\n"
        "Requests[socks]~=2.32\n"  # names are compared canonically; extras are checked as the base distribution
        "apache_airflow>=3.3\n"
        "polars==1.0; python_version < '3.0'\n"  # marker false here: declared, not checked
    )
    assert check(tmp_path, requirements) == []
    prerelease = KnownEnvironment({"pandas": "3.0.0rc1"})
    assert check(tmp_path, "pandas>=2.5\n", prerelease) == []  # an installed pre-release counts as itself


def test_markers_are_evaluated_for_the_environment_checked(tmp_path):
    windows = KnownEnvironment({}, marker_values={"sys_platform": "win32"})
    assert [f.rule for f in check(tmp_path, "pywin32; sys_platform == 'win32'\n", windows)] == ["dependency-missing"]
    assert check(tmp_path, "pywin32; sys_platform == 'win32'\n", KnownEnvironment({}, {"sys_platform": "linux"})) == []


# --- Providers ----------------------------------------------------------------------------------------------------

PROVIDER_DAG = """\
from airflow.providers.amazon.aws.operators.s3 import S3CreateBucketOperator
from airflow.providers.standard.operators.empty import EmptyOperator

try:
    from airflow.providers.slack.operators.slack import SlackAPIPostOperator
except ImportError:
    SlackAPIPostOperator = None


def later():
    from airflow.providers.http.operators.http import HttpOperator
"""


def test_provider_missing_names_the_distribution_to_install(tmp_path):
    write_file(tmp_path, "dags/p.py", PROVIDER_DAG)
    environment = KnownEnvironment({"apache-airflow-providers-standard": "1.21.0"})
    (finding,) = check_providers(tmp_path, ["dags/p.py"], environment)
    assert (finding.rule, finding.severity, finding.location()) == ("provider-missing", "error", "dags/p.py:1")
    assert "`apache-airflow-providers-amazon` is not installed" in finding.message
    assert "pip install apache-airflow-providers-amazon" in finding.hint
    installed = KnownEnvironment({"apache-airflow-providers-standard": "1", "apache-airflow-providers-amazon": "9"})
    assert check_providers(tmp_path, ["dags/p.py"], installed) == []


def test_two_level_provider_namespaces(tmp_path):
    write_file(tmp_path, "dags/p.py", "from airflow.providers.microsoft.azure.hooks.wasb import WasbHook\n")
    (finding,) = check_providers(tmp_path, ["dags/p.py"], KnownEnvironment({}))
    assert "`apache-airflow-providers-microsoft-azure`" in finding.message


# A DAG file (as Airflow's safe mode sees one) importing a provider that is not installed, on line 1.
S3_DAG = (
    "from airflow.providers.amazon.aws.operators.s3 import S3CreateBucketOperator\n"
    "from airflow.sdk import DAG\n\n"
    'with DAG("make_bucket", schedule=None):\n'
    '    S3CreateBucketOperator(task_id="create", bucket_name="reports")\n'
)


def run(root: Path, tmp_path: Path, **options):
    # imports stays on: provider-missing and missing-module must not both report one import.
    options.setdefault("skip", {"security", "compat", "structure"})
    options.setdefault("cache_path", tmp_path / "cache.db")
    return run_pipeline(root, PipelineOptions(**options))


def test_pipeline_reports_a_missing_provider_once_and_stores_requirements(tmp_path):
    root = tmp_path / "repo"
    write_file(root, "dags/p.py", S3_DAG)
    write_file(root, "dags/ok.py", dag_source("ok"))
    write_file(root, "requirements.txt", "surely-not-installed-dagops-test==1.0\npackaging>=20\n")
    for _ in range(2):  # the second run answers the per-file part from the cache
        report = run(root, tmp_path)
        assert sorted((f.rule, f.location()) for f in report.errors) == [
            ("dependency-missing", "requirements.txt:1"),
            ("provider-missing", "dags/p.py:1"),
        ]
        assert [r["requirement"] for r in report.summary()["requirements"]] == [
            "surely-not-installed-dagops-test==1.0",
            "packaging>=20",
        ]
    assert report.stats["cached"]["dependencies"] == 3  # every file of the release, from the cache
    without_imports = run(root, tmp_path, skip={"security", "compat", "structure", "imports"})
    assert sorted(f.rule for f in without_imports.errors) == ["dependency-missing", "provider-missing"]


def test_pipeline_step_can_be_skipped_and_softened(tmp_path):
    root = tmp_path / "repo"
    write_file(root, "dags/p.py", S3_DAG)
    write_file(root, "requirements.txt", "surely-not-installed-dagops-test==1.0\n")
    skipped = run(root, tmp_path, skip={"security", "compat", "structure", "dependencies"})
    assert [f.rule for f in skipped.findings] == ["missing-module"]  # the imports check still sees the import
    assert skipped.summary()["requirements"] == []
    write_file(root, ".dagops.yaml", "severity: {dependency-missing: warning, provider-missing: warning}\n")
    softened = run(root, tmp_path)
    assert softened.passed
    assert sorted(f.rule for f in softened.warnings) == ["dependency-missing", "provider-missing"]


# --- Across namespaces --------------------------------------------------------------------------------------------


def test_conflicting_pins_are_reported_on_both_sides():
    findings = dependency_conflicts(
        {
            "sales": [Requirement("pandas==2.2.3"), Requirement("requests>=2")],
            "finance": [Requirement("pandas==2.1.0"), Requirement("requests==2.32.0")],
        }
    )
    assert [f.message for f in findings["sales"]] == [
        "`pandas==2.2.3` conflicts with `pandas==2.1.0` needed by namespace `finance` (a declaration): both run in "
        "one Airflow environment"
    ]
    assert [f.message for f in findings["finance"]] == [
        "`pandas==2.1.0` conflicts with `pandas==2.2.3` needed by namespace `sales` (a declaration): both run in "
        "one Airflow environment"
    ]
    assert {f.rule for fs in findings.values() for f in fs} == {"dependency-conflict"}


def test_a_pin_outside_the_other_namespaces_range_conflicts_with_locations_from_summaries():
    sales = {
        "requirements": [
            {"requirement": "numpy<2", "file": "requirements.txt", "line": 3, "source": "requirements.txt"},
            {"requirement": "numpy<2", "file": "dags/a.py", "line": 5, "source": "pep723"},  # same pair: once
        ]
    }
    ml = {"requirements": [{"requirement": "numpy==2.1.0", "file": "dags/train.py", "line": 4, "source": "docstring"}]}
    findings = dependency_conflicts({"sales": requirements_from_summary(sales), "ml": requirements_from_summary(ml)})
    (sales_side,) = findings["sales"]
    (ml_side,) = findings["ml"]
    assert sales_side.location() == "requirements.txt:3" and "namespace `ml` (dags/train.py:4)" in sales_side.message
    assert ml_side.location() == "dags/train.py:4" and "`numpy<2` needed by namespace `sales`" in ml_side.message


def test_conflicts_for_one_candidate_release_against_the_live_ones():
    live = {"finance": [Requirement("pandas==2.1.0")], "sales": [Requirement("pandas==1.0")]}
    # The candidate replaces the namespace's own live release, so only `finance` can conflict with it.
    (finding,) = conflicts_for("sales", [Requirement("pandas>=2.2")], live)
    assert "`pandas>=2.2` conflicts with `pandas==2.1.0` needed by namespace `finance`" in finding.message
    assert conflicts_for("sales", [Requirement("pandas==2.1.0")], live) == []


def test_compatible_requirements_do_not_conflict():
    findings = dependency_conflicts(
        {
            "a": [
                Requirement("pandas==2.2.3"),
                Requirement("numpy>=1.26"),
                Requirement("polars==1.0; python_version<'3'"),
            ],
            "b": [
                Requirement("pandas>=2,<3"),
                Requirement("numpy<3"),
                Requirement("PANDAS==2.2.3.0"),
                Requirement("polars==2.0"),
            ],
            "c": [Requirement("numpy>=1"), Requirement("numpy>=2")],
        }
    )
    assert findings == {"a": [], "b": [], "c": []}
    assert dependency_conflicts({"solo": [Requirement("x==1"), Requirement("x==2")]}) == {"solo": []}


def test_every_dependency_rule_is_in_the_catalogue_and_the_docs():
    rules = all_rules()
    doc = (Path(__file__).resolve().parents[2] / "docs" / "validation.md").read_text()
    for rule in (
        "dependency-invalid",
        "dependency-option-ignored",
        "dependency-missing",
        "dependency-version",
        "provider-missing",
        "dependency-conflict",
    ):
        assert rule in rules
        assert f"`{rule}`" in doc
