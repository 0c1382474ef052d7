"""`dagops repos apply` and `dagops repos export`: the registry as a `dagops.yaml` file (see declarative.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from airflow_dagops.cli.common import JsonOption, command, print_json, say
from airflow_dagops.repositories import declarative


def register(repos_app: typer.Typer) -> None:
    """Add `apply` and `export` to the `dagops repos` group."""

    @command(repos_app, "apply")
    def apply_file(
        file: Annotated[Path, typer.Option("-f", "--file", help="The dagops.yaml to apply.")],
        dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan and change nothing.")] = False,
        prune: Annotated[
            bool, typer.Option("--prune", help="Remove registered repositories that are not in the file.")
        ] = False,
        no_verify: Annotated[
            bool, typer.Option("--no-verify", help="Do not reach new remotes with git ls-remote first.")
        ] = False,
        as_json: JsonOption = False,
    ) -> None:
        """Make the registry match a dagops.yaml: prints the plan (+ add, ~ change, - remove), then applies it."""
        config = declarative.load(file)
        plan = declarative.plan(config, prune=prune)
        done = [] if dry_run or plan.empty else declarative.apply(plan, verify=not no_verify)
        if as_json:
            print_json({**plan.to_dict(), "dry_run": dry_run, "applied": done})
            return
        for line in plan.lines():
            say(line, _style(line))
        if dry_run and not plan.empty:
            say("Dry run: nothing was changed.")
        elif done:
            say(f"Applied {len(done)} change(s).", "green")

    @command(repos_app, "export")
    def export_file(
        output: Annotated[
            Path | None, typer.Option("-o", "--output", help="Write to this file instead of standard output.")
        ] = None,
    ) -> None:
        """Write the current registry as dagops.yaml (apply it elsewhere, or keep it in Git)."""
        text = declarative.export()
        if output is None:
            typer.echo(text, nl=False)
        else:
            output.write_text(text, encoding="utf-8")
            say(f"wrote {output}")


def _style(line: str) -> str | None:
    return {"+": "green", "~": "yellow", "-": "red"}.get(line[:1])
