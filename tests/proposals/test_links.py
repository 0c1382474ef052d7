"""A proposal never writes through anything the repository controls (issue 16 item 2).

The attack: a repository holding `plugins -> /usr/local/airflow/plugins` (or a chain of relative links that climbs
out of the tree) and a proposal of `plugins/x.py`. Proposals build the validated tree and the commit with git
plumbing only, and refuse a path below (or at) a symlink or a submodule of the base commit: nothing is written on
the host, nothing is pushed. A normal proposal's commit is the base tree plus the file, nothing else changed.
"""

from __future__ import annotations

import subprocess

import pytest

from airflow_dagops import settings
from airflow_dagops.errors import InvalidInput
from airflow_dagops.proposals import service as proposals
from airflow_dagops.repositories.registry import add_repository
from airflow_dagops.sync.sync import sync_repository
from tests.helpers.repos import dag_source
from tests.proposals.conftest import GOOD_DAG, Bare, connection

HELLO = dag_source("hello")


def _bare_of(source, tmp_path) -> Bare:
    bare = tmp_path / "team.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(source.path), str(bare)], check=True)
    return Bare(bare)


@pytest.fixture
def victim(tmp_path):
    """A folder of the host that a repository's link points at (the api-server's plugins folder)."""
    folder = tmp_path / "usr-local-airflow-plugins"
    folder.mkdir()
    return folder


@pytest.fixture
def linked(dagops_env, git_remote, tmp_path, victim, fake_host, monkeypatch):
    """Repository `team`, published: dags/hello.py, `plugins` -> the victim folder (absolute), and `climb`, a
    chain of relative links each of which looks inside the tree but together leave it (`esc` -> the victim)."""
    source = git_remote({"dags/hello.py": HELLO, "docs/readme.md": "# team\n"})
    source.symlink("plugins", str(victim))
    source.symlink("d/up", "..")  # the tree's root: inside
    source.symlink("l0", "d/up/..")  # "d" when read lexically; the tree's parent when resolved
    for level in range(1, 16):  # 16 levels up reach "/" from the scratch tree (and stay under ELOOP's 40)
        source.symlink(f"l{level}", f"l{level - 1}/..")  # "." lexically; one more level up when resolved
    source.symlink("esc", "l15" + str(victim))  # inside lexically; the victim folder when resolved
    source.commit("links")
    bare = _bare_of(source, tmp_path)
    add_repository(
        "team", bare.url, conn_id=connection(monkeypatch, "team_git", provider="github", api_url=fake_host.url)
    )
    assert sync_repository("team").status == "published"
    return bare


def _body(path: str, content: str = GOOD_DAG) -> dict:
    return {"files": [{"path": path, "content": content}], "title": "Add a plugin"}


@pytest.mark.parametrize("path", ["plugins/x.py", "plugins/sub/x.py", "esc/x.py", "d/up/dags/x.py"])
def test_a_path_through_a_repository_link_is_refused_through_rest_and_writes_nothing(
    linked, victim, fake_host, web, path
):
    before = linked.branches()
    answer = web.api("POST", "repositories/team/proposals", json=_body(path), as_="editor")
    assert list(victim.rglob("*")) == []  # nothing was written at the link's target on the host
    assert linked.branches() == before and fake_host.calls == []  # nothing was pushed, no pull request
    assert answer.status_code == 422, answer.get_json()
    error = answer.get_json()["error"]
    assert error["code"] == "invalid_input" and "symbolic link" in error["message"], error
    scratch = settings.dagops_home() / "proposals"
    assert not scratch.exists() or list(scratch.rglob("x.py")) == []


def test_the_link_itself_and_submodules_are_refused(dagops_env, git_remote, tmp_path, victim):
    source = git_remote({"dags/hello.py": HELLO})
    source.symlink("dags/linked.py", str(victim / "linked.py"))
    source.commit("a link")
    other = git_remote({"lib/x.py": "X = 1\n"}, name="other")
    source.git("update-index", "--add", "--cacheinfo", f"160000,{other.head()},vendor")
    source.git("commit", "-q", "-m", "a submodule")
    bare = _bare_of(source, tmp_path)
    add_repository("team", bare.url)
    before = bare.branches()
    for path, reason in (
        ("dags/linked.py", "it is a symbolic link"),
        ("vendor/lib/x.py", "'vendor' is a submodule"),
        ("vendor", "it is a submodule"),
        ("dags", "it is a folder"),
        ("dags/hello.py/x.py", "'dags/hello.py' is a file"),
    ):
        with pytest.raises(InvalidInput, match=reason):
            proposals.propose("team", [{"path": path, "content": GOOD_DAG}], title="t", actor="someone")
    assert bare.branches() == before
    assert list(victim.iterdir()) == []


def test_a_link_in_the_live_release_is_refused_too(dagops_env, git_remote, tmp_path, victim):
    """The validated tree is the live release's: a link there (gone from the branch head) is refused as well."""
    source = git_remote({"dags/hello.py": HELLO})
    source.symlink("extra", str(victim))
    source.commit("a link")
    bare = _bare_of(source, tmp_path)
    add_repository("team", bare.url)
    assert sync_repository("team").status == "published"
    source.git("rm", "-q", "extra")
    source.commit("no link")
    subprocess.run(["git", "-C", str(source.path), "push", "-q", str(bare.path), "main"], check=True)
    with pytest.raises(InvalidInput, match=r"symbolic link in the live release"):
        proposals.propose("team", [{"path": "extra/x.py", "content": GOOD_DAG}], title="t", actor="someone")
    assert list(victim.iterdir()) == []


def _tree(bare: Bare, commit: str) -> dict[str, tuple[str, str]]:
    """path -> (mode, object) of every file of the commit."""
    entries = {}
    for line in bare.git("ls-tree", "-r", "--full-tree", commit).splitlines():
        meta, path = line.split("\t", 1)
        mode, _kind, sha = meta.split()
        entries[path] = (mode, sha)
    return entries


def _blob(bare: Bare, content: str) -> str:
    return subprocess.run(
        ["git", "-C", str(bare.path), "hash-object", "--stdin"],
        input=content,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def test_a_normal_proposal_commits_the_base_tree_plus_the_file(dagops_env, git_remote, tmp_path):
    source = git_remote({"dags/hello.py": HELLO, "scripts/run.sh": "#!/bin/sh\necho hi\n", "README.md": "# team\n"})
    (source.path / "scripts" / "run.sh").chmod(0o755)
    source.symlink("dags/alias.py", "hello.py")  # a link inside the repository: kept as it is
    source.commit("more files")
    bare = _bare_of(source, tmp_path)
    add_repository("team", bare.url)
    assert sync_repository("team").status == "published"
    base = bare.git("rev-parse", "main")

    result = proposals.propose(
        "team", [{"path": "dags/new/proposed.py", "content": GOOD_DAG}], title="Add a DAG", actor="someone"
    )

    assert result["status"] == "pushed" and result["base_commit"] == base
    assert bare.git("rev-parse", f"refs/heads/{result['branch']}") == result["commit"]
    assert bare.git("rev-parse", f"{result['commit']}^") == base
    before, after = _tree(bare, base), _tree(bare, result["commit"])
    assert after == {**before, "dags/new/proposed.py": ("100644", _blob(bare, GOOD_DAG))}
    assert after["dags/alias.py"][0] == "120000" and after["scripts/run.sh"][0] == "100755"


def test_changing_an_existing_file_keeps_every_other_file_of_the_base_tree(dagops_env, git_remote, tmp_path):
    files = {f"dags/team_{i}.py": dag_source(f"team_{i}") for i in range(3)}
    source = git_remote({**files, "dags/sql/q.sql": "select 1\n", "tools/run.sh": "#!/bin/sh\n"})
    (source.path / "tools" / "run.sh").chmod(0o755)
    source.commit("executable")
    bare = _bare_of(source, tmp_path)
    add_repository("team", bare.url)
    assert sync_repository("team").status == "published"
    base = bare.git("rev-parse", "main")
    changed = dag_source("team_1").replace("team_1", "team_1_v2")

    result = proposals.propose(
        "team",
        [{"path": "dags/team_1.py", "content": changed}, {"path": "tools/run.sh", "content": "#!/bin/sh\necho 2\n"}],
        title="Change two files",
        actor="someone",
    )

    before, after = _tree(bare, base), _tree(bare, result["commit"])
    assert set(after) == set(before)
    assert after["dags/team_1.py"] == ("100644", _blob(bare, changed))
    assert after["tools/run.sh"] == ("100755", _blob(bare, "#!/bin/sh\necho 2\n"))  # its executable bit is kept
    assert {p: e for p, e in after.items() if p not in ("dags/team_1.py", "tools/run.sh")} == {
        p: e for p, e in before.items() if p not in ("dags/team_1.py", "tools/run.sh")
    }


@pytest.mark.parametrize(
    "path",
    [
        "dags/a\x00.py",
        "dags/a\n.py",
        "dags/\x85x.py",
        "dags/a\u2028.py",
        ".GIT/config",
        "dags/.git./hooks/x",
        "git~1/x",
    ],
)
def test_control_characters_and_git_folder_spellings_are_refused(published, fake_host, path):
    before = published.branches()
    with pytest.raises(InvalidInput):
        proposals.propose("team", [{"path": path, "content": GOOD_DAG}], title="t", actor="someone")
    assert published.branches() == before and fake_host.calls == []
