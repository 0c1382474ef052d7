from __future__ import annotations

import os

import pytest

from airflow_dagops.deploy.publish import current_target, publish
from airflow_dagops.deploy.releases import (
    MANIFEST_NAME,
    clean_temporary_exports,
    export_release,
    link_tree,
    read_manifest,
)
from airflow_dagops.errors import Conflict, InvalidInput
from airflow_dagops.git.mirror import Mirror


@pytest.fixture
def fetched(tmp_path, git_remote):
    def make(remote):
        mirror = Mirror(path=tmp_path / "mirror.git", url=remote.url)
        return mirror, mirror.fetch("refs/heads/main").sha

    return make


def _export(mirror, sha, dest, base=None, subdir=None, max_size=10**9):
    return export_release(
        mirror=mirror, sha=sha, subdir=subdir, dest=dest, base=base, max_size=max_size, metadata={"repository": "r"}
    )


def test_export_writes_the_tree_read_only_with_a_manifest(tmp_path, git_remote, fetched):
    remote = git_remote({"dags/a.py": "a = 1\n", "tools/run.sh": "#!/bin/sh\n", "README.md": "hi\n"})
    (remote.path / "tools/run.sh").chmod(0o755)
    remote.commit("exec bit")
    mirror, sha = fetched(remote)
    result = _export(mirror, sha, tmp_path / "rel" / sha)
    root = result.path
    assert (root / "dags/a.py").read_text() == "a = 1\n"
    assert os.access(root / "tools/run.sh", os.X_OK)
    assert oct((root / "dags/a.py").stat().st_mode & 0o777) == "0o444"
    manifest = read_manifest(root)
    assert manifest["commit"] == sha and set(manifest["files"]) == {"dags/a.py", "tools/run.sh", "README.md"}


def test_unchanged_files_are_hard_links_to_the_base_release(tmp_path, git_remote, fetched):
    remote = git_remote({f"dags/d{i}.py": f"x = {i}\n" for i in range(20)})
    mirror, first = fetched(remote)
    base = _export(mirror, first, tmp_path / "rel" / first).path
    remote.commit("one change", {"dags/d3.py": "x = 'changed'\n", "dags/new.py": "y = 1\n", "dags/d4.py": None})
    mirror, second = fetched(remote)
    result = _export(mirror, second, tmp_path / "rel" / second, base=base)
    assert (result.linked, result.written) == (18, 2)
    assert (result.path / "dags/d0.py").stat().st_ino == (base / "dags/d0.py").stat().st_ino
    assert (result.path / "dags/d3.py").read_text() == "x = 'changed'\n"
    assert not (result.path / "dags/d4.py").exists()
    assert (base / "dags/d3.py").read_text() == "x = 3\n"  # the old release is untouched


def test_a_link_of_the_base_is_not_hard_linked_as_a_file_of_the_same_blob(tmp_path, git_remote, fetched):
    # A symlink's blob is its target's text, so a file holding that text has the same blob id.
    remote = git_remote({"dags/real.py": "x = 1\n"})
    remote.symlink("dags/alias.py", "real.py")
    remote.commit("a link")
    mirror, first = fetched(remote)
    base = _export(mirror, first, tmp_path / "rel" / first).path
    assert (base / "dags/alias.py").is_symlink()
    remote.delete("dags/alias.py")
    remote.commit("the link becomes a file", {"dags/alias.py": "real.py"})
    mirror, second = fetched(remote)
    result = _export(mirror, second, tmp_path / "rel" / second, base=base)
    alias = result.path / "dags/alias.py"
    assert not alias.is_symlink() and alias.read_text() == "real.py" and (result.linked, result.written) == (1, 1)


def test_symlinks_inside_are_kept_and_outside_are_skipped_with_a_finding(tmp_path, git_remote, fetched):
    remote = git_remote({"dags/real.py": "r = 1\n"})
    remote.symlink("dags/alias.py", "real.py")
    remote.symlink("dags/passwd", "/etc/passwd")
    remote.symlink("dags/up", "../../outside")
    remote.commit("links")
    mirror, sha = fetched(remote)
    result = _export(mirror, sha, tmp_path / "rel" / sha)
    assert os.readlink(result.path / "dags/alias.py") == "real.py"
    assert not (result.path / "dags/passwd").exists() and not (result.path / "dags/passwd").is_symlink()
    assert not (result.path / "dags/up").is_symlink()
    rules = {(f.rule, f.file) for f in result.findings}
    assert rules == {("symlink-outside-tree", "dags/passwd"), ("symlink-outside-tree", "dags/up")}


def test_subdir_exports_only_that_folder(tmp_path, git_remote, fetched):
    remote = git_remote({"dags/a.py": "a = 1\n", "src/lib.py": "b = 1\n"})
    mirror, sha = fetched(remote)
    result = _export(mirror, sha, tmp_path / "rel" / sha, subdir="dags")
    assert sorted(p.name for p in result.path.iterdir()) == sorted(["a.py", MANIFEST_NAME])
    with pytest.raises(InvalidInput, match="subdir 'nope' does not exist"):
        _export(mirror, sha, tmp_path / "rel2" / sha, subdir="nope")


def test_size_limit_refuses_before_writing_anything(tmp_path, git_remote, fetched):
    remote = git_remote({"big.bin": b"x" * 4096})
    mirror, sha = fetched(remote)
    with pytest.raises(InvalidInput, match="max_repo_size"):
        _export(mirror, sha, tmp_path / "rel" / sha, max_size=1024)
    assert not (tmp_path / "rel").exists() or not any((tmp_path / "rel").iterdir())


def test_an_export_whose_base_release_is_gone_writes_every_file(tmp_path, git_remote, fetched):
    remote = git_remote({"dags/a.py": "a = 1\n", "dags/b.py": "b = 1\n"})
    mirror, first = fetched(remote)
    base = _export(mirror, first, tmp_path / "rel" / first).path
    remote.commit("b changes", {"dags/b.py": "b = 2\n"})
    mirror, second = fetched(remote)
    base.rename(tmp_path / "pruned")  # pruned since it was live
    result = _export(mirror, second, tmp_path / "rel" / second, base=tmp_path / "rel" / first)
    assert (result.linked, result.written) == (0, 2)
    assert (result.path / "dags/a.py").read_text() == "a = 1\n"


def test_a_linked_copy_keeps_modes_and_links_as_they_are(tmp_path):
    source = tmp_path / "release"
    (source / "dags" / "team").mkdir(parents=True)
    (source / "dags" / "team" / "a.py").write_text("a = 1\n")
    (source / "dags" / "team" / "a.py").chmod(0o444)
    (source / "run.sh").write_text("#!/bin/sh\n")
    (source / "run.sh").chmod(0o555)
    os.symlink("team/a.py", source / "dags" / "alias.py")
    os.symlink("../../elsewhere", source / "dags" / "dangling")  # copied as it is, never followed
    (source / "dags").chmod(0o750)
    copy = tmp_path / "version" / "ns"
    copy.parent.mkdir()
    link_tree(source, copy)
    assert (copy / "dags" / "team" / "a.py").stat().st_ino == (source / "dags" / "team" / "a.py").stat().st_ino
    assert oct((copy / "run.sh").stat().st_mode & 0o777) == "0o555" and os.access(copy / "run.sh", os.X_OK)
    assert oct((copy / "dags").stat().st_mode & 0o777) == "0o750"
    assert os.readlink(copy / "dags" / "alias.py") == "team/a.py"
    assert os.readlink(copy / "dags" / "dangling") == "../../elsewhere"
    assert sorted(p.name for p in copy.rglob("*")) == sorted(p.name for p in source.rglob("*"))
    with pytest.raises(FileExistsError):
        link_tree(source, copy)  # never into a folder that exists


def test_leftovers_of_killed_exports_are_cleaned(tmp_path):
    namespace = tmp_path / "ns"
    (namespace / ".tmp-abc-123" / "dags").mkdir(parents=True)
    (namespace / "complete").mkdir()
    clean_temporary_exports(namespace)
    assert [p.name for p in namespace.iterdir()] == ["complete"]


def test_publish_swaps_the_link_atomically_and_refuses_foreign_folders(tmp_path):
    first, second = tmp_path / "r1", tmp_path / "r2"
    first.mkdir(), second.mkdir()
    link = tmp_path / "dags" / "ns"
    publish(link, first)
    assert current_target(link) == first
    publish(link, second)
    assert current_target(link) == second
    assert [p.name for p in link.parent.iterdir()] == ["ns"]  # no temp link left behind
    foreign = tmp_path / "dags" / "theirs"
    foreign.mkdir()
    with pytest.raises(Conflict, match="not managed by dagops"):
        publish(foreign, first)
