"""(h) `pytest --dagops-integrity` over a generated 200-DAG repository vs the plain DagBag test teams write.

Both sides are what a CI job runs: a fresh `pytest` process. The baseline is the classic DAG integrity test
(`assert DagBag(dag_folder).import_errors == {}` in one test), the subject the dagops integrity mode
(every validation step, one test per DAG file) with the validation cache off, so each run does all the work.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from benchmarks.repos import make_dag_repo
from benchmarks.timing import Measurement, Samples, ratio_goal, timed

N_DAGS = 200
DAGBAG_TEST = """
from airflow.dag_processing.dagbag import DagBag


def test_every_dag_imports():
    bag = DagBag(dag_folder="{folder}")
    assert bag.import_errors == {{}}
    assert len(bag.dag_ids) == {n_dags}
"""


def _pytest(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    summary = (result.stdout.strip().splitlines() or ["(no output)"])[-1]
    if result.returncode != 0:
        raise RuntimeError(f"pytest {' '.join(args)} failed: {summary}\n{result.stderr[-2000:]}")
    return summary


def _dagops_validate(cwd: Path, env: dict[str, str]) -> None:
    """The same pipeline through the CLI: the difference to the integrity run is what pytest and the plugin add."""
    dagops = Path(sys.executable).with_name("dagops")
    result = subprocess.run(
        [str(dagops), "validate", "dags", "--no-cache"], cwd=cwd, env=env, capture_output=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"dagops validate failed: {result.stdout[-2000:]!r}")


def measure_integrity_tests(work: Path, reps: int, progress: Callable[[str], None]) -> Measurement:
    repo = make_dag_repo(work / "integrity-src", N_DAGS, prefix="int")
    root = work / "integrity-repo"
    shutil.copytree(repo.path, root, ignore=shutil.ignore_patterns(".git"))
    (root / "tests").mkdir()
    (root / "tests" / "test_dagbag.py").write_text(DAGBAG_TEST.format(folder=root / "dags", n_dags=N_DAGS))
    env = {**os.environ, "XDG_CACHE_HOME": str(work / "integrity-cache")}
    integrity_args = ["--dagops-integrity", "dags", "--dagops-no-cache"]
    integrity = Samples(f"`pytest --dagops-integrity dags/` ({N_DAGS} DAG files, no cache)", role="subject")
    plain = Samples("`pytest` of one test asserting `DagBag(dag_folder).import_errors == {}`")
    cli = Samples("`dagops validate dags/ --no-cache` (the same pipeline without pytest)", role="breakdown")
    cached = Samples("`pytest --dagops-integrity dags/` with the validation cache filled", role="breakdown")
    _pytest(["tests"], root, env)  # warm-up: the first run pays the OS file cache for both sides
    summary = ""
    for rep in range(reps):
        progress(f"(h) {rep + 1}/{reps}: integrity tests and a DagBag test over {N_DAGS} DAG files")
        ms, summary = timed(lambda: _pytest(integrity_args, root, env))
        integrity.ms.append(ms)
        ms, _ = timed(lambda: _pytest(["tests"], root, env))
        plain.ms.append(ms)
        ms, _ = timed(lambda: _dagops_validate(root, env))
        cli.ms.append(ms)
    _pytest(["--dagops-integrity", "dags"], root, env)  # fill the cache
    for _ in range(reps):
        ms, _ = timed(lambda: _pytest(["--dagops-integrity", "dags"], root, env))
        cached.ms.append(ms)
    return Measurement(
        "h",
        f"(h) Integrity tests of a {N_DAGS}-DAG repository vs a plain DagBag test",
        "Each side is a fresh `pytest` process in the repository, as in CI: "
        "`pytest --dagops-integrity dags/ --dagops-no-cache` (the whole validation pipeline, one test per "
        "DAG file) vs `pytest tests/` running one test that loads `DagBag(dag_folder=...)`; interleaved.",
        [integrity, plain, cli, cached],
        [ratio_goal("integrity tests ≤ 2.0× a plain DagBag test", integrity, plain, 2.0)],
        [
            f"Last integrity run: {summary}. The plugin adds little to the pipeline itself (compare the "
            "`dagops validate` row); a cold run costs what full validation costs (see (e)), and a run with "
            "the validation cache filled (the usual case locally and in CI with a kept cache) costs about a "
            "plain DagBag test."
        ],
    )
