"""Measurement (g): from a push webhook to the pushed commit being live, in a running Airflow.

Real api-server, scheduler and dag-processor processes (LocalExecutor, SQLite, started with
tests/helpers/airflow.py) run with the settings `make run` uses (shared with measurement (d)), in the default
publish mode (`bundle`, set explicitly). The periodic dagops_sync schedule is off, so every sync comes from a
webhook. For each push: commit a change, start the timer, POST a signed GitHub push delivery to
`/pluginsv2/dagops/api/v1/webhooks/github`, and read the instance's dagops state DB every 20 ms until the live set
names the pushed commit (the release is live: what the dagops-releases bundle serves from its next refresh), then
until the dag-processor's bundle version holds it. The dagops_sync run's and its syncing task's timestamps, read
from Airflow's REST API afterwards, and the step lines of that task's log ("hooked: validating") show where the
time goes.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from benchmarks.airflow_e2e import (
    BUNDLE_MODE,
    StateDB,
    bundle_mode_text,
    load_note,
    make_run_settings,
    settings_text,
    wait_milestones,
)
from benchmarks.repos import SourceRepo, dag_path, dag_source, make_dag_repo
from benchmarks.timing import Measurement, Samples, Stated, limit_goal

REPO_NAME = "hooked"
SECRET = "bench-webhook-secret-not-for-production"
PUBLISHED_TIMEOUT_S = 120
POLL_SCHEDULE_S = 60  # `[dagops] sync_schedule` "* * * * *" and `default_poll_interval` 60 s
# Registers the webhook blueprint when the installed plugin does not (yet): the benchmark then works
# before and after plugin.py serves it.
_PLUGIN = """from airflow.plugins_manager import AirflowPlugin

from airflow_dagops.api.webhooks import webhook_blueprint
from airflow_dagops.plugin import DagOpsPlugin


class DagOpsWebhooksBenchmark(AirflowPlugin):
    name = "dagops_webhooks_benchmark"
    flask_blueprints = [] if webhook_blueprint in DagOpsPlugin.flask_blueprints else [webhook_blueprint]
"""


def measure_webhook_latency(work: Path, reps: int, progress: Callable[[str], None]) -> Measurement:
    """Start Airflow, publish a repository once through a webhook, then time `reps` pushes."""
    from tests.helpers.airflow import make_instance

    settings, load_before = make_run_settings(), os.getloadavg()[0]
    repo = make_dag_repo(work / "remotes" / REPO_NAME, 3, prefix="hooked")
    progress("(g) migrating a fresh Airflow metadata DB")
    secret_connection = json.dumps({"conn_type": "generic", "password": SECRET})
    extra = {
        **settings,
        **BUNDLE_MODE,
        "AIRFLOW__DAGOPS__SYNC_SCHEDULE": "",
        "AIRFLOW_CONN_DAGOPS_WEBHOOK": secret_connection,
    }
    instance = make_instance(work / "airflow-webhooks", extra)
    (instance.home / "plugins").mkdir(exist_ok=True)
    (instance.home / "plugins" / "dagops_webhooks_benchmark.py").write_text(_PLUGIN)
    try:
        progress("(g) starting api-server, scheduler and dag-processor")
        instance.start("api-server", "scheduler", "dag-processor")
        first = _publish_first(instance, repo, progress)
        rows = _time_pushes(instance, repo, reps, progress)
    except BaseException:
        print(instance.logs(), file=sys.stderr)
        raise
    finally:
        instance.stop()
    published = rows[0]
    return Measurement(
        "g",
        "(g) Webhook → new release live, in a running Airflow",
        f"api-server, scheduler and dag-processor (LocalExecutor, SQLite) {bundle_mode_text()}, with the `make run` "
        f"settings ({settings_text(settings)}); "
        "the `dagops_sync` schedule is off. A 3-DAG repository is registered; for each push a DAG file is changed "
        "and committed, then the timer starts, a signed GitHub push delivery is POSTed to "
        "`/pluginsv2/dagops/api/v1/webhooks/github`, and the instance's dagops state DB is read every 20 ms until "
        "the live set names the pushed commit (the release is live), then until the dag-processor's "
        "dagops-releases bundle version holds it. Validation is on (the real dagops_sync task). The other "
        "breakdown rows are read from the run's and the syncing task's timestamps in Airflow's REST API and from "
        "the step lines of that task's log (same clock, same machine). A run that names its repository syncs it "
        "in its first task, `sense` (meta_dags/dagops_sync.py).",
        [
            *rows,
            Stated(
                "polling instead (no webhook): mean wait for the next `dagops_sync` poll with the default "
                f"`* * * * *` schedule, before the same run starts (stated: half of {POLL_SCHEDULE_S} s)",
                POLL_SCHEDULE_S * 1000 / 2,
            ),
        ],
        [limit_goal("median ≤ 5 s", published, 5_000, unit="s")],
        [
            f"First publish of the repository (warm-up, not counted): {first:.1f} s from webhook to live.",
            "Measurement (d) times the same dagops_sync run triggered through Airflow's REST API, up to the "
            "new DAG being listed; (g) stops when the release is live, which is what a webhook promises: new DAG "
            "versions, and the runs that start on them, use it once the dag-processor has parsed the changed file "
            "of the bundle version that holds it.",
            load_note(load_before),
        ],
    )


def _publish_first(instance, repo: SourceRepo, progress) -> float:
    from tests.helpers.airflow import BIN
    from tests.helpers.servers import wait_for

    instance.run(str(BIN / "dagops"), "repos", "add", REPO_NAME, repo.url, "--namespace", REPO_NAME)
    progress("(g) waiting for the dagops_sync system DAG")
    wait_for(lambda: "dagops_sync" in instance.dag_ids(), timeout=180, interval=0.5, what="dagops_sync")
    start = time.perf_counter()
    answer = _deliver(instance, repo)
    _wait_live(instance, repo.head(), start)
    elapsed = time.perf_counter() - start
    _wait_run_end(instance, answer["runs"][0]["airflow_run_id"])
    return elapsed


def _time_pushes(instance, repo: SourceRepo, reps: int, progress) -> list[Samples]:
    published = Samples("webhook sent → release of the pushed commit live (the live set in the state DB names it)")
    served = Samples(
        "webhook sent → the dag-processor's dagops-releases bundle version holds the commit (its refresh)",
        role="breakdown",
    )
    answered = Samples("webhook sent → 202 answer (verify, dedupe, queue the Airflow run)", role="breakdown")
    run_started = Samples("webhook sent → the scheduler starts the dagops_sync run", role="breakdown")
    sync_started = Samples("webhook sent → the task that syncs the repository started", role="breakdown")
    before_gate = Samples("that task: start → validation starts (task start-up, lock, fetch, export)", role="breakdown")
    gate = Samples(
        "that task: validation start → publishing starts (the gate: the changed file imported in a fresh sandbox, "
        "the other checks)",
        role="breakdown",
    )
    sync_task = Samples("that task: start → end (fetch, export, validate, publish, task exit)", role="breakdown")
    for i in range(1, reps + 1):
        sha = repo.commit({dag_path(0): dag_source("hooked_0000", 0, revision=i)}, f"revision {i}")
        wall_start, start = datetime.now(timezone.utc), time.perf_counter()
        answer = _deliver(instance, repo)
        answered.ms.append((time.perf_counter() - start) * 1000)
        seen = _wait_live(instance, sha, start)
        published.ms.append(seen["live"])
        served.ms.append(seen["served"])
        run_id = answer["runs"][0]["airflow_run_id"]
        run = _wait_run_end(instance, run_id)
        task = _syncing_task(_task_instances(instance, run_id))
        since = _since(wall_start)
        run_started.ms.append(since(run["start_date"]))
        sync_started.ms.append(since(task["start_date"]))
        sync_task.ms.append(since(task["end_date"]) - since(task["start_date"]))
        steps = _progress_times(instance, task)
        if "validating" in steps and "publishing" in steps:
            before_gate.ms.append(since(steps["validating"]) - since(task["start_date"]))
            gate.ms.append(since(steps["publishing"]) - since(steps["validating"]))
        progress(
            f"(g) {i}/{reps}: {sha[:12]} live {published.ms[-1] / 1000:.1f} s, in the bundle "
            f"{served.ms[-1] / 1000:.1f} s after the webhook (synced by its `{task['task_id']}` task)"
        )
    return [published, answered, run_started, sync_started, before_gate, gate, sync_task, served]


def _syncing_task(task_instances: list[dict]) -> dict:
    """The task instance that synced the repository: a mapped `sync` task where one ran, else `sense` (a run that
    names its repository syncs it there, meta_dags/dagops_sync.py)."""
    ran = [t for t in task_instances if t["task_id"] == "sync" and t["state"] == "success"]
    return ran[0] if ran else next(t for t in task_instances if t["task_id"] == "sense")


def _progress_times(instance, task: dict) -> dict[str, str]:
    """When the task printed each sync step ("REPO: validating"), from its log file: step -> ISO timestamp."""
    folder = instance.home / "logs" / f"dag_id={task['dag_id']}" / f"run_id={task['dag_run_id']}"
    folder = folder / f"task_id={task['task_id']}"
    if task["map_index"] >= 0:
        folder = folder / f"map_index={task['map_index']}"
    steps: dict[str, str] = {}
    for path in sorted(folder.glob("attempt=*.log")):
        for line in path.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            prefix = f"{REPO_NAME}: "
            event = str(record.get("event", ""))
            if event.startswith(prefix) and "timestamp" in record:
                steps.setdefault(event[len(prefix) :], record["timestamp"])
    return steps


def _deliver(instance, repo: SourceRepo) -> dict:
    """POST a signed GitHub push delivery for the repository's head, as GitHub would."""
    import requests

    from airflow_dagops.webhooks.signatures import sign

    sha = repo.head()
    body = json.dumps({"ref": "refs/heads/main", "after": sha, "repository": {"clone_url": repo.url}}).encode()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": str(uuid.uuid4()),
        **sign("github", body, SECRET),
    }
    url = f"{instance.url}/pluginsv2/dagops/api/v1/webhooks/github"
    response = requests.post(url, data=body, headers=headers, timeout=30)
    if response.status_code != 202 or response.json().get("status") != "triggered":
        raise RuntimeError(f"the webhook was not accepted: {response.status_code} {response.text}")
    return response.json()


def _wait_live(instance, sha: str, start: float) -> dict[str, float]:
    """ms from `start` until the live set names `sha` ("live"), and until the dag-processor's bundle version holds
    it ("served")."""
    state = StateDB(instance)
    checks = {
        "live": lambda: state.live_commit(REPO_NAME) == sha,
        "served": lambda: state.bundle_commit(REPO_NAME) == sha,
    }
    return wait_milestones(checks, start=start, timeout=PUBLISHED_TIMEOUT_S, interval=0.02)


def _wait_run_end(instance, run_id: str) -> dict:
    from tests.helpers.servers import wait_for

    def ended():
        run = instance.api("GET", f"dags/dagops_sync/dagRuns/{run_id}").json()
        return run if run.get("state") in ("success", "failed") else None

    run = wait_for(ended, timeout=180, interval=0.2, what=f"dagops_sync run {run_id}")
    if run["state"] != "success":
        raise RuntimeError(f"dagops_sync run {run_id} ended {run['state']}")
    return run


def _task_instances(instance, run_id: str) -> list[dict]:
    response = instance.api("GET", f"dags/dagops_sync/dagRuns/{run_id}/taskInstances")
    return response.json()["task_instances"]


def _since(start: datetime) -> Callable[[str], float]:
    def ms(stamp: str) -> float:
        return (datetime.fromisoformat(stamp.replace("Z", "+00:00")) - start).total_seconds() * 1000

    return ms
