"""Reading the mirror's objects without git (git/objects.py) gives git's own answer, or leaves the question to git.

Every test compares with what git itself says about the same objects, on real repositories.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from airflow_dagops.errors import GitError
from airflow_dagops.git import mirror as mirror_module
from airflow_dagops.git import objects
from airflow_dagops.git.mirror import TRACKED_REF, Mirror
from airflow_dagops.git.objects import TREE_CACHE_NAME, TreeReader, parse_commit, parse_ls_tree, read_loose


def _git(git_dir: Path, *args: str, data: bytes | None = None) -> bytes:
    return subprocess.run(["git", "-C", str(git_dir), *args], input=data, capture_output=True, check=True).stdout


def _git_lists(git_dir: Path, treeish: str):
    """What `git ls-tree -r` says, parsed the way the mirror always parsed it; None when git refuses."""
    result = subprocess.run(["git", "-C", str(git_dir), "ls-tree", "-r", "-z", treeish], capture_output=True)
    return parse_ls_tree(result.stdout)[0] if result.returncode == 0 else None


@pytest.fixture
def bare(tmp_path) -> Path:
    path = tmp_path / "objects.git"
    subprocess.run(["git", "init", "-q", "--bare", str(path)], check=True)
    return path


def _blob(git_dir: Path, data: bytes) -> str:
    return _git(git_dir, "hash-object", "-w", "--stdin", data=data).strip().decode()


def _tree(git_dir: Path, entries: list[tuple[bytes, bytes, str]]) -> str:
    """A tree object exactly as given (`--literally`: git would refuse to write some of these itself)."""
    raw = b"".join(mode + b" " + name + b"\0" + bytes.fromhex(sha) for mode, name, sha in entries)
    return _git(git_dir, "hash-object", "-t", "tree", "-w", "--literally", "--stdin", data=raw).strip().decode()


def _commit(git_dir: Path, tree: str, headers: bytes = b"", message: bytes = b"message\n") -> str:
    raw = (
        f"tree {tree}\n".encode()
        + b"author A U Thor <author@example.com> 1700000000 +0200\n"
        + b"committer C O Mitter <committer@example.com> 1700000100 -0100\n"
        + headers
        + b"\n"
        + message
    )
    return _git(git_dir, "hash-object", "-t", "commit", "-w", "--literally", "--stdin", data=raw).strip().decode()


@pytest.fixture
def git_calls(monkeypatch) -> list[list[str]]:
    """The git commands the mirror starts itself (fetches run through git/remote.py and are not counted)."""
    calls: list[list[str]] = []
    real = mirror_module.run_git

    def counting(args, **kwargs):
        calls.append(list(args))
        return real(args, **kwargs)

    monkeypatch.setattr(mirror_module, "run_git", counting)
    return calls


def test_a_small_change_is_described_and_listed_without_starting_git(tmp_path, git_remote, git_calls):
    files = {f"dags/{team}/d{i}.py": f"x = {i}\n" for team in ("a", "b", "c") for i in range(5)}
    remote = git_remote({**files, "README.md": "hi\n"})
    mirror = Mirror(path=tmp_path / "mirror.git", url=remote.url)
    first = mirror.fetch("refs/heads/main").sha
    # A big first fetch leaves its objects packed, where only git reads them.
    _git(mirror.path, "repack", "-a", "-d", "-q")
    _git(mirror.path, "prune-packed")
    git_calls.clear()
    assert mirror.list_tree(first) == _git_lists(mirror.path, first)
    assert [call[2] for call in git_calls] == ["ls-tree"]  # packed: git lists it, and its subtrees are cached
    assert (mirror.path / TREE_CACHE_NAME).is_file()

    second = remote.commit("one change", {"dags/b/d3.py": "x = 'changed'\n"})
    git_calls.clear()
    info = mirror.fetch("refs/heads/main")
    listed = mirror.list_tree(second)
    assert git_calls == []  # the new commit and trees are loose, the unchanged folders' trees cached
    assert listed == _git_lists(mirror.path, second)
    for subdir in ("dags/b", "dags/a"):  # a changed folder (loose) and an unchanged one (cached)
        assert mirror.list_tree(second, subdir) == _git_lists(mirror.path, f"{second}:{subdir}")
    assert git_calls == []
    assert info == mirror.commit_info(second)  # what `git log` says


def test_crafted_trees_are_listed_as_git_lists_them_or_left_to_git(bare):
    one, two = _blob(bare, b"one"), _blob(bare, b"two")
    folder = _tree(bare, [(b"100644", b"x.py", one), (b"100755", b"run.sh", two), (b"120000", b"link", one)])
    trees = {
        "modes git writes": [(b"100644", b"README", one), (b"40000", b"dags", folder), (b"160000", b"module", one)],
        "modes git would not write": [(b"100664", b"a", one), (b"100775", b"b", two), (b"0100644", b"c", one)],
        "the same name twice": [(b"100644", b"twice", one), (b"100644", b"twice", two)],
        "an empty folder": [(b"40000", b"empty", _tree(bare, [])), (b"100644", b"f", one)],
        "bytes that are not UTF-8": [(b"100644", b"caf\xe9\n\tname", one)],
        "a dot-dot name": [(b"100644", b"..", one)],
        "a name with a slash": [(b"100644", b"a/b", one)],
        "a mode that is not octal": [(b"10064x", b"a", one)],
    }
    mirror = Mirror(path=bare, url="file:///unused")
    for why, entries in trees.items():
        commit = _commit(bare, _tree(bare, entries))
        git_says = _git_lists(bare, commit)
        read_here = TreeReader(bare).list_commit(commit, None)
        if git_says is None:  # git refuses the tree: so does the mirror, with git's error
            assert read_here is None, why
            with pytest.raises(GitError, match="cannot list commit"):
                mirror.list_tree(commit)
            continue
        assert read_here is None or read_here == git_says, why
        assert mirror.list_tree(commit) == git_says, why
    # Names git resolves its own way, or refuses, are left to it.
    commit = _commit(bare, _tree(bare, [(b"40000", b"dags", folder)]))
    assert TreeReader(bare).list_commit(commit, "dags") == _git_lists(bare, f"{commit}:dags")
    for subdir in ("dags/", "dags/x.py", "nope", "./dags"):
        assert TreeReader(bare).list_commit(commit, subdir) is None, subdir


def test_commit_details_read_here_are_what_git_log_says(bare):
    tree = _tree(bare, [])
    mirror = Mirror(path=bare, url="file:///unused")
    commits = {
        "plain": _commit(bare, tree, message=b"subject\n\nbody\n"),
        "a signature": _commit(bare, tree, b"gpgsig -----BEGIN-----\n author Forged <f@x> 1 +0000\n -----END-----\n"),
        "a NUL in the message": _commit(bare, tree, message=b"before\0after\n"),
        "no message": _commit(bare, tree, message=b""),
        "bytes that are not UTF-8": _commit(bare, tree, message=b"m\xe9ssage\n"),
    }
    for why, sha in commits.items():
        assert parse_commit(sha, read_loose(bare, sha, b"commit")) == mirror.commit_info(sha), why
    # Where git's answer could differ, it is asked.
    two_authors = _commit(bare, tree, b"author Second <s@x> 1 +0000\n")
    latin1 = _commit(bare, tree, b"encoding ISO-8859-1\n")
    for sha in (two_authors, latin1):
        assert parse_commit(sha, read_loose(bare, sha, b"commit")) is None


def test_a_tracked_annotated_tag_is_peeled_by_git(tmp_path, git_remote):
    remote = git_remote()
    remote.git("tag", "-a", "v1", "-m", "release")
    mirror = Mirror(path=tmp_path / "mirror.git", url=remote.url)
    assert mirror.fetch("refs/tags/v1").sha == remote.head()  # the ref names a tag object: git log peels it
    assert read_loose(mirror.path, _git(mirror.path, "rev-parse", TRACKED_REF).decode().strip(), b"commit") is None


def test_a_malformed_tree_cache_changes_nothing(tmp_path, git_remote):
    remote = git_remote({f"dags/d{i}.py": f"x = {i}\n" for i in range(5)})
    mirror = Mirror(path=tmp_path / "mirror.git", url=remote.url)
    sha = mirror.fetch("refs/heads/main").sha
    _git(mirror.path, "repack", "-a", "-d", "-q")
    _git(mirror.path, "prune-packed")
    for garbage in ("not json", '{"abc": "not a listing"}', '{"abc": [["100644", 3, "x"]]}', "[]"):
        (mirror.path / TREE_CACHE_NAME).write_text(garbage)
        assert objects.load_tree_cache(mirror.path) == {}
        assert mirror.list_tree(sha) == _git_lists(mirror.path, sha)


def test_a_tree_bomb_is_left_to_git(bare, monkeypatch):
    monkeypatch.setattr(objects, "MAX_ENTRIES", 50)
    level = _tree(bare, [(b"100644", b"f", _blob(bare, b"x"))])
    for _ in range(6):  # every level names the one below twice: 64 files from 7 small trees
        level = _tree(bare, [(b"40000", b"a", level), (b"40000", b"b", level)])
    commit = _commit(bare, level)
    assert TreeReader(bare).list_commit(commit, None) is None
    listed = Mirror(path=bare, url="file:///unused").list_tree(commit)
    assert len(listed) == 64 and listed == _git_lists(bare, commit)
    # The cache keeps each subtree once (6 listings of 1-2 entries); reading the bomb from it stays bounded.
    assert sum(len(listing) for listing in objects.load_tree_cache(bare).values()) == 11
    assert TreeReader(bare).list_commit(commit, None) is None
