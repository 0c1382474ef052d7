"""Generated git repositories of realistic DAG files, used as local `file://` remotes.

Realistic means what a team's DAG repository holds: 30-60 line files importing from `airflow.sdk`, a
`@dag` with default_args and a docstring, 3-5 `@task` functions, spread over a few team folders.
Sizes and blob counts then match what the engine and GitDagBundle really move.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Bench Author",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "Bench Author",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}
TEAMS = ("finance", "marketing", "platform", "search", "growth")

_HEADER = '''"""{title}.

Owned by the {team} team. Loads the day's {source} extract, cleans it and publishes a summary table.
Revision {revision}.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, task

DEFAULT_ARGS = {{
    "owner": "{team}",
    "retries": {retries},
    "retry_delay": timedelta(minutes={delay}),
}}


@dag(
    dag_id="{dag_id}",
    schedule="{schedule}",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    default_args=DEFAULT_ARGS,
    tags=["{team}", "bench"],
)
def {func}():
    """{title}: extract, transform and load {source}."""
'''

_TASK = '''
    @task
    def step_{n}(rows: int = {n}) -> int:
        """Step {n}: process {source} batch {n} and return the row count."""
        return rows * {factor}
'''


def dag_source(dag_id: str, index: int, revision: int = 0) -> str:
    """The text of one DAG file; `index` varies its shape (3-5 tasks), `revision` its content."""
    team = TEAMS[index % len(TEAMS)]
    source = f"{team}_events_{index % 7}"
    text = _HEADER.format(
        title=f"Daily {source} pipeline",
        team=team,
        source=source,
        revision=revision,
        retries=index % 3 + 1,
        delay=index % 10 + 5,
        dag_id=dag_id,
        schedule=("@daily", "@hourly", "0 6 * * *")[index % 3],
        func=dag_id.replace("-", "_"),
    )
    tasks = 3 + index % 3
    text += "".join(_TASK.format(n=n, source=source, factor=n + 1) for n in range(tasks))
    chain = " >> ".join(f"step_{n}()" for n in range(tasks))
    return f"{text}\n    {chain}\n\n\n{dag_id.replace('-', '_')}()\n"


def dag_path(index: int) -> str:
    """Where DAG number `index` lives in the repository: dags/<team>/<file>."""
    return f"dags/{TEAMS[index % len(TEAMS)]}/dag_{index:04d}.py"


def run_git(*args: str, cwd: Path) -> str:
    env = {**os.environ, **GIT_IDENTITY}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


@dataclass
class SourceRepo:
    """A plain (non-bare) repository on branch `main`, read by the engine and the baselines via file://."""

    path: Path

    @property
    def url(self) -> str:
        return f"file://{self.path}"

    def commit(self, files: dict[str, str], message: str) -> str:
        """Write `files` (relative path -> text), commit them, and return the new commit sha."""
        for relative, text in files.items():
            target = self.path / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        run_git("add", "-A", cwd=self.path)
        run_git("commit", "-q", "-m", message, cwd=self.path)
        return self.head()

    def head(self) -> str:
        return run_git("rev-parse", "HEAD", cwd=self.path)


def make_dag_repo(path: Path, n_files: int, *, prefix: str = "bench") -> SourceRepo:
    """A new repository holding `n_files` generated DAGs plus a README, in one initial commit."""
    path.mkdir(parents=True)
    run_git("init", "-q", "-b", "main", cwd=path)
    repo = SourceRepo(path)
    files = {dag_path(i): dag_source(f"{prefix}_{i:04d}", i) for i in range(n_files)}
    files["README.md"] = f"# {prefix}\n\n{n_files} generated DAGs for `make bench`.\n"
    repo.commit(files, "initial DAGs")
    return repo


def copy_repo(template: SourceRepo, path: Path) -> SourceRepo:
    """A separate repository with the template's history: far quicker than re-running git for 100 repos."""
    shutil.copytree(template.path, path, symlinks=True)
    return SourceRepo(path)
