"""(e) Full validation of a generated 500-file repository against a plain `DagBag` load of the same folder,
and (f) revalidation after a 1-file change against that full run.

Both sides run in process: the pipeline as a sync task runs it (its sandbox workers are child processes
it starts and pays for), `DagBag(dag_folder=...)` as the dag-processor would parse the folder.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from benchmarks.repos import dag_path, dag_source, make_dag_repo
from benchmarks.timing import Goal, Measurement, Samples, timed

N_FILES = 500


def _dagbag_load(folder: Path) -> int:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(folder))
    return len(bag.dag_ids)


def _validate(folder: Path, cache: Path | None):
    from airflow_dagops.validate import validate

    return validate(folder, use_cache=cache is not None, cache_path=cache)


def measure_validation(work: Path, reps: int, progress: Callable[[str], None]) -> list[Measurement]:
    repo = make_dag_repo(work / "validation-src", N_FILES, prefix="val")
    folder = work / "validation-release"
    shutil.copytree(repo.path, folder, ignore=shutil.ignore_patterns(".git"))
    full, plain, incremental = (
        Samples("dagops full validation (no cache)", role="subject"),
        Samples("plain `DagBag(dag_folder=...)` load of the same folder"),
        Samples("dagops revalidation after a 1-file change (cache)", role="subject"),
    )
    report = None
    _dagbag_load(folder)  # warm-up: the first load pays Airflow's lazy imports once for both sides
    for rep in range(reps):
        progress(f"(e) {rep + 1}/{reps}: full validation and DagBag load of {N_FILES} files")
        ms, report = timed(lambda: _validate(folder, None))
        full.ms.append(ms)
        ms, dag_count = timed(lambda: _dagbag_load(folder))
        plain.ms.append(ms)
    cache = work / "validation-cache.db"
    _validate(folder, cache)  # fill the cache
    for rep in range(reps):
        target = folder / dag_path(rep % N_FILES)
        target.write_text(dag_source(f"val_{rep % N_FILES:04d}", rep % N_FILES, revision=rep + 1))
        progress(f"(f) {rep + 1}/{reps}: revalidation after changing {target.name}")
        ms, _ = timed(lambda: _validate(folder, cache))
        incremental.ms.append(ms)
    ratio = full.median / plain.median
    share = incremental.median / full.median
    notes = [
        f"The full run found {len(report.dags)} DAGs ({dag_count} for DagBag) and "
        f"{len(report.errors)} errors, {len(report.warnings)} warnings on the generated files; steps timed "
        f"by the pipeline: {report.stats.get('seconds')} s in its last run."
    ]
    return [
        Measurement(
            "e",
            f"(e) Full validation of a {N_FILES}-file repository vs a plain DagBag load",
            "`airflow_dagops.validate.validate(folder, use_cache=False)` (every step: files, syntax, "
            "security, Airflow 3 compatibility, imports, sandboxed structure, policy) vs "
            "`DagBag(dag_folder=folder)`, both in this process, interleaved.",
            [full, plain],
            [Goal("full validation ≤ 2.0× a plain DagBag load", f"{ratio:.2f}×", ratio <= 2.0)],
            notes,
        ),
        Measurement(
            "f",
            "(f) Revalidation after a 1-file change",
            "One DAG file is rewritten (outside the timer), then `validate(folder)` with the result cache "
            "of the previous run: per-file checks and the sandboxed import run for that file only.",
            [incremental, full],
            [Goal("revalidation ≤ 10% of the full run", f"{share:.1%}", share <= 0.10)],
        ),
    ]
