"""In real Airflow (api-server, scheduler, dag-processor; `[dagops] publish_mode = bundle`): a DAG run keeps the
release it started on. A two-task DAG whose first task waits; a new release (and, in the second case, a rollback)
goes live while it waits; the second task then runs the code of the run's release, and the run's bundle version
names that release."""

from __future__ import annotations

import json

import pytest

from tests.helpers.airflow import BIN, make_instance
from tests.helpers.airflow_procs import bundle_manifest, bundle_mode_env, running
from tests.helpers.airflow_procs import dag_versions as versions_of
from tests.helpers.servers import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

# `{flags}`: a folder of the test. The first task waits for a file named after its run; the second writes what
# its code says into another file named after the run.
PINNED_DAG = """from pathlib import Path
import time

import pendulum
from airflow.sdk import dag, task

FLAGS = Path("{flags}")


@dag(dag_id="pinned", schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False)
def pinned():
    @task
    def wait(run_id=None):
        (FLAGS / f"{{run_id}}.started").write_text("")
        while not (FLAGS / f"{{run_id}}.go").exists():
            time.sleep(0.2)

    @task
    def second(run_id=None):
        (FLAGS / f"{{run_id}}.out").write_text("{code}")

    wait() >> second()


pinned()
"""


@pytest.fixture(scope="module")
def airflow(tmp_path_factory):
    home = tmp_path_factory.mktemp("pinning") / "airflow"
    instance = make_instance(
        home,
        {
            **bundle_mode_env(home),
            "AIRFLOW__DAGOPS__SYNC_SCHEDULE": "",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__API__WORKERS": "1",
        },
    )
    config = (home / "airflow.cfg").read_text()
    assert "airflow_dagops.bundle.releases_bundle.DagopsReleasesBundle" in config  # `dagops init` registered it
    with running(instance, "api-server", "scheduler", "dag-processor") as started:
        yield started


@pytest.fixture
def flags(tmp_path):
    return tmp_path


def publish(airflow, remote, flags, code: str) -> str:
    remote.commit(f"second task writes {code}", {"dags/pinned.py": PINNED_DAG.format(flags=flags, code=code)})
    airflow.run("dagops", "sync", "pinned-repo")
    return remote.head()


def dag_versions(airflow) -> list[dict]:
    return versions_of(airflow, "pinned")


def parsed_at(airflow, commit: str) -> bool:
    """Whether the dag-processor has parsed the DAG at a bundle version holding `commit`."""
    return any(manifest_of(airflow, v["bundle_version"]).get("commit") == commit for v in dag_versions(airflow))


def newest_version(airflow) -> dict:
    return max(dag_versions(airflow), key=lambda v: v["version_number"], default={"bundle_version": None})


def manifest_of(airflow, version: str | None) -> dict:
    """The namespace's entry of a bundle version, from the dagops state DB."""
    return bundle_manifest(airflow, version, "pinned-repo")


def start_run(airflow, flags) -> str:
    response = airflow.api("POST", "dags/pinned/dagRuns", json={"logical_date": None})
    assert response.status_code == 200, response.text
    run_id = response.json()["dag_run_id"]
    wait_for(lambda: (flags / f"{run_id}.started").exists(), timeout=180, what="the first task to start waiting")
    return run_id


def finish_run(airflow, flags, run_id: str) -> dict:
    (flags / f"{run_id}.go").write_text("")

    def ended():
        run = airflow.api("GET", f"dags/pinned/dagRuns/{run_id}").json()
        return run if run["state"] in ("success", "failed") else None

    run = wait_for(ended, timeout=180, what=f"run {run_id} to end")
    assert run["state"] == "success", airflow.logs()
    return run


def test_a_run_keeps_its_release_through_a_publish_and_a_rollback(airflow, git_remote, flags):
    remote = git_remote({"README.md": "pinned\n"}, name="pinned")
    airflow.run("dagops", "repos", "add", "pinned-repo", remote.url, "--namespace", "pinned-repo")
    first = publish(airflow, remote, flags, "v1")
    wait_for(lambda: parsed_at(airflow, first), timeout=180, what="the DAG parsed at v1")

    # 1. A new release goes live while the run waits: its second task still runs v1.
    run_id = start_run(airflow, flags)
    second = publish(airflow, remote, flags, "v2")
    wait_for(lambda: parsed_at(airflow, second), timeout=180, what="the DAG parsed at v2")
    run = finish_run(airflow, flags, run_id)
    assert (flags / f"{run_id}.out").read_text() == "v1"
    assert manifest_of(airflow, run["bundle_version"])["commit"] == first

    # A run that starts now runs v2.
    later = start_run(airflow, flags)
    assert (
        manifest_of(airflow, airflow.api("GET", f"dags/pinned/dagRuns/{later}").json()["bundle_version"])["commit"]
        == second
    )

    # 2. A rollback to v1 while that run waits: it still runs v2, the release it started on.
    airflow.run("dagops", "rollback", "pinned-repo", "--to", first)
    wait_for(
        lambda: newest_version(airflow)["bundle_version"] == run["bundle_version"],  # v1's bundle version again
        timeout=180,
        what="the DAG parsed at v1 again after the rollback",
    )
    rolled = finish_run(airflow, flags, later)
    assert (flags / f"{later}.out").read_text() == "v2"
    assert manifest_of(airflow, rolled["bundle_version"])["commit"] == second
    assert {v["bundle_name"] for v in dag_versions(airflow)} == {"dagops-releases"}
    # Airflow's UI links each DAG version to the dagops page of its bundle version, which leads to the commit.
    newest = newest_version(airflow)
    assert newest["bundle_url"] == (
        f"{airflow.url}/pluginsv2/dagops/api/v1/bundle/versions/{newest['bundle_version']}"
    ), newest

    # Airflow's metadata DB names the versions its runs ran on: the state DB keeps their rows (bundle/cleanup.py).
    used = {run["bundle_version"], rolled["bundle_version"]}
    assert versions_in_use(airflow, [*used, "0" * 20]) == used


def versions_in_use(airflow, versions: list[str]) -> set[str]:
    """What airflow/bundle_usage.py answers in a process of the instance (one with its metadata DB)."""
    code = (
        "import json, sys; from airflow_dagops.airflow.bundle_usage import versions_in_use; "
        "print(json.dumps(sorted(versions_in_use('dagops-releases', sys.argv[1:]))))"
    )
    output = airflow.run(str(BIN / "python"), "-c", code, *versions).stdout
    return set(json.loads(output.strip().splitlines()[-1]))
