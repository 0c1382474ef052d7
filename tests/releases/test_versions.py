"""Versions: `dagops versions / rollback / pin / unpin / deploy`, the deploy log, and the `dagops_deploy` DAG."""

from __future__ import annotations

import json
import os
import time

import pytest

from airflow_dagops.errors import Conflict, InvalidInput, NotFound, ValidationFailed
from airflow_dagops.releases import versions as versions_service
from airflow_dagops.releases.rollback import get_release
from airflow_dagops.repositories.info import get_repository
from tests.helpers.repos import dag_source

BROKEN = "def broken(:  # an Airflow DAG\n"


@pytest.fixture
def team(cli, git_remote):
    """A repository with two good releases (a.py, then a.py + b.py); the second is live."""
    remote = git_remote({"dags/a.py": dag_source("a")})
    assert cli("repos", "add", "team", remote.url).exit_code == 0
    first = remote.head()
    assert cli("sync", "team").exit_code == 0
    second = remote.commit("second", {"dags/b.py": dag_source("b")})
    assert cli("sync", "team").exit_code == 0
    return remote, first, second


def _live(dagops_env) -> set[str]:
    return {p.name for p in (dagops_env.dags_folder / "team" / "dags").iterdir()}


def _versions(cli) -> dict:
    result = cli("versions", "team", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_versions_lists_releases_newest_first_and_the_deploy_log(cli, team):
    remote, first, second = team
    remote.commit("broken", {"dags/c.py": BROKEN})
    assert cli("sync", "team").exit_code == 1
    data = _versions(cli)
    assert [(r["commit"], r["status"]) for r in data["releases"]][1:] == [(second, "live"), (first, "retired")]
    assert data["releases"][0]["status"] == "failed" and data["releases"][0]["validation"]["errors"] >= 1
    log = data["deploy_log"]
    assert [(e["from_commit"], e["to_commit"]) for e in log] == [(first, second), (None, first)]
    assert all(e["reason"].startswith("sync") and e["at"] for e in log)

    table = cli("versions", "team")
    assert table.exit_code == 0
    assert second[:7] in table.stdout and "failed" in table.stdout and "Dana Author" in table.stdout
    assert f"{first[:12]} → {second[:12]}" in table.stdout and "deploy log" in table.stdout


def test_rollback_default_to_and_pin(cli, team, dagops_env):
    remote, first, second = team
    rolled = cli("rollback", "team")
    assert rolled.exit_code == 0 and "rolled back" in rolled.stdout and "not pinned" in rolled.stdout
    assert _live(dagops_env) == {"a.py"}
    forward = cli("rollback", "team", "--to", second[:10])
    assert forward.exit_code == 0 and _live(dagops_env) == {"a.py", "b.py"}
    pinned = cli("rollback", "team", "--to", first, "--pin")
    assert pinned.exit_code == 0 and "pinned to release" in pinned.stdout
    assert get_repository("team").status == "pinned"
    log = _versions(cli)["deploy_log"]
    assert [e["reason"] for e in log[:3]] == ["rollback"] * 3 and log[0]["actor"].startswith("cli:")


def test_rollback_to_a_failed_release_is_refused(cli, team, dagops_env):
    remote, _first, second = team
    bad = remote.commit("broken", {"dags/c.py": BROKEN})
    cli("sync", "team")
    result = cli("rollback", "team", "--to", bad[:12])
    assert result.exit_code == 1 and "did not pass validation" in result.stderr
    assert get_repository("team").live_commit == second


def test_pin_ignores_new_commits_and_unpin_follows_again(cli, team, dagops_env):
    remote, _first, second = team
    assert "pinned" in cli("pin", "team").stdout
    remote.commit("third", {"dags/c.py": dag_source("c")})
    synced = cli("sync", "team", "--json")
    assert synced.exit_code == 0 and json.loads(synced.stdout)[0]["status"] == "pinned"
    assert get_repository("team").live_commit == second
    unpinned = cli("unpin", "team")
    assert unpinned.exit_code == 0 and "follows main again" in unpinned.stdout
    assert json.loads(cli("sync", "team", "--json").stdout)[0]["status"] == "published"
    assert _live(dagops_env) == {"a.py", "b.py", "c.py"}
    assert [e["reason"] for e in _versions(cli)["deploy_log"][:3]] == ["sync (cli)", "unpin", "pin"]


def test_pin_version_rolls_back_and_stays(cli, team, dagops_env):
    _remote, first, _second = team
    result = cli("pin", "team", "--version", first[:8])
    assert result.exit_code == 0 and _live(dagops_env) == {"a.py"}
    assert get_repository("team").pinned_release_id is not None


def test_deploy_an_older_sha_validates_publishes_and_pins(cli, team, dagops_env):
    remote, first, _second = team
    remote.commit("third", {"dags/c.py": dag_source("c")})
    result = cli("deploy", "team", "--version", first[:9])
    assert result.exit_code == 0, result.output
    assert "deployed" in result.stdout and "new commits are not followed" in result.stdout
    assert _live(dagops_env) == {"a.py"}
    info = get_repository("team")
    assert info.live_commit == first and info.pinned_release_id == info.live_release_id
    event = _versions(cli)["deploy_log"][0]
    assert event["reason"] == "deploy" and event["to_commit"] == first and event["actor"].startswith("cli:")
    assert json.loads(cli("sync", "team", "--json").stdout)[0]["status"] == "pinned"  # the poll keeps it
    assert _live(dagops_env) == {"a.py"}


def test_deploy_a_tag_not_on_the_branch(cli, team, dagops_env):
    remote, _first, second = team
    remote.git("checkout", "-q", "-b", "hotfix")
    tagged = remote.commit("hotfix", {"dags/h.py": dag_source("h")})
    remote.git("tag", "-a", "v1.2", "-m", "release 1.2")
    remote.git("checkout", "-q", "main")
    result = cli("deploy", "team", "--version", "v1.2")
    assert result.exit_code == 0, result.output
    assert _live(dagops_env) == {"a.py", "b.py", "h.py"}
    info = get_repository("team")
    assert info.live_commit == tagged and info.pinned_release_id == info.live_release_id
    release = get_release(info.live_release_id)
    assert release["ref"] == "refs/tags/v1.2" and release["status"] == "live"
    # Unpinned, the branch head comes back at the next sync.
    cli("unpin", "team")
    assert json.loads(cli("sync", "team", "--json").stdout)[0]["commit"] == second


def test_deploy_of_a_broken_commit_is_refused_and_nothing_changes(cli, team, dagops_env):
    remote, _first, second = team
    bad = remote.commit("broken", {"dags/c.py": BROKEN})
    remote.commit("fixed", {"dags/c.py": dag_source("c")})
    before = _versions(cli)["deploy_log"]
    result = cli("deploy", "team", "--version", bad)
    assert result.exit_code == 1 and "did not pass validation" in result.stderr and "dags/c.py" in result.stderr
    info = get_repository("team")
    assert info.live_commit == second and info.pinned_release_id is None
    assert _live(dagops_env) == {"a.py", "b.py"} and _versions(cli)["deploy_log"] == before


@pytest.mark.parametrize(
    ("version", "code", "message"),
    [
        ("deadbeef99", 1, "neither a commit"),
        ("no-such-tag", 1, "neither a commit"),
        ("-x", 2, ""),
    ],
)
def test_deploy_of_an_unknown_version_says_so(cli, team, version, code, message):
    result = cli("deploy", "team", "--version", version)
    assert result.exit_code == code and result.stderr.startswith("Error:") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unknown_repository(cli, dagops_env):
    for args in (["versions", "nope"], ["deploy", "nope", "--version", "v1"], ["rollback", "nope"], ["unpin", "nope"]):
        result = cli(*args)
        assert result.exit_code == 1 and "no repository named 'nope'" in result.stderr


# -- the dagops_deploy system DAG ------------------------------------------------------------------------------
def test_the_dagops_deploy_system_dag_parses(dagops_env):
    from airflow.dag_processing.dagbag import DagBag

    from airflow_dagops import paths

    bag = DagBag(dag_folder=str(paths.meta_dags_dir() / "dagops_deploy.py"))
    assert bag.import_errors == {}
    dag = bag.dags["dagops_deploy"]
    assert type(dag.timetable).__name__ == "NullTimetable"
    assert dag.catchup is False and dag.is_paused_upon_creation is False and set(dag.task_dict) == {"apply"}
    assert {"dagops", "system"} <= set(dag.tags) and "rollback" in dag.doc_md


def test_the_deploy_task_does_each_action(team, dagops_env):
    _remote, first, second = team
    actor = "airflow:manual__1"
    run = versions_service.run_action
    done = run({"repository": "team", "action": "deploy", "version": first}, actor=actor)
    assert done["live_commit"] == first and done["pinned_release_id"] == done["live_release_id"]
    assert run({"repository": "team", "action": "unpin"}, actor=actor)["pinned_release_id"] is None
    rolled = run({"repository": "team", "action": "rollback", "pin": True}, actor=actor)
    assert rolled["live_commit"] == second and rolled["pinned_release_id"] == rolled["live_release_id"]
    run({"repository": "team", "action": "unpin"}, actor=actor)
    pinned = run({"repository": "team", "action": "pin", "version": first[:8]}, actor=actor)
    assert pinned["live_commit"] == first and pinned["pinned_release_id"] == pinned["live_release_id"]
    log = versions_service.deploy_log("team", 10)
    assert log[0]["actor"] == actor and {e["reason"] for e in log[:6]} >= {"deploy", "unpin", "rollback"}


@pytest.mark.parametrize(
    ("conf", "error"),
    [
        ({"repository": "team", "action": "explode"}, InvalidInput),
        ({"action": "unpin"}, InvalidInput),
        ({"repository": "team", "action": "deploy"}, InvalidInput),
        ({"repository": "team", "action": "deploy", "version": "no-such-tag"}, NotFound),
        ({"repository": "ghost", "action": "unpin"}, NotFound),
    ],
)
def test_the_deploy_task_refuses_bad_conf(team, conf, error):
    with pytest.raises(error):
        versions_service.run_action(conf, actor="airflow:x")


def test_the_deploy_task_refuses_a_broken_version_and_a_failed_rollback(team):
    remote, _first, _second = team
    bad = remote.commit("broken", {"dags/c.py": BROKEN})
    with pytest.raises(ValidationFailed):
        versions_service.run_action({"repository": "team", "action": "deploy", "version": bad}, actor="airflow:x")
    with pytest.raises(Conflict):
        versions_service.run_action({"repository": "team", "action": "rollback", "version": bad}, actor="airflow:x")


def _age(folder, seconds: int = 3600) -> None:
    """As if Airflow had parsed every file since it was written."""
    then = time.time() - seconds
    for path in folder.rglob("*"):
        if path.is_file():
            os.utime(path, (then, then))


def test_a_rollback_marks_the_files_it_brings_back_as_modified_so_airflow_parses_them_at_once(
    cli, git_remote, dagops_env
):
    # Airflow's dag-processor parses a file modified since its last parse at once, others every
    # min_file_process_interval: the release rolled back to must look modified where it differs.
    remote = git_remote({"dags/a.py": dag_source("a"), "dags/b.py": dag_source("b")})
    assert cli("repos", "add", "team", remote.url).exit_code == 0
    assert cli("sync", "team").exit_code == 0
    first = remote.head()
    remote.commit("change a", {"dags/a.py": dag_source("a") + "\n# the second version\n"})
    assert cli("sync", "team").exit_code == 0
    link = dagops_env.dags_folder / "team"
    for release in link.resolve().parent.iterdir():
        _age(release)
    started = time.time()

    assert cli("rollback", "team", "--to", first[:10]).exit_code == 0
    live = link / "dags"
    assert "second version" not in (live / "a.py").read_text()
    assert os.stat(live / "a.py").st_mtime >= started - 1  # differs from what was live: marked
    assert os.stat(live / "b.py").st_mtime < started - 1800  # the same blob: left alone, not parsed again


def test_marking_changed_files_never_touches_a_name_outside_the_release(tmp_path):
    from airflow_dagops.deploy.publish import mark_changed_files
    from airflow_dagops.release_manifest import MANIFEST_NAME

    outside = tmp_path / "outside.py"
    outside.write_text("x = 1\n")
    os.utime(outside, (1, 1))
    old, new = tmp_path / "old", tmp_path / "new"
    for folder, blob in ((old, "a"), (new, "b")):
        (folder / "dags").mkdir(parents=True)
        (folder / "dags" / "job.py").write_text(blob)
        files = {"dags/job.py": blob, "../outside.py": blob, str(outside): blob}
        (folder / MANIFEST_NAME).write_text(json.dumps({"files": files}))
    assert mark_changed_files(old, new) == 1  # dags/job.py only
    assert os.stat(outside).st_mtime == 1
