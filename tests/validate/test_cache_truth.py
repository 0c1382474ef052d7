"""A cache that cannot lie: "a cache may only ever make a check faster, never change its answer" (DESIGN.md).

Every test compares runs that fill and then read the cache with a run without it, on the same folder: the findings
must be the same (rule, severity, file, line, message). The cases are the ways a cache keyed too loosely lies:
identical files at different paths, the same files under another root, a helper, data file, `.airflowignore` or
setting that changed while the file itself did not, and results that belong to no single file.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from airflow_dagops.validate import pipeline, validate
from airflow_dagops.validate.pipeline import PipelineOptions, run_pipeline
from airflow_dagops.validate.report import Finding
from airflow_dagops.validate.structure import DagInfo, StructureResult
from tests.helpers.repos import dag_source

RAISES = 'from airflow.sdk import DAG\nraise RuntimeError("boom")\n'
# Only the checks a case is about run, to keep the sandboxed cases to a few seconds each.
PER_FILE_ONLY = {"structure", "policy"}
STRUCTURE_ONLY = {"security", "compat", "imports", "dependencies"}


def write(root: Path, files: dict[str, str]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return root


def facts(report) -> list[tuple]:
    # Import times are measurements, not answers: a cached run reports the time the file took when it was imported.
    return sorted(
        ((f.rule, f.severity, f.file, f.line, f.message) for f in report.findings if f.rule != "import-time-budget"),
        key=repr,
    )


def run(root: Path, cache: Path | None, skip: set[str]):
    return run_pipeline(root, PipelineOptions(cache_path=cache, skip=set(skip), timeout=20))


def assert_cache_tells_the_truth(root: Path, cache: Path, skip: set[str]):
    """Fill the cache, read it, and compare both with a run without it; returns the uncached report."""
    uncached = run(root, None, skip)
    filling, reading = run(root, cache, skip), run(root, cache, skip)
    assert facts(filling) == facts(uncached)
    assert facts(reading) == facts(uncached)
    return uncached


def files_with(report, rule: str) -> set[str]:
    return {f.file for f in report.findings if f.rule == rule}


# --- Identical files at different paths ------------------------------------------------------------------------------


def test_identical_dag_files_that_fail_to_import_each_fail_on_every_cached_run(tmp_path):
    root = write(tmp_path / "release", {"a.py": RAISES, "b.py": RAISES})
    for _ in range(2):
        report = validate(root, cache_path=tmp_path / "c.db")
        errors = {(f.rule, f.file) for f in report.errors}
        assert {("import-error", "a.py"), ("import-error", "b.py")} <= errors
    assert facts(report) == facts(validate(root, use_cache=False))


def test_identical_files_share_no_per_file_result(tmp_path):
    # DAG files as Airflow's safe mode sees them (they say "airflow" and "dag"): a file without those words is
    # never parsed, and its syntax error would be a warning and its imports unchecked.
    header = '"""An Airflow DAG."""\nfrom airflow.sdk import dag\n'
    bandit = f"{header}import subprocess\n\n\ndef run(cmd):\n    return subprocess.call(cmd, shell=True)\n"
    missing = f"{header}import no_such_module_for_dagops_tests\n"
    root = write(
        tmp_path / "release",
        {
            "dags/a.py": f"{header}def x(:\n",
            "other/a.py": f"{header}def x(:\n",
            "dags/shell.py": bandit,
            "dags/shell_copy.py": bandit,
            "dags/missing.py": missing,
            "lib/missing.py": missing,
        },
    )
    report = assert_cache_tells_the_truth(root, tmp_path / "c.db", PER_FILE_ONLY)
    assert files_with(report, "syntax-error") == {"dags/a.py", "other/a.py"}
    assert files_with(report, "bandit-B602") == {"dags/shell.py", "dags/shell_copy.py"}
    assert files_with(report, "missing-module") == {"dags/missing.py", "lib/missing.py"}


# --- The same files under another root -------------------------------------------------------------------------------


def test_cached_findings_name_the_files_of_the_folder_being_checked(tmp_path, monkeypatch):
    # A check that quotes the absolute path of what it read, as tracebacks and tools do.
    def probe(root: Path, files: list[str]) -> list[Finding]:
        where = Path(root).absolute()
        return [Finding("probe", "error", f"{where}/{f} is odd (in {where})", file=f, hint=str(where)) for f in files]

    monkeypatch.setattr(pipeline, "_per_file_checks", lambda: {"probe": probe})
    first = write(tmp_path / "x", {"dags/a.py": dag_source("a")})
    second = tmp_path / "y"
    shutil.copytree(first, second)
    cache = tmp_path / "c.db"
    run(first, cache, PER_FILE_ONLY)
    report = run(second, cache, PER_FILE_ONLY)
    assert report.stats["cached"]["probe"] == 1
    assert [(f.file, f.message, f.hint) for f in report.findings] == [("dags/a.py", "dags/a.py is odd (in .)", ".")]
    assert facts(report) == facts(run(second, None, PER_FILE_ONLY))


def test_a_failing_dag_fails_under_every_root_without_naming_the_first(tmp_path):
    reads_missing_file = (
        "from pathlib import Path\nfrom airflow.sdk import DAG\n\n"
        '(Path(__file__).parent / "settings.yaml").read_text()\n'
    )
    first = write(
        tmp_path / "x", {"dags/a.py": reads_missing_file, "dags/b.py": RAISES, "dags/ok.py": dag_source("ok")}
    )
    second = tmp_path / "y"
    shutil.copytree(first, second)
    cache = tmp_path / "c.db"
    assert_cache_tells_the_truth(first, cache, STRUCTURE_ONLY)
    report = run(second, cache, STRUCTURE_ONLY)
    assert report.stats["structure_imported"] == 0  # all from the cache filled under the first root
    assert facts(report) == facts(run(second, None, STRUCTURE_ONLY))
    assert files_with(report, "import-error") == {"dags/a.py", "dags/b.py"}
    for finding in report.findings:
        for text in (finding.message, finding.hint or ""):
            assert str(first) not in text and str(first.resolve()) not in text


# --- What decides an answer besides the file itself ------------------------------------------------------------------


def test_rules_in_force_are_part_of_the_key(tmp_path):
    root = write(tmp_path / "release", {"legacy/old.py": "def x(:\n"})
    cache = tmp_path / "c.db"
    run(root, cache, PER_FILE_ONLY)
    write(root, {".dagops.yaml": 'exceptions:\n  "legacy/*.py": [syntax-error]\n'})
    report = run(root, cache, PER_FILE_ONLY)
    assert report.stats["cached"]["syntax"] == 0 and report.passed
    assert facts(report) == facts(run(root, None, PER_FILE_ONLY))


def test_a_broken_helper_fails_the_dags_that_import_it(tmp_path):
    dag = "from airflow.sdk import DAG\nfrom helpers import NAME\n\nwith DAG(NAME, schedule=None):\n    pass\n"
    root = write(tmp_path / "release", {"a.py": dag, "helpers.py": 'NAME = "a"\n'})
    cache = tmp_path / "c.db"
    assert not files_with(assert_cache_tells_the_truth(root, cache, STRUCTURE_ONLY), "import-error")
    write(root, {"helpers.py": "NAME = (\n"})  # a syntax error: the helper itself is never imported alone
    report = assert_cache_tells_the_truth(root, cache, STRUCTURE_ONLY)
    assert files_with(report, "import-error") == {"a.py"}


def test_a_data_file_read_at_import_is_part_of_the_key(tmp_path):
    dag = (
        "from pathlib import Path\nfrom airflow.sdk import DAG\n\n"
        'if (Path(__file__).parent / "mode.txt").read_text().strip() == "bad":\n'
        '    raise RuntimeError("bad mode")\n'
        'with DAG("reads_data", schedule=None):\n    pass\n'
    )
    root = write(tmp_path / "release", {"dags/a.py": dag, "dags/mode.txt": "good\n"})
    cache = tmp_path / "c.db"
    assert not files_with(assert_cache_tells_the_truth(root, cache, STRUCTURE_ONLY), "import-error")
    write(root, {"dags/mode.txt": "bad\n"})
    report = assert_cache_tells_the_truth(root, cache, STRUCTURE_ONLY)
    assert files_with(report, "import-error") == {"dags/a.py"}


def test_airflowignore_and_safe_mode_decide_what_is_imported(tmp_path, monkeypatch):
    no_airflow_words = 'raise RuntimeError("boom")\n'  # safe mode skips a file that never says "airflow" or "dag"
    root = write(tmp_path / "release", {"a.py": RAISES, "plain.py": no_airflow_words, ".airflowignore": "a.py\n"})
    cache = tmp_path / "c.db"
    assert not files_with(assert_cache_tells_the_truth(root, cache, STRUCTURE_ONLY), "import-error")
    write(root, {".airflowignore": ""})
    report = assert_cache_tells_the_truth(root, cache, STRUCTURE_ONLY)
    assert files_with(report, "import-error") == {"a.py"}
    monkeypatch.setenv("AIRFLOW__CORE__DAG_DISCOVERY_SAFE_MODE", "False")
    report = assert_cache_tells_the_truth(root, cache, STRUCTURE_ONLY)
    assert files_with(report, "import-error") == {"a.py", "plain.py"}


def test_a_file_that_stops_saying_airflow_is_no_dag_file_on_a_cached_run(tmp_path):
    """Airflow's listing is kept between runs and brought up to date for the files whose content changed."""
    root = write(tmp_path / "release", {"a.py": RAISES, "b.py": dag_source("b")})
    cache = tmp_path / "c.db"
    assert files_with(assert_cache_tells_the_truth(root, cache, STRUCTURE_ONLY), "import-error") == {"a.py"}
    write(root, {"a.py": 'raise RuntimeError("boom")\n'})  # safe mode skips it now
    assert not files_with(assert_cache_tells_the_truth(root, cache, STRUCTURE_ONLY), "import-error")
    write(root, {"a.py": RAISES})
    assert files_with(assert_cache_tells_the_truth(root, cache, STRUCTURE_ONLY), "import-error") == {"a.py"}


def test_a_fifo_named_like_a_module_never_blocks_a_validation(tmp_path):
    """Reading a FIFO blocks until something writes to it: the module names a file imports are read only from
    regular files, with or without the cache, and for a validation of changed files too."""
    root = write(tmp_path / "release", {"a.py": dag_source("a")})
    os.mkfifo(root / "pipe.py")
    report = assert_cache_tells_the_truth(root, tmp_path / "c.db", STRUCTURE_ONLY)
    assert [d.dag_id for d in report.dags] == ["a"]
    changed = run_pipeline(root, PipelineOptions(skip=STRUCTURE_ONLY, timeout=20, only_files={"a.py"}))
    assert [d.dag_id for d in changed.dags] == ["a"]


# --- Results that belong to no single file ---------------------------------------------------------------------------


def test_findings_about_no_file_or_another_file_are_never_lost_to_the_cache(tmp_path, monkeypatch):
    def probe(root: Path, files: list[str]) -> list[Finding]:
        found = [Finding("probe-tool-missing", "warning", "the tool did not run")]
        found += [Finding("probe-elsewhere", "error", f"seen from {f}", file="elsewhere.py") for f in files]
        return found

    monkeypatch.setattr(pipeline, "_per_file_checks", lambda: {"probe": probe})
    root = write(tmp_path / "release", {"a.py": "x = 1\n", "b.py": "x = 1\n"})
    report = assert_cache_tells_the_truth(root, tmp_path / "c.db", PER_FILE_ONLY)
    assert {(f.rule, f.file) for f in report.findings} == {
        ("probe-tool-missing", None),
        ("probe-elsewhere", "elsewhere.py"),
    }
    assert run(root, tmp_path / "c.db", PER_FILE_ONLY).stats["checked"]["probe"] == 2  # nothing was stored


def test_an_import_that_timed_out_is_imported_again(tmp_path, monkeypatch):
    calls = []

    def check_structure(root, files, **limits):
        calls.append(list(files))
        timeout = Finding("import-timeout", "error", "did not finish", file="slow.py")
        dags = [DagInfo(dag_id="fast", file="fast.py")]
        return StructureResult(
            findings=[timeout] if "slow.py" in files else [], dags=dags if "fast.py" in files else []
        )

    monkeypatch.setattr("airflow_dagops.validate.pipeline.check_structure", check_structure)
    root = write(tmp_path / "release", {"slow.py": RAISES, "fast.py": dag_source("fast")})
    report = assert_cache_tells_the_truth(root, tmp_path / "c.db", STRUCTURE_ONLY | {"policy"})
    assert calls == [["fast.py", "slow.py"], ["fast.py", "slow.py"], ["slow.py"]]
    assert [d.dag_id for d in report.dags] == ["fast"]


@pytest.mark.parametrize("content", [dag_source("same"), RAISES])
def test_a_file_copied_into_a_second_path_gets_its_own_answer(tmp_path, content):
    root = write(tmp_path / "release", {"dags/one.py": content})
    cache = tmp_path / "c.db"
    run(root, cache, STRUCTURE_ONLY)
    write(root, {"dags/two.py": content})
    report = assert_cache_tells_the_truth(root, cache, STRUCTURE_ONLY)
    if content == RAISES:
        assert files_with(report, "import-error") == {"dags/one.py", "dags/two.py"}
    else:
        assert files_with(report, "duplicate-dag-id") == {"dags/one.py", "dags/two.py"}


def test_the_environment_in_every_key_names_each_distribution_as_its_metadata_does():
    """The key's environment is read from the metadata's header lines, not through the email parser: the same
    name and version for every installed distribution (an upgrade still changes every key)."""
    import importlib.metadata

    from airflow_dagops.validate.cache import name_and_version

    dists = list(importlib.metadata.distributions())
    assert len(dists) > 50  # Airflow's installation: a real sample
    assert [name_and_version(d) for d in dists] == [f"{d.metadata['Name']}=={d.version}" for d in dists]
