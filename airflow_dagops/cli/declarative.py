"""`dagops repos apply` and `dagops repos export`: the registry as a `dagops.yaml` file (see declarative.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from airflow_dagops.cli.common import JsonOption, command, print_json, say
from airflow_dagops.wording import plural


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
        from airflow_dagops.repositories import declarative  # lazy: `repos list` needs no YAML schema or git

        config = declarative.load(file)
        plan = declarative.plan(config, prune=prune)
        done = [] if dry_run or plan.empty else declarative.apply(plan, verify=not no_verify)
        discovery = _apply_discovery(config, dry_run=dry_run)
        if as_json:
            print_json({**plan.to_dict(), "dry_run": dry_run, "applied": done, "discovery": discovery})
            return
        for line in plan.lines():
            say(line, _style(line))
        for line in discovery:
            say(line)
        if dry_run and not plan.empty:
            say("Dry run: nothing was changed.")
        elif done:
            say(f"Applied {plural(len(done), 'change')}.", "green")

    @command(repos_app, "export")
    def export_file(
        output: Annotated[
            Path | None, typer.Option("-o", "--output", help="Write to this file instead of standard output.")
        ] = None,
        as_json: Annotated[
            bool,
            typer.Option(
                "--json", help="Print the registry as JSON (with -o: the YAML goes to the file, a summary to stdout)."
            ),
        ] = False,
    ) -> None:
        """Write the current registry as dagops.yaml (apply it elsewhere, or keep it in Git)."""
        from airflow_dagops.repositories import export as exporting  # lazy: `repos list` needs no YAML

        document = exporting.export_document()
        if as_json and output is None:
            print_json(document)  # JSON is YAML too: `repos apply -f` reads it as it is
            return
        text = exporting.export(document)
        if output is None:
            typer.echo(text, nl=False)
            return
        output.write_text(text, encoding="utf-8")
        if as_json:
            print_json({"output": str(output), "repositories": len(document["repositories"])})
        else:
            say(f"wrote {output}")


def _apply_discovery(config, *, dry_run: bool) -> list[str]:
    """The file's `discovery:` block becomes the discovery sources (docs/many-repositories.md); none: left alone."""
    if config.discovery is None:
        return []
    from airflow_dagops.discovery import service as discovery  # lazy: only files with a `discovery:` block

    if dry_run:
        for spec in config.discovery:  # checked all the same: a dry run says what applying would refuse
            discovery.clean_source(spec)
        return [f"Discovery: {len(config.discovery)} source(s) would be set (dry run)."]
    return [f"Discovery: {line}" for line in discovery.configure(config.discovery, source=config.source)] or [
        "Discovery: sources unchanged."
    ]


def _style(line: str) -> str | None:
    return {"+": "green", "~": "yellow", "-": "red"}.get(line[:1])
