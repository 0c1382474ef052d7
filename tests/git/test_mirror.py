from __future__ import annotations

import pytest

from airflow_dagops.errors import InvalidInput, RefNotFound, RemoteUnreachable
from airflow_dagops.git.errors import classify, is_transient
from airflow_dagops.git.mirror import Mirror


@pytest.fixture
def mirror_factory(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW__DAGOPS__GIT_TIMEOUT", "30")

    def make(url: str) -> Mirror:
        return Mirror(path=tmp_path / "mirror.git", url=url)

    return make


def test_ls_remote_resolves_branch_tag_annotated_tag_and_sha(git_remote, mirror_factory):
    remote = git_remote()
    head = remote.head()
    remote.git("tag", "light")
    remote.git("tag", "-a", "annotated", "-m", "release")
    mirror = mirror_factory(remote.url)
    assert mirror.ls_remote("main") == ("refs/heads/main", head)
    assert mirror.ls_remote("light") == ("refs/tags/light", head)
    assert mirror.ls_remote("annotated") == ("refs/tags/annotated", head)  # peeled to the commit
    assert mirror.ls_remote(head) == (head, head)


def test_unknown_ref_says_so(git_remote, mirror_factory):
    with pytest.raises(RefNotFound, match="'nope' was not found"):
        mirror_factory(git_remote().url).ls_remote("nope")


def test_unreachable_and_non_git_remotes_are_told_apart_from_other_errors(tmp_path, mirror_factory):
    not_a_repo = tmp_path / "plain"
    not_a_repo.mkdir()
    with pytest.raises(RemoteUnreachable, match="not a git repository"):
        mirror_factory(f"file://{not_a_repo}").ls_remote("main")
    with pytest.raises(RemoteUnreachable, match="cannot reach"):
        mirror_factory("git://127.0.0.1:9/repo").ls_remote("main")


def test_git_itself_refuses_ext_transport_even_if_validation_were_bypassed(tmp_path, mirror_factory):
    marker = tmp_path / "pwned"
    with pytest.raises(InvalidInput, match="transport"):
        mirror_factory(f"ext::sh -c touch% {marker}").ls_remote("main")
    assert not marker.exists()


def test_option_like_refs_never_reach_git(git_remote, mirror_factory):
    with pytest.raises(InvalidInput):
        mirror_factory(git_remote().url).ls_remote("--upload-pack=touch /tmp/x")


def test_fetch_follows_a_force_pushed_branch(git_remote, mirror_factory):
    remote = git_remote()
    first = remote.commit("second", {"dags/a.py": "a = 1\n"})
    mirror = mirror_factory(remote.url)
    assert mirror.fetch("refs/heads/main").sha == first
    remote.git("reset", "-q", "--hard", "HEAD~1")
    rewritten = remote.commit("rewritten history", {"dags/b.py": "b = 1\n"})
    assert mirror.fetch("refs/heads/main").sha == rewritten
    assert {e.path for e in mirror.list_tree(rewritten)} == {"dags/hello.py", "dags/b.py"}


def test_a_fetch_in_the_background_answers_as_a_fetch(git_remote, mirror_factory):
    remote = git_remote()
    mirror = mirror_factory(remote.url)
    pending = mirror.fetch_in_background("refs/heads/main")
    assert pending.result().sha == remote.head()
    assert pending.result().sha == remote.head()  # asked again: the same answer, no second fetch
    with pytest.raises(RefNotFound):
        mirror.fetch_in_background("refs/heads/nope").result()
    given_up = mirror.fetch_in_background("refs/heads/nope")
    given_up.wait()  # a caller that gives up on it waits for git without its error raised, which is kept
    with pytest.raises(RefNotFound):
        given_up.result()


def test_a_corrupt_mirror_is_removed_and_fetched_again(git_remote, mirror_factory):
    remote = git_remote()
    mirror = mirror_factory(remote.url)
    mirror.fetch("refs/heads/main")
    # Damage it the way a full disk or a killed gc does: objects gone, HEAD garbage.
    for pack in (mirror.path / "objects").rglob("*"):
        if pack.is_file():
            pack.write_bytes(b"garbage")
    new = remote.commit("more", {"dags/c.py": "c = 1\n"})
    assert mirror.fetch("refs/heads/main").sha == new
    assert "dags/c.py" in {e.path for e in mirror.list_tree(new)}

    (mirror.path / "HEAD").write_text("not a ref at all")
    assert not mirror.is_valid()
    assert mirror.fetch("refs/heads/main").sha == new


def test_blobs_stream_in_one_process(git_remote, mirror_factory):
    remote = git_remote({f"f{i}.py": f"x = {i}\n" for i in range(50)})
    mirror = mirror_factory(remote.url)
    sha = mirror.fetch("refs/heads/main").sha
    entries = mirror.list_tree(sha)
    contents = dict(mirror.iter_blobs([e.blob for e in entries]))
    assert sorted(contents.values()) == sorted(f"x = {i}\n".encode() for i in range(50))


def test_a_healthy_mirror_is_kept_when_the_remote_is_the_problem(git_remote, mirror_factory, tmp_path):
    remote = git_remote()
    mirror = mirror_factory(remote.url)
    first = mirror.fetch("refs/heads/main").sha
    remote.path.rename(tmp_path / "gone")
    with pytest.raises(RemoteUnreachable):
        mirror.fetch("refs/heads/main")
    assert mirror.is_healthy() and mirror.commit_info("refs/dagops/tracked").sha == first


def test_a_ref_moved_by_another_git_during_a_fetch_is_transient(mirror_factory):
    # The orphaned git of a killed sync may update the tracked ref under a new fetch: retried, not a failure.
    stderr = b"error: cannot lock ref 'refs/dagops/tracked': is at 1071 but expected c892\n"
    err = classify("fetch", stderr, url="file:///nowhere", local="the mirror")
    assert is_transient(err) and "moved by another git process" in str(err)


def test_one_classifier_names_the_same_failure_for_syncs_and_access_tests():
    # git/errors.py is the one place git's words are read: the error a fetch raises and the kind an access
    # test shows come from the same verdict.
    from airflow_dagops.errors import AuthenticationFailed
    from airflow_dagops.git.errors import kind_of

    stderr = b"git@host: Permission denied (publickey).\nfatal: Could not read from remote repository.\n"
    err = classify("fetch", stderr, url="ssh://git@host/team.git", conn_id="team_git")
    assert isinstance(err, AuthenticationFailed) and "'team_git'" in str(err) and "Could not read" not in str(err)
    assert kind_of(err) == "authentication_failed"


def test_run_remote_says_what_it_was_doing_and_a_refused_push_is_a_conflict(git_remote, tmp_path, monkeypatch):
    from airflow_dagops.errors import Conflict
    from airflow_dagops.git.remote import run_remote, subcommand
    from airflow_dagops.git.runner import run_git

    monkeypatch.setenv("AIRFLOW__DAGOPS__ALLOWED_PROTOCOLS", "file")
    remote = git_remote()
    work = tmp_path / "work"
    run_git(["clone", "--quiet", remote.url, str(work)])
    identity = ["-c", "user.name=t", "-c", "user.email=t@localhost"]
    run_git(["-C", str(work), *identity, "commit", "--quiet", "--allow-empty", "-m", "mine"])
    remote.commit("theirs", {"dags/b.py": "b = 1\n"})
    remote.git("branch", "other")  # diverged from `mine`: the push is not a fast-forward
    push = ["-C", str(work), "push", "--quiet", "--", remote.url, "HEAD:refs/heads/other"]
    assert subcommand(push) == "push" and subcommand(["-c", "a=b", "fetch"]) == "fetch"
    with pytest.raises(Conflict, match="^pushing other: .* refused the push"):
        run_remote(push, url=remote.url, doing="pushing other")
