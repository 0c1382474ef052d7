"""`dagops propose`: local files to a repository as a validated branch and pull request (proposals.py).

Each FILE goes to `<path-prefix><file name>` in the repository; the prefix defaults to the repository's subdir
(or its root). A refused proposal prints the findings and exits with 2, like any refused input.
"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated

import typer

from airflow_dagops.cli.common import JsonOption, command, err, print_json, say
from airflow_dagops.errors import InvalidInput
from airflow_dagops.proposals import service as proposals
from airflow_dagops.repositories.info import get_repository


def register(app: typer.Typer) -> None:
    """Add `dagops propose` to the top-level app."""

    @command(app, "propose")
    def propose(
        repository: Annotated[str, typer.Argument(help="The repository's name (see `dagops repos list`).")],
        files: Annotated[list[Path], typer.Argument(help="Local files to propose.")],
        title: Annotated[str, typer.Option("--title", help="Title of the commit and the pull request.")],
        description: Annotated[str | None, typer.Option(help="Body of the commit and the pull request.")] = None,
        path_prefix: Annotated[
            str | None,
            typer.Option(help="Folder in the repository the files go to, e.g. 'dags/'. Default: its subdir or root."),
        ] = None,
        as_json: JsonOption = False,
    ):
        """Validate files against the live release, push them as branch dagops/proposal-<id>, open a pull request."""
        prefix = path_prefix if path_prefix is not None else _default_prefix(repository)
        proposed: list[dict | proposals.ProposedFile] = [
            proposals.ProposedFile(_join(prefix, path.name), _read(path)) for path in files
        ]
        try:
            result = proposals.propose(
                repository, proposed, title=title, description=description, actor=f"cli:{getpass.getuser()}"
            )
        except proposals.ProposalRefused as refused:
            for finding in refused.details.get("findings", []):
                if finding.get("severity") == "error":
                    where = ":".join(str(p) for p in (finding.get("file"), finding.get("line")) if p)
                    say(f"  {where} [{finding.get('rule')}] {finding.get('message')}", "red", err)
            raise
        if as_json:
            print_json(result)
            return
        say(
            f"{repository}: proposal {result['proposal_id']} pushed as {result['branch']} ({result['commit'][:12]})",
            "green",
        )
        say(f"pull request: {result['pr_url']}" if result["pr_url"] else f"no pull request: {result['pr_error']}")


def _default_prefix(repository: str) -> str:
    subdir = get_repository(repository).subdir
    return f"{subdir.rstrip('/')}/" if subdir else ""


def _join(prefix: str, name: str) -> str:
    return f"{prefix.rstrip('/')}/{name}" if prefix.strip("/") else name


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise InvalidInput(f"cannot read {path}: {error.strerror or error}") from error
