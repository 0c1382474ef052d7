"""Marketplace package trees hold no symlink that leads out of the package folder (issue 16): the export of a
catalog package is judged like a release's, and a local folder being published is refused if it has one."""

from __future__ import annotations

import os

import pytest

from airflow_dagops.deploy.links import escaping_links
from airflow_dagops.errors import InvalidInput
from airflow_dagops.git.mirror import Mirror
from airflow_dagops.marketplace import publishing
from airflow_dagops.marketplace.catalog_reader import exported_package
from tests.deploy.test_links import _escaping_entries
from tests.helpers.repos import write_file
from tests.marketplace.conftest import package_files


def test_a_package_export_holds_no_link_out_of_its_folder(tmp_path, git_remote, dagops_env):
    remote = git_remote({"pkg/dagops-package.yaml": "name: pkg\n", "pkg/pkg.py": "x = 1\n", "other/s.txt": "s\n"})
    remote.symlink("pkg/b", ".")
    remote.symlink("pkg/out", "b/../other/s.txt")  # inside the catalog, outside the package folder
    remote.symlink("pkg/etc", "b/b/../../../../etc")
    remote.symlink("pkg/alias.py", "b/pkg.py")
    remote.commit("links")
    mirror = Mirror(path=tmp_path / "catalog.git", url=remote.url)
    sha = mirror.fetch("refs/heads/main").sha
    with exported_package(mirror, sha, "pkg", max_size=10**9) as folder:
        assert folder.parent.parent == dagops_env.dagops_home / "tmp"  # swept if this process is killed
        assert _escaping_entries(folder) == []
        assert not os.path.lexists(folder / "out") and not os.path.lexists(folder / "etc")
        assert (folder / "alias.py").read_text() == "x = 1\n"
    assert not folder.parent.exists()


def test_publishing_refuses_a_folder_whose_links_lead_out_of_it_and_pushes_good_links_as_links(community, tmp_path):
    root = tmp_path / "work"
    for relative, content in package_files("etl_kit", "1.0.0").items():
        write_file(root, relative, content)
    folder = root / "etl_kit"
    (root / "secret.txt").write_text("not part of the package\n")
    os.symlink(".", folder / "b")
    os.symlink("b/../secret.txt", folder / "leak.txt")
    with pytest.raises(InvalidInput, match=r"leak\.txt: symlink points outside the repository \(b/\.\./secret\.txt\)"):
        publishing.publish(folder, catalog="community", actor="dana")
    assert "dagops/publish" not in community.git("branch", "--list")

    os.unlink(folder / "leak.txt")
    os.symlink("b/etl_kit.py", folder / "alias.py")
    assert escaping_links(folder) == {}
    result = publishing.publish(folder, catalog="community", actor="dana")
    tree = community.git("ls-tree", "-r", result["commit"], "etl_kit")
    modes = {line.split("\t")[1]: line.split()[0] for line in tree.splitlines()}
    assert modes["etl_kit/alias.py"] == "120000" and modes["etl_kit/b"] == "120000"
    assert community.git("cat-file", "-p", f"{result['commit']}:etl_kit/alias.py") == "b/etl_kit.py"
