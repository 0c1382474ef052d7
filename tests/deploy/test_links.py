"""Symlinks are judged by where they really resolve inside the tree being built, never by their text.

Issue 16: a chain of relative links (`b -> .`, `x1 -> b/..`, ...) reads as "inside" one link at a time, yet
ends outside the release; a published namespace served /etc/passwd and other namespaces' releases. Every tree
dagops writes from git (releases, pull-request check trees, marketplace package exports) goes through
`export_release`, whose links are resolved by `deploy/links.py` against the commit's own listing.
"""

from __future__ import annotations

import os
from pathlib import Path

from airflow_dagops import paths
from airflow_dagops.deploy.links import MAX_LINK_HOPS, TreeLinks
from airflow_dagops.deploy.releases import MANIFEST_NAME, export_release, read_manifest
from airflow_dagops.git.mirror import Mirror
from airflow_dagops.repositories.registry import add_repository
from airflow_dagops.sync.sync import sync_repository
from tests.helpers.repos import dag_source

# Each of these ends outside the root when followed from a fresh checkout; none may be created.
ESCAPES = {
    "x1": "b/..",  # b -> . : `..` then leaves the root
    "x2": "x1/..",
    "x3": "x2/..",
    "x": "b/b/b/../../..",
    "deep/y": "../b/b/../..",
    "abs": "/etc/passwd",
    "abs_dir": "/etc",
    "sibling": "../../other",  # <releases>/<namespace>/<sha>/../../other: another namespace's releases
    "sibling_chain": "b/../../other",
    "through_folder": "dags/../../other",
    "loop1": "loop2",
    "loop2": "loop1",
    "self": "self",
    "dangling": "no/such/file.py",
    "file_as_folder": "dags/hello.py/..",
    "via_escape": "x1/etc/passwd",  # through a link that is itself refused
}
# Each of these resolves inside; all are kept, with their text unchanged.
INSIDE = {
    "b": ".",
    "dags/alias.py": "hello.py",
    "lib": "src/pkg",  # a link to a folder
    "libs": "lib",  # a link to a link to a folder
    "dags/uses": "../libs",  # through links, to a folder
    "dags/mod.py": "../libs/mod.py",  # through links to a folder, to a file
    "up_and_back": "b/dags/../src/./pkg/mod.py",
}


def _chain_repo(git_remote):
    remote = git_remote({"dags/hello.py": dag_source("hello"), "src/pkg/mod.py": "VALUE = 1\n", "deep/keep": "k\n"})
    for path, target in {**INSIDE, **ESCAPES}.items():
        remote.symlink(path, target)
    remote.commit("links")
    return remote


def _escaping_entries(root: Path) -> list[str]:
    """Every path under `root` (not following links) whose realpath is not inside `root`."""
    real_root = os.path.realpath(root)
    bad = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            real = os.path.realpath(os.path.join(dirpath, name))
            if real != real_root and not real.startswith(real_root + os.sep):
                bad.append(os.path.relpath(os.path.join(dirpath, name), root))
    return sorted(bad)


def _export(tmp_path, remote, dest, *, subdir=None, base=None):
    mirror = Mirror(path=tmp_path / "mirror.git", url=remote.url)
    sha = mirror.fetch("refs/heads/main").sha
    return export_release(
        mirror=mirror, sha=sha, subdir=subdir, dest=dest, base=base, max_size=10**9, metadata={"repository": "r"}
    )


# -- the resolver, on listings ---------------------------------------------------------------------------------
def test_the_resolver_follows_links_like_the_kernel_but_only_inside_the_listing():
    tree = TreeLinks(["dags/hello.py", "src/pkg/mod.py"], {**INSIDE, **ESCAPES})
    assert tree.resolve("b") == ""
    assert tree.resolve("dags/uses") == "src/pkg"
    assert tree.resolve("dags/mod.py") == "src/pkg/mod.py"
    assert tree.resolve("up_and_back") == "src/pkg/mod.py"
    assert set(tree.kept()) == set(INSIDE)
    reasons = {path: tree.judge(path) for path in ESCAPES}
    assert reasons["x"] == "symlink points outside the repository (b/b/b/../../..)"
    assert reasons["x3"] == "symlink points outside the repository (x2/..)"
    assert "loops" in reasons["loop1"] and "loops" in reasons["self"]
    assert "does not exist" in reasons["dangling"] and "does not exist" in reasons["file_as_folder"]


def test_the_answer_does_not_depend_on_the_order_links_are_judged_in():
    links = {**INSIDE, **ESCAPES}
    expected = set(TreeLinks(["dags/hello.py", "src/pkg/mod.py"], links).kept())
    for order in (sorted(links), sorted(links, reverse=True), sorted(links, key=len)):
        tree = TreeLinks(["dags/hello.py", "src/pkg/mod.py"], {path: links[path] for path in order})
        assert {path for path in order if tree.judge(path) is None} == expected


def test_a_chain_longer_than_the_kernel_follows_is_refused_and_a_wide_one_is_cheap():
    deep = {"l0": "f", **{f"l{i}": f"l{i - 1}" for i in range(1, MAX_LINK_HOPS + 5)}}
    tree = TreeLinks(["f"], deep)
    assert tree.judge("l3") is None
    assert "more than" in tree.judge(f"l{MAX_LINK_HOPS + 4}")
    # 2**30 paths through this ladder when followed naively: memoized, each link is walked once.
    ladder = {"d0": "."} | {f"d{i}": f"d{i - 1}/d{i - 1}" for i in range(1, 31)}
    assert TreeLinks([], ladder).judge("d30") is None


# -- releases: the export from git ------------------------------------------------------------------------------
def test_export_keeps_links_that_resolve_inside_and_refuses_every_chain_out(tmp_path, git_remote):
    remote = _chain_repo(git_remote)
    result = _export(tmp_path, remote, tmp_path / "releases" / "team" / "sha")
    root = result.path
    assert _escaping_entries(root) == []
    for path, target in INSIDE.items():
        assert os.readlink(root / path) == target
    assert (root / "dags/mod.py").read_text() == "VALUE = 1\n"
    assert (root / "dags/uses/mod.py").read_text() == "VALUE = 1\n"
    for path in ESCAPES:
        assert not os.path.lexists(root / path), path
    refused = {f.file for f in result.findings if f.rule == "symlink-outside-tree"}
    assert refused == set(ESCAPES)
    manifest = read_manifest(root)
    assert set(INSIDE) <= set(manifest["files"]) and not set(ESCAPES) & set(manifest["files"])


def test_links_are_judged_against_the_exported_subdir_not_the_repository(tmp_path, git_remote):
    remote = git_remote({"dags/a.py": "a = 1\n", "secrets/token": "s3cr3t\n"})
    remote.symlink("dags/b", ".")
    remote.symlink("dags/token", "b/../secrets/token")  # inside the repository, outside the subdir
    remote.symlink("dags/alias.py", "b/a.py")
    remote.commit("links")
    result = _export(tmp_path, remote, tmp_path / "rel" / "sha", subdir="dags")
    assert not os.path.lexists(result.path / "token")
    assert (result.path / "alias.py").read_text() == "a = 1\n"
    assert _escaping_entries(result.path) == []


def test_a_base_symlink_is_never_hard_linked_as_the_file_with_the_same_blob(tmp_path, git_remote):
    """The blob of a link is its target text: a regular file with that text has the same blob. Hard-linking
    the base's entry would bring the base's link into a tree where it was never judged."""
    remote = git_remote({"d/x": "x\n", "x": "outside-of-d\n"})
    remote.symlink("a", "d/../x")
    remote.commit("a link")
    base = _export(tmp_path, remote, tmp_path / "releases" / "team" / "one").path
    assert os.readlink(base / "a") == "d/../x"
    remote.git("rm", "-q", "-r", "d", "a")
    remote.symlink("d", ".")  # now `d/../x` would be `./../x`: outside
    remote.write("a", "d/../x")  # a regular file, same blob as the link before
    remote.commit("a file")
    result = _export(tmp_path, remote, tmp_path / "releases" / "team" / "two", base=base)
    assert not (result.path / "a").is_symlink() and (result.path / "a").read_text() == "d/../x"
    assert _escaping_entries(result.path) == []


def test_names_dagops_writes_in_a_release_are_not_exported(tmp_path, git_remote):
    remote = git_remote({"dags/a.py": "a = 1\n"})
    remote.symlink(MANIFEST_NAME, "dags/a.py")  # the manifest would be written through it, into a.py
    remote.symlink(".airflowignore.dagops-tmp", "dags/a.py")
    remote.commit("reserved names")
    result = _export(tmp_path, remote, tmp_path / "rel" / "sha")
    assert not (result.path / MANIFEST_NAME).is_symlink() and read_manifest(result.path)["commit"]
    assert (result.path / "dags/a.py").read_text() == "a = 1\n"
    assert not os.path.lexists(result.path / ".airflowignore.dagops-tmp")
    skipped = {f.file: f.rule for f in result.findings}
    assert skipped == {MANIFEST_NAME: "file-not-exported", ".airflowignore.dagops-tmp": "file-not-exported"}


# -- through the sync face: what a namespace serves --------------------------------------------------------------
def test_a_synced_namespace_serves_nothing_outside_its_release(dagops_env, git_remote):
    other = git_remote({"dags/other.py": dag_source("other"), "secret.txt": "other team's\n"}, name="other")
    add_repository("other", other.url)
    assert sync_repository("other").status == "published"
    remote = _chain_repo(git_remote)
    add_repository("team", remote.url)
    outcome = sync_repository("team")
    assert outcome.status == "published", outcome
    namespace = dagops_env.dags_folder / "team"
    release = Path(os.path.realpath(namespace))
    assert release == paths.release_dir("team", remote.head()).resolve()
    assert _escaping_entries(namespace) == []
    assert not os.path.lexists(namespace / "sibling") and not os.path.lexists(namespace / "x3")
    assert (namespace / "dags/mod.py").read_text() == "VALUE = 1\n"  # good links still work
    warned = {f["file"] for f in outcome.findings if f["rule"] == "symlink-outside-tree"}
    assert set(ESCAPES) <= warned


# -- pull-request check trees --------------------------------------------------------------------------------------
def test_a_pull_request_check_tree_holds_no_link_out_of_it(dagops_env, git_remote, monkeypatch):
    from airflow_dagops.checks import service as checks
    from airflow_dagops.store.db import session_scope
    from airflow_dagops.store.models import CheckRun, Repository

    remote = git_remote({"dags/hello.py": dag_source("hello")})
    add_repository("team", remote.url)
    remote.git("checkout", "-q", "-b", "feature")
    remote.symlink("b", ".")
    for path in ("x1", "x2", "x", "abs", "sibling_chain"):
        remote.symlink(path, ESCAPES[path])
    remote.symlink("dags/alias.py", "hello.py")
    head = remote.commit("links")
    with session_scope() as session:
        repo_id = session.query(Repository).filter_by(name="team").one().id
        check = CheckRun(
            repository_id=repo_id, provider="github", number=1, ref="refs/heads/feature", head_sha=head, status="queued"
        )
        session.add(check)
        session.flush()
        check_id = check.id
    seen = {}
    real_gate = checks.check_tree

    def gate_and_look(tree, **kwargs):  # the tree the release gate judges
        seen["escaping"] = _escaping_entries(tree)
        seen["alias"] = os.readlink(tree / "dags/alias.py")
        return real_gate(tree, **kwargs)

    monkeypatch.setattr(checks, "check_tree", gate_and_look)
    result = checks.run_check(check_id)
    assert result["status"] == "success", result
    assert seen == {"escaping": [], "alias": "hello.py"}
    refused = {f["file"] for f in result["findings"] if f["rule"] == "symlink-outside-tree"}
    assert refused == {"x1", "x2", "x", "abs", "sibling_chain"}
    assert not any((dagops_env.dagops_home / "tmp").iterdir())  # the check's tree is removed afterwards
