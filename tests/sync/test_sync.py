"""The sync engine end to end, on real git remotes and the state DB (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from airflow_dagops import paths
from airflow_dagops.deploy.publish import current_target
from airflow_dagops.deploy.releases import read_manifest
from airflow_dagops.releases.rollback import rollback
from airflow_dagops.repositories.info import get_repository
from airflow_dagops.repositories.registry import add_repository
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import DeployEvent, Release, Repository, SyncRun
from airflow_dagops.sync.sense import empty_trash, sense
from airflow_dagops.sync.sync import sync_repository
from tests.helpers.repos import dag_source


def live_files(env, namespace="team") -> set[str]:
    link = env.dags_folder / namespace
    return {str(p.relative_to(link)) for p in link.rglob("*") if p.is_file() and p.name != ".dagops-release.json"}


def test_add_then_sync_publishes_a_namespace_link_to_an_immutable_release(dagops_env, git_remote):
    remote = git_remote()
    add_repository("team", remote.url)
    outcome = sync_repository("team")
    assert outcome.status == "published" and outcome.commit == remote.head()
    link = dagops_env.dags_folder / "team"
    assert link.is_symlink()
    assert current_target(link) == paths.release_dir("team", remote.head())
    assert live_files(dagops_env) == {"dags/hello.py"}
    info = get_repository("team")
    assert info.live_commit == remote.head() and info.dag_files == 1 and info.last_sync_status == "success"


def test_a_new_commit_is_republished_and_an_unchanged_remote_is_a_no_op(dagops_env, git_remote):
    remote = git_remote()
    add_repository("team", remote.url)
    sync_repository("team")
    assert sync_repository("team", trigger="schedule").status == "unchanged"
    new = remote.commit("add a dag", {"dags/second.py": dag_source("second")})
    outcome = sync_repository("team")
    assert outcome.status == "published" and outcome.commit == new
    assert live_files(dagops_env) == {"dags/hello.py", "dags/second.py"}
    with session_scope() as session:
        statuses = [r.status for r in session.scalars(select(Release).order_by(Release.id))]
        events = session.scalars(select(DeployEvent).order_by(DeployEvent.id)).all()
    assert statuses == ["retired", "live"]
    assert [(e.from_release_id is None, e.actor) for e in events] == [(True, "cli"), (False, "cli")]


def test_a_broken_commit_is_not_published_and_the_run_says_where(dagops_env, git_remote):
    remote = git_remote()
    add_repository("team", remote.url)
    good = sync_repository("team").commit
    bad = remote.commit("oops", {"dags/broken.py": "def broken(:  # an Airflow DAG\n    pass\n"})
    outcome = sync_repository("team")
    assert outcome.status == "failed" and not outcome.ok
    assert "dags/broken.py:1" in outcome.message and "previous release stays live" in outcome.message
    assert current_target(dagops_env.dags_folder / "team") == paths.release_dir("team", good)
    with session_scope() as session:
        run = session.scalars(select(SyncRun).order_by(SyncRun.id.desc())).first()
        release = session.scalar(select(Release).where(Release.commit_sha == bad))
        assert run.status == "failed" and "dags/broken.py:1" in run.error
        assert release.status == "failed"
        assert [(f.rule, f.file, f.line) for f in release.findings] == [("syntax-error", "dags/broken.py", 1)]
    # The broken commit is not validated again every minute, but a fix is picked up.
    assert sync_repository("team").status == "rejected"
    assert sense(respect_poll_interval=False)[0].changed is False
    fixed = remote.commit("fix", {"dags/broken.py": dag_source("broken")})
    assert sync_repository("team").commit == fixed
    assert "dags/broken.py" in live_files(dagops_env)


def test_a_force_pushed_branch_is_followed(dagops_env, git_remote):
    remote = git_remote()
    remote.commit("will be rewritten", {"dags/tmp.py": dag_source("tmp")})
    add_repository("team", remote.url)
    sync_repository("team")
    remote.git("reset", "-q", "--hard", "HEAD~1")
    rewritten = remote.commit("rewritten", {"dags/other.py": dag_source("other")})
    assert sync_repository("team").commit == rewritten
    assert live_files(dagops_env) == {"dags/hello.py", "dags/other.py"}


def test_tags_and_subdir_are_tracked(dagops_env, git_remote):
    remote = git_remote({"dags/a.py": dag_source("a"), "tests/test_a.py": "x = 1\n"})
    remote.git("tag", "-a", "v1", "-m", "v1")
    remote.commit("after the tag", {"dags/b.py": dag_source("b")})
    add_repository("team", remote.url, ref="v1", subdir="dags")
    sync_repository("team")
    assert live_files(dagops_env) == {"a.py"}


def test_unreachable_remote_at_sync_time_keeps_the_live_release(dagops_env, git_remote, tmp_path):
    remote = git_remote()
    add_repository("team", remote.url)
    good = sync_repository("team").commit
    remote.path.rename(tmp_path / "moved-away")
    outcome = sync_repository("team")
    assert outcome.status == "failed" and "not a git repository" in outcome.message
    assert current_target(dagops_env.dags_folder / "team") == paths.release_dir("team", good)
    assert get_repository("team").last_sync_status == "failed"


def test_old_releases_are_pruned_but_never_the_live_one_and_rows_match_the_disk(dagops_env, git_remote, monkeypatch):
    monkeypatch.setenv("AIRFLOW__DAGOPS__RELEASES_TO_KEEP", "2")
    remote = git_remote()
    add_repository("team", remote.url)
    sync_repository("team")
    for i in range(4):
        remote.commit(f"c{i}", {f"dags/d{i}.py": dag_source(f"d{i}")})
        sync_repository("team")
    with session_scope() as session:
        releases = session.scalars(select(Release).order_by(Release.id)).all()
        repo = session.scalar(select(Repository))
        on_disk = [r for r in releases if r.pruned_at is None]
        assert len(releases) == 5 and len(on_disk) == 2
        assert repo.live_release_id in {r.id for r in on_disk}
        for release in releases:
            assert Path(release.path).is_dir() == (release.pruned_at is None)
    assert len([p for p in paths.namespace_releases_dir("team").iterdir() if not p.name.startswith(".")]) == 2
    assert empty_trash() == 3  # pruned folders are deleted off the sync's critical path
    assert len(list(paths.namespace_releases_dir("team").iterdir())) == 2


def test_a_link_removed_by_hand_is_restored(dagops_env, git_remote):
    remote = git_remote()
    add_repository("team", remote.url)
    sync_repository("team")
    (dagops_env.dags_folder / "team").unlink()
    assert sense(respect_poll_interval=False)[0].changed
    assert sync_repository("team").status == "published"
    assert current_target(dagops_env.dags_folder / "team") == paths.release_dir("team", remote.head())


def test_sense_checks_only_due_repositories_and_reports_changes(dagops_env, git_remote):
    remotes = [git_remote(name=f"r{i}") for i in range(3)]
    for i, remote in enumerate(remotes):
        add_repository(f"repo{i}", remote.url)
        sync_repository(f"repo{i}")
    remotes[1].commit("new", {"dags/n.py": dag_source("n")})
    results = {r.repository: r for r in sense()}
    assert {name for name, r in results.items() if r.changed} == {"repo1"}
    assert sense() == []  # just checked: not due again within the poll interval
    assert len(sense(respect_poll_interval=False)) == 3


def test_a_db_that_lags_behind_the_link_adopts_the_link(dagops_env, git_remote):
    """A sync killed between the link swap and the DB update: the next sync trusts the link."""
    remote = git_remote()
    add_repository("team", remote.url)
    first = sync_repository("team")
    second_sha = remote.commit("second", {"dags/s.py": dag_source("s")})
    second = sync_repository("team")
    with session_scope() as session:  # rewind the DB as if the last commit never happened
        repo = session.scalar(select(Repository))
        repo.live_release_id = first.release_id
        session.get(Release, second.release_id).status = "validated"
        session.get(Release, first.release_id).status = "live"
    remote.commit("third", {"dags/t.py": dag_source("t")})
    assert sync_repository("team").status == "published"
    with session_scope() as session:
        assert session.get(Release, second.release_id).status == "retired"
    assert read_manifest(current_target(dagops_env.dags_folder / "team"))["commit"] != second_sha
    assert os.path.isdir(paths.release_dir("team", second_sha))


def test_a_dagops_home_inside_the_dags_folder_is_refused_before_publishing(dagops_env, git_remote, monkeypatch):
    remote = git_remote()
    add_repository("team", remote.url)
    monkeypatch.setenv("AIRFLOW__DAGOPS__DAGOPS_HOME", str(dagops_env.dags_folder / "dagops"))
    outcome = sync_repository("team")
    assert outcome.status == "failed" and "inside the dags folder" in outcome.message
    assert not (dagops_env.dags_folder / "team").exists()
    assert not (dagops_env.dags_folder / "dagops" / "mirrors").exists()  # not even fetched there


def test_a_run_that_cannot_be_recorded_leaves_no_fetch_behind(dagops_env, git_remote, monkeypatch):
    from airflow_dagops.errors import StateDBUnavailable
    from airflow_dagops.sync import sync as sync_module

    def state_db_gone(*_args):
        raise StateDBUnavailable("the state DB went away")

    add_repository("team", git_remote().url)
    with monkeypatch.context() as patched, pytest.raises(StateDBUnavailable):
        patched.setattr(sync_module, "start_run", state_db_gone)
        sync_repository("team")
    assert not [t for t in threading.enumerate() if t.name.startswith("fetch ")]  # git was waited for
    assert sync_repository("team").status == "published"  # and the lock was released


def test_a_held_lock_blocks_only_its_own_repository(dagops_env, git_remote, monkeypatch):
    from airflow_dagops.deploy.locks import repository_lock
    from airflow_dagops.errors import LockBusy

    monkeypatch.setenv("AIRFLOW__DAGOPS__LOCK_TIMEOUT", "1")
    add_repository("busy", git_remote(name="a").url)
    add_repository("free", git_remote(name="b").url)
    with repository_lock(paths.locks_dir(), "busy", timeout=1):
        assert sync_repository("free").status == "published"
        with pytest.raises(LockBusy, match="another sync of 'busy'"):
            sync_repository("busy")
    assert sync_repository("busy").status == "published"


def test_skip_files_publishes_without_the_broken_file_unless_something_imports_it(dagops_env, git_remote):
    remote = git_remote({"dags/good.py": dag_source("good"), ".dagops.yaml": "on_invalid: skip_files\n"})
    add_repository("team", remote.url)
    sync_repository("team")
    remote.commit("one broken", {"dags/broken.py": "def broken(:  # an Airflow DAG\n"})
    outcome = sync_repository("team")
    assert outcome.status == "published"
    live = dagops_env.dags_folder / "team"
    assert "dags/broken.py" in (live / ".airflowignore").read_text()
    assert any(f["rule"] == "files-skipped" for f in outcome.findings)
    # The next release is built from git again, not from the edited ignore file.
    remote.commit("fixed", {"dags/broken.py": dag_source("broken")})
    assert sync_repository("team").status == "published"
    assert not (live / ".airflowignore").exists()
    # A broken helper that a published DAG imports cannot be skipped.
    remote.commit(
        "broken helper",
        {
            "dags/helper.py": "def h(:  # helpers of the Airflow DAGs\n",
            "dags/user.py": "import helper\n" + dag_source("user"),
        },
    )
    refused = sync_repository("team")
    assert refused.status == "failed"
    assert any(f["rule"] == "skip-files-refused" for f in refused.findings)


def test_a_sync_after_a_rollback_says_why_the_head_is_not_live(dagops_env, git_remote):
    remote = git_remote()
    add_repository("team", remote.url)
    sync_repository("team")
    first = remote.head()
    head = remote.commit("second", {"dags/second.py": dag_source("second")})
    sync_repository("team")
    rollback("team", actor="test")
    outcome = sync_repository("team", trigger="manual")
    assert outcome.status == "unchanged" and outcome.ok  # not "rejected": the head passed validation
    assert f"{head[:12]} passed validation, but {first[:12]} is live" in outcome.message
    assert sync_repository("team", force=True).commit == head
    assert get_repository("team").live_commit == head
