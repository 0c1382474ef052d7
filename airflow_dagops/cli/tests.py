"""`dagops test REPO` and `dagops tests REPO`: run a repository's own tests against a release, and show
which test failed and why (the results dagops_sync / dagops_test stored with the release)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from airflow_dagops.cli.common import JsonOption, command, err, print_json, say
from airflow_dagops.errors import InvalidInput
from airflow_dagops.store import reads
from airflow_dagops.wording import plural

RepoArgument = Annotated[str, typer.Argument(help="The repository's name (see `dagops repos list`).")]
ReleaseOption = Annotated[
    str | None, typer.Option("--release", help="Release id or commit sha (default: the live release).")
]


def _release_of(repository: str, release: str | None) -> str:
    if release:
        return release
    live = reads.get_repository(repository).live_release_id
    if live is None:
        raise InvalidInput(f"{repository} has nothing live; give --release")
    return str(live)


def register(app: typer.Typer) -> None:
    @command(app)
    def test(repository: RepoArgument, release: ReleaseOption = None, as_json: JsonOption = False):
        """Run the repository's tests/ against a release now (one sandboxed pytest per module) and store
        the results with it. Publishes nothing, unless that release was waiting for its tests."""
        from airflow_dagops.releases import tests as tests_service  # lazy: CLI start-up (the sandbox, the gate)

        plan = tests_service.test_plan(repository, _release_of(repository, release))
        if not plan:
            say(f"{repository}: the release has no test modules (tests/test_*.py)")
            return
        results = []
        for item in plan:
            say(f"running {item['module']} ...")
            results.append(tests_service.run_test_module(item["release_id"], item["module"]))
        said = tests_service.finish_release_tests(plan[0]["release_id"], results, actor="cli")
        if as_json:
            print_json(
                {"message": said, "modules": [{k: v for k, v in r.items() if k != "junit_xml"} for r in results]}
            )
        else:
            say(said)
        if any(r["outcome"] != "passed" for r in results) or "tests failed" in said:  # or performance regressed
            raise typer.Exit(1)

    @command(app)
    def tests(
        repository: RepoArgument,
        release: ReleaseOption = None,
        junit_dir: Annotated[
            Path | None, typer.Option("--junit-dir", help="Write each module's JUnit XML into this folder.")
        ] = None,
        as_json: JsonOption = False,
    ):
        """The stored test results of a release: counts, and each failing test with its message."""
        found = reads.get_release(reads.find_release(repository, _release_of(repository, release)).id)
        results = found.get("tests")
        if as_json:
            print_json(results)
            return
        if not results:
            say(f"{repository}: no test results stored for release {found['id']} (see `dagops test`)", "red", err)
            raise typer.Exit(1)
        say(
            f"{repository} release {found['id']} ({found['commit'][:12]}): tests {results['outcome']} "
            f"({results.get('passed', 0)} passed, {results.get('failed', 0)} failed, "
            f"{plural(results.get('errors', 0), 'error')})"
        )
        for failure in results.get("failures", []):
            say(f"  ✗ {failure['test']} ({failure['kind']}): {failure['message']}")
        if junit_dir is not None:
            from airflow_dagops.releases import tests as tests_service  # lazy: CLI start-up (the sandbox, the gate)

            junit_dir.mkdir(parents=True, exist_ok=True)
            for module, xml in tests_service.junit_xml(found["id"]).items():
                target = junit_dir / (module.replace("/", "__").removesuffix(".py") + ".xml")
                target.write_text(xml)
            say(f"JUnit XML written to {junit_dir}")
