"""`dagops discover`: scan the configured Git host organizations for repositories that match their rules, and
register the proposed ones with `--apply` (airflow_dagops/discovery). Thin: one service call, rendered. The sources
come from the `discovery:` block of dagops.yaml (`dagops repos apply -f dagops.yaml`).
"""

from __future__ import annotations

from typing import Annotated

import typer

from airflow_dagops.cli.common import JsonOption, command, print_json, print_rows, say
from airflow_dagops.errors import InvalidInput

NO_SOURCE = (
    "No discovery source is configured: add a `discovery:` block to dagops.yaml and apply it "
    "(dagops repos apply -f dagops.yaml); see docs/many-repositories.md"
)


def register(parent: typer.Typer) -> None:
    """Add `discover` to the top-level app."""

    @command(parent, "discover")
    def discover(
        source: Annotated[str | None, typer.Option(help="Only this discovery source (default: every one).")] = None,
        apply: Annotated[
            bool, typer.Option("--apply", help="Register the proposed matches (all, or those named by --only).")
        ] = False,
        only: Annotated[
            list[str] | None, typer.Option("--only", help="With --apply: register only this match (repeatable).")
        ] = None,
        no_verify: Annotated[
            bool, typer.Option("--no-verify", help="Register without reaching each remote with git ls-remote first.")
        ] = False,
        list_only: Annotated[bool, typer.Option("--list", help="Show sources and matches; scan nothing.")] = False,
        ignore: Annotated[str | None, typer.Option(help="Stop proposing this match (name or full name).")] = None,
        unignore: Annotated[str | None, typer.Option(help="Propose this ignored match again.")] = None,
        as_json: JsonOption = False,
    ):
        """Find repositories in GitHub organizations, GitLab groups and Gitea organizations that match a rule
        (topic, name pattern, a file that must exist); propose them, or register them with --apply."""
        if list_only and not (ignore or unignore):
            _list(source, as_json)
            return
        from airflow_dagops.discovery import service as discovery  # lazy: CLI start-up (HTTP client, registry)

        if ignore or unignore:
            row = discovery.ignore(ignore or unignore or "", ignored=bool(ignore))
            _answer(as_json, row, [f"{row['full_name']}: {row['status']}"])
            return
        if not discovery.configured():
            _answer(as_json, {"configured": False, "sources": [], "repositories": []}, [NO_SOURCE])
            return
        verify = not no_verify
        if only and not apply:
            raise InvalidInput("--only goes with --apply")
        if only:
            scanned = discovery.scan(source, verify=verify)
            scanned["sources"].append({"source": source, "registered": discovery.register(only, verify=verify)})
            scanned["repositories"] = discovery.list_discovered(source)
        else:
            scanned = discovery.scan(source, apply=apply, verify=verify)
        failed = [each for each in scanned["sources"] if each.get("error")]
        if as_json:
            print_json(scanned)
        else:
            for each in scanned["sources"]:
                for line in _source_lines(each):
                    say(line, "red" if each.get("error") else None)
            _print_matches(scanned["repositories"])
            proposed = [r for r in scanned["repositories"] if r["status"] == "proposed" and not r["reason"]]
            if proposed and not apply:
                say(f"Register them with: dagops discover --apply{f' --source {source}' if source else ''}")
        if failed:
            raise typer.Exit(1)


def _answer(as_json: bool, data, lines: list[str] | None) -> None:
    if as_json:
        print_json(data)
        return
    for line in lines or []:
        say(line)


def _source_lines(result: dict) -> list[str]:
    name = result.get("source") or "selected"
    if result.get("error"):
        return [f"{name}: FAILED: {result['error']}"]
    lines = []
    if "listed" in result:
        lines.append(
            f"{name}: {result['listed']} repositories, {result['matched']} match "
            f"({len(result['new'])} new, {len(result['back'])} back, {len(result['removed'])} removed)"
        )
        lines += [f"  removed (flagged, nothing deleted): {full_name}" for full_name in result["removed"]]
    for outcome in result.get("registered", []):
        if outcome["ok"]:
            lines.append(f"  registered {outcome['name']} ({outcome['url']})")
        else:
            lines.append(f"  not registered {outcome['name']}: {outcome['reason']}")
    return lines


def _list(source: str | None, as_json: bool) -> None:
    """`--list`: what the sources found so far, from the state DB only (no Git host is asked)."""
    from airflow_dagops.discovery import listing  # lazy: CLI start-up (state DB only)

    answer = {"sources": listing.list_sources(), "repositories": listing.list_discovered(source)}
    _answer(as_json, answer, None)
    if not as_json:
        _print_sources(answer["sources"])
        _print_matches(answer["repositories"])


def _print_sources(sources: list[dict]) -> None:
    if not sources:
        say(NO_SOURCE)
        return
    rows = [
        [s["name"], s["provider"], s["url"], s["conn_id"], "register" if s["register"] else "propose", s["last_error"]]
        for s in sources
    ]
    print_rows(["SOURCE", "HOST", "ORGANIZATION", "CONNECTION", "MATCHES", "LAST ERROR"], rows)


def _print_matches(repositories: list[dict]) -> None:
    if not repositories:
        say("No repository matches yet.")
        return
    rows = [
        [r["full_name"], r["status"], r["name"], r["repository"], r["reason"] or ", ".join(r["topics"]) or None]
        for r in repositories
    ]
    print_rows(["REPOSITORY", "STATUS", "NAME", "REGISTERED AS", "NOTE"], rows)
