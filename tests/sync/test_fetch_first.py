"""A sync asks the remote once: with the lock free and the ref's full name known from the last fetch, the fetch itself
says whether anything is new (no ls-remote before it). Every other case keeps the lock-free ls-remote first."""

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


def test_after_the_first_sync_one_fetch_answers_both_nothing_new_and_a_new_commit(
    dagops_env, git_remote, remote_commands
):
    remote = git_remote()
    add_repository("team", remote.url)
    remote_commands.clear()  # registering checks the URL with an ls-remote of its own
    assert sync_repository("team").status == "published"
    assert remote_commands == ["ls-remote", "fetch"]  # a first sync resolves the ref's full name
    remote_commands.clear()
    assert sync_repository("team", trigger="schedule").status == "unchanged"
    new = remote.commit("add", {"dags/second.py": dag_source("second")})
    outcome = sync_repository("team", trigger="schedule")
    assert (outcome.status, outcome.commit) == ("published", new)
    assert remote_commands == ["fetch", "fetch"]


def test_a_busy_lock_keeps_the_lock_free_check_and_never_waits_when_nothing_is_new(
    dagops_env, git_remote, remote_commands, monkeypatch
):
    monkeypatch.setenv("AIRFLOW__DAGOPS__LOCK_TIMEOUT", "1")
    remote = git_remote()
    add_repository("team", remote.url)
    sync_repository("team")
    remote_commands.clear()
    with repository_lock(paths.locks_dir(), "team", timeout=1):
        assert sync_repository("team", trigger="schedule").status == "unchanged"
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
    assert sync_repository("team", trigger="schedule").status == "unchanged"
    assert mirror.known_full_ref("main") is None  # an unchanged remote writes nothing; the next new commit does


def test_an_unreachable_remote_is_one_failure_with_the_remote_asked_once(
    dagops_env, git_remote, remote_commands, tmp_path
):
    remote = git_remote()
    add_repository("team", remote.url)
    sync_repository("team")
    remote.path.rename(tmp_path / "moved-away")
    remote_commands.clear()
    outcome = sync_repository("team", trigger="schedule")
    assert outcome.status == "failed" and "not a git repository" in outcome.message
    assert remote_commands == ["fetch"]
