"""dagops_sync: keep every registered repository's namespace up to date with its Git ref.

Sense, then act: `sense` checks all repositories with cheap `git ls-remote` calls in one task; one mapped
`sync` task runs per repository that changed. A cycle where nothing changed maps zero sync tasks, so 100 quiet
repositories cost one task a minute, not 100.

A run that names its repository (conf {"repository": "NAME"}: a webhook, "Sync Now", `dagops sync --via-airflow`)
has nothing to sense, so `sense` syncs that repository itself and maps no `sync` task: a second task would add its
scheduling and start-up (about a second) between the push and the release going live. Its log is the sync's log.
Add "force": true to the conf to re-validate.
"""

from __future__ import annotations

import contextlib

import pendulum
from airflow.sdk import Asset, AssetAlias, dag, get_current_context, task

from airflow_dagops import paths, settings
from airflow_dagops.airflow.task_errors import DEFAULT_ARGS, refusal
from airflow_dagops.errors import NotFound
from airflow_dagops.health import observe
from airflow_dagops.releases.tests_runner import AWAITING_TESTS_ASSET
from airflow_dagops.store import reads
from airflow_dagops.sync import sense as sensing
from airflow_dagops.sync.sync import sync_repository
from airflow_dagops.validate import sandbox_ahead

# Every successful sync updates this asset, which schedules dagops_test; it finds the releases waiting for their
# tests (if any) and runs them.
AWAITING_TESTS = Asset(AWAITING_TESTS_ASSET)
# `sense` updates it through an alias, and only when it synced a requested repository: Airflow updates a task's
# plain outlets on every success, and each quiet poll would then schedule dagops_test.
SYNCED_BY_SENSE = AssetAlias("dagops-sync-requested")


def _trigger_of(context) -> str:
    dag_run = context["dag_run"]
    conf = dag_run.conf or {}
    if conf.get("trigger") in ("webhook", "manual", "cli"):
        return conf["trigger"]
    return "schedule" if str(dag_run.run_type).lower().endswith("scheduled") else "manual"


def _sync(item: dict, run_id: str) -> dict:
    """Fetch, export, validate and publish one repository; a refusal (recorded with its reason) fails the task.

    The validation sandbox starts first: its fresh zygote imports Airflow (most of a small change's validation)
    while the sync checks the remote, fetches and exports (validate.sandbox_ahead)."""
    try:
        with reads.reading() as reader:
            repo = reads.repository_row(reader, item["repository"])
    except NotFound:  # the sync says so
        repo = None
    # A pinned repository follows no commit: nothing to validate.
    releases = paths.namespace_releases_dir(repo.namespace) if repo and not repo.pinned_release_id else None
    with sandbox_ahead(releases) if releases else contextlib.nullcontext():
        outcome = sync_repository(
            item["repository"],
            trigger=item["trigger"],
            airflow_run_id=run_id,
            force=item.get("force", False),
            expect_change=True,  # the sense step saw a new head, or the run names its repository (a push, Sync Now)
            progress=lambda step: print(f"{item['repository']}: {step}"),
            defer_tests=True,  # a repository's own tests run in dagops_test, one mapped task per module
        )
    print(outcome.message)
    for finding in outcome.findings:
        print(f"  {finding['severity']} {finding['rule']} {finding['file']}:{finding['line']} {finding['message']}")
    if not outcome.ok:
        raise refusal(outcome.message)
    return {"repository": outcome.repository, "status": outcome.status, "commit": outcome.commit}


@dag(
    dag_id="dagops_sync",
    schedule=settings.get("sync_schedule") or None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["dagops", "system"],
    doc_md=__doc__,
    default_args=DEFAULT_ARGS,
    is_paused_upon_creation=False,  # the system DAG polls from the start; operators can pause it
)
def dagops_sync():
    @task(outlets=[SYNCED_BY_SENSE])
    def sense() -> list[dict]:
        """The repositories for the mapped `sync` tasks; none when the run named one, synced here."""

        context = get_current_context()
        conf = context["dag_run"].conf or {}
        trigger = _trigger_of(context)
        requested = conf.get("repository")
        if requested:
            print(f"{requested}: synced in this task (the run names it; nothing to sense)")
            _sync({"repository": requested, "trigger": trigger, "force": bool(conf.get("force"))}, context["run_id"])
            context["outlet_events"][SYNCED_BY_SENSE].add(AWAITING_TESTS)
            return []
        changed = [r for r in sensing.sense(respect_poll_interval=trigger == "schedule") if r.changed]
        observe.publish_gauges()  # StatsD/OpenTelemetry gauges, once per poll (docs/operations.md)
        for result in changed:
            print(f"{result.repository}: {result.reason}" + (f" ({result.error})" if result.error else ""))
        return [{"repository": r.repository, "trigger": trigger, "force": False} for r in changed]

    # The asset is an outlet of this task itself: on a separate task it would make that task the DAG's leaf, and
    # a failed sync would no longer fail the run.
    @task(map_index_template="{{ item_name }}", outlets=[AWAITING_TESTS])
    def sync(item: dict) -> dict:
        """Fetch, export, validate and publish one repository."""
        context = get_current_context()
        context["item_name"] = item["repository"]  # shown as the map index label in the Airflow UI
        return _sync(item, context["run_id"])

    sync.expand(item=sense())


dagops_sync()
