"""`dagops ab start|status|promote|stop`: A/B experiments, two releases of one DAG on a split of its scheduled runs
(docs/experiments.md). Thin: one service call each (airflow_dagops/experiments/service.py), rendered.
"""

from __future__ import annotations

import getpass
from typing import Annotated

import typer

from airflow_dagops.cli.common import JsonOption, command, print_json, say
from airflow_dagops.errors import InvalidInput

app = typer.Typer(help="A/B experiments: two releases of one DAG, runs split.", no_args_is_help=True)
RepoArgument = Annotated[str, typer.Argument(help="The repository's name (see `dagops repos list`).")]
DagIdOption = Annotated[
    str | None, typer.Argument(help="The experiment's DAG (optional: a guard that it is the one running).")
]


def register(parent: typer.Typer) -> None:
    """Add the `ab` group to the top-level app."""
    parent.add_typer(app, name="ab")


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


def split_of(split: str | None, percent: int | None) -> object:
    """The split as the service takes it: `--split alternate`, `--split 70/30` (A/B shares) or `--percent N`."""
    if split is not None and percent is not None:
        raise InvalidInput("give --split or --percent, not both")
    if percent is not None:
        return {"percent": percent}
    if split is None or split == "alternate":
        return "alternate"
    shares = split.split("/")
    if len(shares) == 2 and all(share.strip().isdigit() for share in shares):
        return {"a": int(shares[0]), "b": int(shares[1])}
    raise InvalidInput(f"--split {split!r}: use 'alternate' or A/B shares such as 70/30 (adding up to 100)")


@command(app, "start")
def start(
    repository: RepoArgument,
    dag_id: Annotated[str, typer.Argument(help="The DAG to test, as the releases define it (without `__ab`).")],
    release: Annotated[
        str | None,
        typer.Option(help="Variant B: a release id or commit sha (default: the release waiting in a promotion stage)."),
    ] = None,
    split: Annotated[
        str | None, typer.Option(help="'alternate' (default) or the A/B shares of scheduled runs, e.g. 70/30.")
    ] = None,
    percent: Annotated[int | None, typer.Option(help="B's share of scheduled runs, 1-99 (instead of --split).")] = None,
    min_runs: Annotated[
        int | None, typer.Option(help="Finished runs per variant before a verdict counts (default 10).")
    ] = None,
    max_p: Annotated[
        float | None, typer.Option(help="A difference counts at this p-value or below (default 0.05: 95%).")
    ] = None,
    auto_promote: Annotated[
        bool, typer.Option("--auto-promote", help="Let the scheduled check end it on a verdict: B wins -> prod.")
    ] = False,
    as_json: JsonOption = False,
):
    """Run a candidate release of a DAG beside prod's on a split of its scheduled runs: `<dag_id>__ab` in
    `<namespace>--ab` takes B's share, `<dag_id>` keeps A's."""
    from airflow_dagops.experiments import service  # lazy: CLI start-up (releases, deploy)

    given = {"min_runs": min_runs, "max_p": max_p, "auto_promote": auto_promote or None}
    rule = {key: value for key, value in given.items() if value is not None}  # the rest: the service's defaults
    answer = service.start(
        repository, dag_id, actor=_actor(), release=release, split=split_of(split, percent), rule=rule
    )
    if as_json:
        print_json(answer)
        return
    b = answer["variants"]["B"]
    say(f"Experiment {answer['id']} on {dag_id} started: {answer['split_description']}.", "green")
    say(f"  A  {dag_id:<30} release {answer['variants']['A']['release_id']} (prod)")
    say(f"  B  {b['dag_id']:<30} release {b['release_id']} in namespace {b['namespace']}")
    rule = answer["rule"]
    how = "promotes the winner by itself" if rule["auto_promote"] else "waits for `dagops ab promote`"
    say(f"Verdict after {rule['min_runs']} runs of each at p <= {rule['max_p']}; the check {how}.")


@command(app, "status")
def status(
    repository: Annotated[str | None, typer.Argument(help="Only this repository's experiments.")] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Read the variants' runs from Airflow's REST API now, then show.")
    ] = False,
    as_json: JsonOption = False,
):
    """Running experiments with their verdict and confidence, then recent ended ones."""
    from airflow_dagops.airflow.rest_client import AirflowApiRunSource  # lazy: CLI start-up (HTTP client)
    from airflow_dagops.experiments import service  # lazy: CLI start-up (releases, deploy)

    if check:
        names = [repository] if repository else None
        service.check(AirflowApiRunSource.from_connection, names, actor=_actor())
    rows = service.status(repository)
    if as_json:
        print_json(rows)
        return
    if not rows:
        say("No experiment yet. Start one with: dagops ab start REPOSITORY DAG_ID --release ID")
        return
    for row in rows:
        for line in render(row):
            say(line, "bold" if line.startswith("#") else None)


def render(row: dict) -> list[str]:
    head = f"#{row['id']} {row['repository']} {row['dag_id']}: {row['status']}"
    lines = [head + (f", winner {row['winner']}" if row["winner"] else "")]
    if row["status"] != "running":
        return [*lines, f"  {row['message']}"]
    lines.append(f"  split {row['split_description']}; rule {_rule_text(row['rule'])}")
    for variant, facts in row["variants"].items():
        runs = f"{facts.get('success', 0)}/{facts.get('runs', 0)} succeeded" if "runs" in facts else "no runs yet"
        median = facts.get("median_duration_seconds")
        timing = f", median {median:.1f} s" if median is not None else ""
        lines.append(f"  {variant}  {facts['dag_id']:<30} release {facts['release_id']}: {runs}{timing}")
    lines.append(f"  {row['message']}")
    return lines


def _rule_text(rule: dict) -> str:
    auto = "auto-promote" if rule.get("auto_promote") else "promote by hand"
    return f"min_runs {rule['min_runs']}, max_p {rule['max_p']}, {auto}"


@command(app, "promote")
def promote(
    repository: RepoArgument,
    dag_id: DagIdOption = None,
    winner: Annotated[
        str | None, typer.Option(help="A (prod keeps its release) or B (the candidate goes live); default: verdict.")
    ] = None,
    as_json: JsonOption = False,
):
    """End the running experiment with its winner: B goes live in prod, or prod keeps A. B's copy is taken down."""
    from airflow_dagops.experiments import service  # lazy: CLI start-up (releases, deploy)

    answer = service.promote(repository, actor=_actor(), winner=winner.upper() if winner else None, dag_id=dag_id)
    if as_json:
        print_json(answer)
        return
    say(f"{repository}: experiment {answer['id']} on {answer['dag_id']} {answer['message']}", "green")


@command(app, "stop")
def stop(repository: RepoArgument, dag_id: DagIdOption = None, as_json: JsonOption = False):
    """End the running experiment without a winner: B's copy is taken down, prod keeps A."""
    from airflow_dagops.experiments import service  # lazy: CLI start-up (releases, deploy)

    answer = service.stop(repository, actor=_actor(), dag_id=dag_id)
    if as_json:
        print_json(answer)
        return
    say(f"{repository}: experiment {answer['id']} on {answer['dag_id']} {answer['message']}")
