"""Temporary folders a killed process left behind are removed; folders in use never are (issue 16)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from airflow_dagops import tempdirs
from airflow_dagops.sync.sense import empty_trash


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _folder(root, name: str):
    path = root / name
    path.mkdir(parents=True)
    (path / "tree").mkdir()
    (path / "tree" / "file").write_text("x")
    return path


def _age(path, seconds: float) -> None:
    old = time.time() - seconds
    for entry in [path, *path.iterdir()]:
        os.utime(entry, (old, old), follow_symlinks=False)


def test_a_folder_of_a_dead_process_is_removed_and_one_in_use_stays(tmp_path):
    owner = tempdirs.owner_token()
    dead = _folder(tmp_path, f"check-7-{owner}.{_dead_pid()}-abcdefgh")
    live = _folder(tmp_path, f"check-8-{owner}.{os.getpid()}-abcdefgh")
    _age(live, 10 * tempdirs.STALE_AFTER)  # old, but its process is alive: in use
    removed = tempdirs.sweep([(tmp_path, None)])
    assert removed == [dead] and not dead.exists()
    assert live.is_dir() and (live / "tree" / "file").read_text() == "x"


def test_a_folder_of_another_host_or_an_older_version_is_judged_by_its_age(tmp_path):
    fresh_foreign = _folder(tmp_path, f"check-1-0123456789.{_dead_pid()}-abcdefgh")  # a pid of another machine
    old_foreign = _folder(tmp_path, "check-2-0123456789.1-abcdefgh")
    _age(old_foreign, tempdirs.STALE_AFTER + 60)
    fresh_legacy = _folder(tmp_path, "dagops-sandbox-k2j3h4g5")
    old_legacy = _folder(tmp_path, "dagops-sandbox-a1b2c3d4")
    _age(old_legacy, tempdirs.STALE_AFTER + 60)
    touched = _folder(tmp_path, "dagops-test-q1w2e3r4")
    _age(touched, tempdirs.STALE_AFTER + 60)
    (touched / "log").write_text("still written to")  # a file inside changed: in use
    removed = tempdirs.sweep([(tmp_path, None)])
    assert sorted(removed) == sorted([old_foreign, old_legacy])
    assert fresh_foreign.is_dir() and fresh_legacy.is_dir() and touched.is_dir()


def test_only_our_own_prefixes_are_looked_at_and_links_are_never_followed(tmp_path):
    outside = _folder(tmp_path / "elsewhere", "precious")
    root = tmp_path / "systemtmp"
    root.mkdir()
    dead = tempdirs.owned_prefix("dagops-sandbox-").replace(f".{os.getpid()}-", f".{_dead_pid()}-")
    os.symlink(outside, root / f"{dead}link")
    other = _folder(root, "someone-elses-" + dead.split("dagops-sandbox-")[1] + "x")
    _age(other, 10 * tempdirs.STALE_AFTER)
    mine = _folder(root, dead + "abcdefgh")
    removed = tempdirs.sweep([(root, tempdirs.SYSTEM_PREFIXES)])
    assert removed == [mine]
    assert (outside / "tree" / "file").read_text() == "x" and os.path.islink(root / f"{dead}link")
    assert other.is_dir()


def test_the_sense_step_sweeps_dagops_home_tmp(dagops_env):
    made = tempdirs.make_temp_dir("check-3-")
    assert made.parent == dagops_env.dagops_home / "tmp" and f".{os.getpid()}-" in made.name
    leftover = made.with_name(made.name.replace(f".{os.getpid()}-", f".{_dead_pid()}-"))
    leftover.mkdir()
    empty_trash()
    assert made.is_dir() and not leftover.exists()
