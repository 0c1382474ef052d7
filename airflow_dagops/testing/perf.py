"""Performance budgets for DAG repositories: how long a DAG file takes to parse, and a task to run with mocks.

Parse time is measured the way Airflow's dag-processor pays it: in a fresh Python process that already has Airflow
loaded (the dag-processor forks one per file from a process that imported Airflow), timing only Airflow's `DagBag`
over that one file. So a heavy top-level `import pandas` counts, as it does every 30 s in production, while the
test process having imported it already (the `dagbag` fixture did) does not hide it. One measurement per file and
session: the file does not change while the tests run.

Task run time is how long the task's `execute` takes in a `run_dag` run, mocks applied (a mocked task: its mock):
the task's own work, without the task runner's start-up, which varies with the machine's load (the first task of a
session also builds Airflow's in-process execution API). For a mapped task, whose instances Airflow creates while the
run goes, it is the durations Airflow records for them, added up.

Every measurement is kept in the session's `PerfRecord`; with `--dagops-perf-report FILE` (or the
`DAGOPS_PERF_REPORT` environment variable, which the dagops_test system DAG sets) it is written there as JSON at
the end of the session, and dagops compares it with the live release's (releases/perf.py).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from airflow_dagops.errors import InvalidInput

REPORT_ENV = "DAGOPS_PERF_REPORT"
PARSE_TIMEOUT = 120.0  # seconds a measured parse may take before it counts as not finishing
# The child: Airflow loaded first (not timed, as in the dag-processor), then one file parsed and timed.
_PARSE_SCRIPT = """
import json, sys, time
from airflow.dag_processing.dagbag import DagBag
import airflow.sdk  # what a DAG file imports first is loaded in the dag-processor already

path = sys.argv[1]
started = time.perf_counter()
bag = DagBag(dag_folder=path)
seconds = time.perf_counter() - started
errors = {file: text.strip().splitlines()[-1] if text.strip() else text for file, text in bag.import_errors.items()}
print("\\n" + json.dumps({"seconds": seconds, "dag_ids": sorted(bag.dag_ids), "errors": errors}))
"""


@dataclass
class ParseTiming:
    file: str  # as recorded: relative to the rootdir when inside it
    seconds: float
    dag_ids: list[str] = field(default_factory=list)


@dataclass
class PerfRecord:
    """What a session measured: {file: seconds} and {"dag_id.task_id": seconds}; the fastest of repeated task
    measurements (noise only ever adds time)."""

    parse: dict[str, float] = field(default_factory=dict)
    tasks: dict[str, float] = field(default_factory=dict)

    def add_parse(self, file: str, seconds: float) -> None:
        self.parse[file] = round(min(seconds, self.parse.get(file, math.inf)), 4)

    def add_task(self, dag_id: str, task_id: str, seconds: float) -> None:
        key = f"{dag_id}.{task_id}"
        self.tasks[key] = round(min(seconds, self.tasks.get(key, math.inf)), 4)

    def __bool__(self) -> bool:
        return bool(self.parse or self.tasks)

    def to_dict(self) -> dict:
        return {"parse": dict(sorted(self.parse.items())), "tasks": dict(sorted(self.tasks.items()))}

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2))

    def lines(self) -> list[str]:
        return [f"{file}: parse {s:.3f} s" for file, s in sorted(self.parse.items())] + [
            f"{task}: run {s:.3f} s" for task, s in sorted(self.tasks.items())
        ]


def check_budget(seconds, what: str) -> float:
    """A budget is a positive number of seconds; anything else is a mistake in the test, said as such."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds) or seconds <= 0:
        raise InvalidInput(f"{what} must be a positive number of seconds, not {seconds!r}")
    return float(seconds)


def measure_parse(file: Path, *, env: dict[str, str] | None = None, timeout: float = PARSE_TIMEOUT) -> dict:
    """Parse one DAG file in a fresh Python process with Airflow loaded; {seconds, dag_ids, errors}.
    A parse that does not finish within `timeout` is reported as taking `timeout` seconds, with an error."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", _PARSE_SCRIPT, str(file)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env if env is not None else dict(os.environ),
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"seconds": timeout, "dag_ids": [], "errors": {str(file): f"did not finish within {timeout:g} s"}}
    last = done.stdout.strip().splitlines()[-1:] if done.stdout.strip() else []
    try:
        return json.loads(last[0]) if last else _crashed(file, done)
    except json.JSONDecodeError:
        return _crashed(file, done)


def _crashed(file: Path, done: subprocess.CompletedProcess) -> dict:
    tail = (done.stderr or done.stdout or "").strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
    return {"seconds": math.nan, "dag_ids": [], "errors": {str(file): f"the parse process failed: {tail[0]}"}}


def task_seconds(result, task_id: str) -> float:
    """A task's run time in a `run_dag` result: how long its `execute` took (timed by the runner), else, for a
    task whose instances Airflow creates at run time (a mapped task), the durations Airflow recorded, added up."""
    instances = [ti for ti in result.task_instances if ti.task_id == task_id]
    if not instances:
        raise InvalidInput(f"DAG {result.dag_id!r} ran no task {task_id!r}")
    not_done = [ti for ti in instances if ti.state != "success"]
    if not_done:
        raise AssertionError(
            f"task {result.dag_id}.{task_id} ended {not_done[0].state}, so its run time says nothing; "
            "mock what it calls (run_dag's mocks=) and measure a run that succeeds"
        )
    if task_id in result.execute_seconds:
        return result.execute_seconds[task_id]
    return sum(ti.duration or 0.0 for ti in instances)


def over_budget(what: str, seconds: float, budget: float) -> str | None:
    """The failure message when a measurement exceeds its budget, else None."""
    if math.isnan(seconds) or seconds > budget:
        return f"{what} took {seconds:.3f} s, over its budget of {budget:g} s"
    return None
