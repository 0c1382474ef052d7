"""A sync that expects a change (a webhook, Sync Now, `dagops sync`, the sense step having seen a new head) asks the
remote once: with the lock free and the ref's full name known from the last fetch, the fetch itself says whether
anything is new. A blind scheduled poll, and every case the fetch cannot settle, keep the lock-free ls-remote
first, which costs a poll that finds nothing less than a fetch."""

from __future__ import annotations

import pytest

from airflow_dagops import paths
from airflow_dagops.deploy.locks import repository_lock
from airflow_dagops.git import mirror as mirror_module
from airflow_dagops.git.mirror import REF_MEMO, Mirror
from airflow_dagops.repositories.registry import add_repository
from airflow_dagops.sync.sync import sync_repository
from tests.helpers.repos import dag_source


@pytest.fixture
def remote_commands(monkeypatch) -> list[str]:
    """The git subcommand of every command the mirror runs against a remote, in order (the real commands run)."""
    seen: list[str] = []
    real = mirror_module.run_remote

    def recording(args, **kwargs):
        seen.append(next(arg for arg in args if arg in ("ls-remote", "fetch")))
        return real(args, **kwargs)

    monkeypatch.setattr(mirror_module, "run_remote", recording)
    return seen


def test_an_expected_change_costs_one_fetch_and_a_blind_poll_asks_ls_remote_first(
    dagops_env, git_remote, remote_commands
):
    remote = git_remote()
    add_repository("team", remote.url)
    remote_commands.clear()  # registering checks the URL with an ls-remote of its own
    assert sync_repository("team").status == "published"
    assert remote_commands == ["ls-remote", "fetch"]  # a first sync resolves the ref's full name
    remote_commands.clear()
    assert sync_repository("team", trigger="schedule").status == "unchanged"
    assert remote_commands == ["ls-remote"]  # a poll that finds nothing: no lock, no fetch
    new = remote.commit("add", {"dags/second.py": dag_source("second")})
    remote_commands.clear()
    outcome = sync_repository("team", trigger="webhook")
    assert (outcome.status, outcome.commit) == ("published", new)
    assert remote_commands == ["fetch"]
    newer = remote.commit("more", {"dags/third.py": dag_source("third")})
    remote_commands.clear()
    outcome = sync_repository("team", trigger="schedule", expect_change=True)  # what dagops_sync's tasks say
    assert (outcome.status, outcome.commit) == ("published", newer)
    assert remote_commands == ["fetch"]
    remote_commands.clear()
    assert sync_repository("team", trigger="manual").status == "unchanged"  # Sync Now with nothing new
    assert remote_commands == ["fetch"]


def test_a_busy_lock_keeps_the_lock_free_check_and_never_waits_when_nothing_is_new(
    dagops_env, git_remote, remote_commands, monkeypatch
):
    monkeypatch.setenv("AIRFLOW__DAGOPS__LOCK_TIMEOUT", "1")
    remote = git_remote()
    add_repository("team", remote.url)
    sync_repository("team")
    remote_commands.clear()
    with repository_lock(paths.locks_dir(), "team", timeout=1):
        assert sync_repository("team", trigger="webhook").status == "unchanged"
    assert remote_commands == ["ls-remote"]


def test_a_branch_that_became_a_tag_is_resolved_again(dagops_env, git_remote, remote_commands):
    remote = git_remote()
    remote.git("branch", "release")
    add_repository("team", remote.url, ref="release")
    sync_repository("team")
    new = remote.commit("tagged", {"dags/tagged.py": dag_source("tagged")})
    remote.git("branch", "-D", "release")
    remote.git("tag", "release", new)
    remote_commands.clear()
    outcome = sync_repository("team")
    assert (outcome.status, outcome.commit) == ("published", new)
    assert remote_commands == ["fetch", "ls-remote", "fetch"]  # the remembered name failed, then was resolved
    assert Mirror(path=paths.mirror_dir("team"), url=remote.url).known_full_ref("release") == "refs/tags/release"


def test_a_deleted_branch_fails_as_before_and_keeps_the_live_release(dagops_env, git_remote):
    remote = git_remote()
    remote.git("branch", "feature")
    add_repository("team", remote.url, ref="feature")
    live = sync_repository("team").commit
    remote.git("branch", "-D", "feature")
    outcome = sync_repository("team")
    assert outcome.status == "failed" and "ref 'feature' was not found" in outcome.message
    assert sync_repository("team").status == "failed"  # again: the remembered name fails, ls-remote says why
    from airflow_dagops.deploy.publish import current_target

    assert current_target(dagops_env.dags_folder / "team") == paths.release_dir("team", live)


@pytest.mark.parametrize(
    "memo", ["main\nrefs/heads/other", "main\n--upload-pack=touch /tmp/x", "other\nrefs/heads/main", "main"]
)
def test_a_memo_that_does_not_name_the_ref_itself_is_not_believed(dagops_env, git_remote, memo):
    remote = git_remote()
    add_repository("team", remote.url)
    sync_repository("team")
    mirror = Mirror(path=paths.mirror_dir("team"), url=remote.url)
    assert mirror.known_full_ref("main") == "refs/heads/main"
    (mirror.path / REF_MEMO).write_text(memo)
    assert mirror.known_full_ref("main") is None
    assert sync_repository("team", trigger="webhook").status == "unchanged"
    assert mirror.known_full_ref("main") is None  # an unchanged remote writes nothing; the next new commit does


def test_an_unreachable_remote_is_one_failure_with_the_remote_asked_once(
    dagops_env, git_remote, remote_commands, tmp_path
):
    remote = git_remote()
    add_repository("team", remote.url)
    sync_repository("team")
    remote.path.rename(tmp_path / "moved-away")
    remote_commands.clear()
    outcome = sync_repository("team", trigger="webhook")
    assert outcome.status == "failed" and "not a git repository" in outcome.message
    assert remote_commands == ["fetch"]


def test_a_run_that_cannot_be_recorded_while_git_fetches_leaves_no_fetch_and_no_lock_behind(
    dagops_env, git_remote, monkeypatch
):
    import threading

    from airflow_dagops.errors import StateDBUnavailable
    from airflow_dagops.sync import sync as sync_module

    def state_db_gone(*_args):
        raise StateDBUnavailable("the state DB went away")

    remote = git_remote()
    add_repository("team", remote.url)
    sync_repository("team")
    new = remote.commit("add", {"dags/second.py": dag_source("second")})
    with monkeypatch.context() as patched, pytest.raises(StateDBUnavailable):
        patched.setattr(sync_module, "start_run", state_db_gone)
        sync_repository("team", trigger="webhook")
    assert not [t for t in threading.enumerate() if t.name.startswith("fetch ")]  # git was waited for
    outcome = sync_repository("team", trigger="webhook")  # the lock was released
    assert (outcome.status, outcome.commit) == ("published", new)


@pytest.mark.parametrize("remembered", [True, False], ids=["fetch-first", "ls-remote-first"])
def test_a_queued_run_is_claimed_before_git_reads_the_remote(dagops_env, git_remote, monkeypatch, remembered):
    """Webhooks coalesce into a queued run, which fetches the newest head when it starts: a push arriving once git
    has read the refs must find the run claimed (running), so that it queues a run of its own."""
    from sqlalchemy import select

    from airflow_dagops.store.db import session_scope
    from airflow_dagops.store.models import Repository, SyncRun

    remote = git_remote()
    add_repository("team", remote.url)
    sync_repository("team")
    if not remembered:
        (paths.mirror_dir("team") / REF_MEMO).unlink()
    remote.commit("add", {"dags/second.py": dag_source("second")})
    with session_scope() as session:
        repository_id = session.scalar(select(Repository.id).where(Repository.name == "team"))
        session.add(SyncRun(repository_id=repository_id, trigger="webhook", status="queued", airflow_run_id="r1"))
    seen: list[str] = []
    real = Mirror.fetch_in_background

    def spying(self, full_ref):
        with session_scope() as session:
            seen.append(session.scalar(select(SyncRun.status).where(SyncRun.airflow_run_id == "r1")))
        return real(self, full_ref)

    monkeypatch.setattr(Mirror, "fetch_in_background", spying)
    assert sync_repository("team", trigger="webhook", airflow_run_id="r1").status == "published"
    assert seen == ["running"]
