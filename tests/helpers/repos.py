"""Real git repositories in tmp dirs (used as remotes through file://), DAG sources and files."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Dana Author",
    "GIT_AUTHOR_EMAIL": "dana@example.com",
    "GIT_COMMITTER_NAME": "Dana Author",
    "GIT_COMMITTER_EMAIL": "dana@example.com",
}

DAG_TEMPLATE = """from airflow.sdk import dag, task
import pendulum


@dag(dag_id="{dag_id}", schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False, tags=["test"])
def {func}():
    @task
    def hello():
        return "{dag_id}"

    hello()


{func}()
"""


def dag_source(dag_id: str) -> str:
    return DAG_TEMPLATE.format(dag_id=dag_id, func=dag_id.replace("-", "_"))


def write_file(root: Path, relative: str, content: str | bytes) -> str:
    """Write one file under `root` (creating folders); returns `relative` for use in file lists."""
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return relative


def run_git(*args: str, cwd: Path) -> str:
    env = {**os.environ, **GIT_IDENTITY}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


@dataclass
class GitRemote:
    """A real repository used as a remote through file://."""

    path: Path

    @property
    def url(self) -> str:
        return f"file://{self.path}"

    def write(self, relative: str, content: str | bytes) -> None:
        target = self.path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)

    def delete(self, relative: str) -> None:
        (self.path / relative).unlink()

    def symlink(self, relative: str, target: str) -> None:
        link = self.path / relative
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, link)

    def commit(self, message: str = "change", files: dict[str, str | bytes | None] | None = None) -> str:
        for relative, content in (files or {}).items():
            if content is None:
                self.delete(relative)
            else:
                self.write(relative, content)
        run_git("add", "-A", cwd=self.path)
        run_git("commit", "-q", "--allow-empty", "-m", message, cwd=self.path)
        return self.head()

    def head(self, ref: str = "HEAD") -> str:
        return run_git("rev-parse", ref, cwd=self.path)

    def git(self, *args: str) -> str:
        return run_git(*args, cwd=self.path)


@dataclass
class Bare:
    """A bare repository (what a Git host keeps), used as a remote through file://."""

    path: Path

    @property
    def url(self) -> str:
        return f"file://{self.path}"

    def git(self, *args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(self.path), *args], check=True, capture_output=True, text=True
        ).stdout.strip()

    def branches(self) -> list[str]:
        return self.git("for-each-ref", "--format=%(refname)", "refs/heads").splitlines()


def make_bare_repo(root: Path, name: str, source: Path) -> Path:
    """A bare clone of `source` (a test git repository) under `root`, as a hosting server keeps it."""
    bare = root / name
    subprocess.run(["git", "clone", "-q", "--bare", str(source), str(bare)], check=True, capture_output=True)
    return bare


@pytest.fixture
def git_remote(tmp_path_factory):
    """Factory: `git_remote(files={...})` makes a repository with one commit on `main`."""

    def make(files: dict[str, str | bytes] | None = None, name: str = "remote") -> GitRemote:
        path = tmp_path_factory.mktemp(name) / "repo"
        path.mkdir()
        run_git("init", "-q", "-b", "main", cwd=path)
        remote = GitRemote(path)
        remote.commit("initial commit", files or {"dags/hello.py": dag_source("hello")})
        return remote

    return make
