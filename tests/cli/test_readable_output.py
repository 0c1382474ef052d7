"""Every `dagops` command reads well at 80 columns without a terminal, and `--json` is JSON (issue 19).

A long repository name, branch and URL must come out whole: nothing is cut to '…'. Output is captured (no
terminal), where rich assumes 80 columns; COLUMNS=80 says so explicitly.
"""

from __future__ import annotations

import io
import json

import pytest

from airflow_dagops.cli import common
from airflow_dagops.repositories.registry import add_repository
from airflow_dagops.sync.sync import sync_repository
from airflow_dagops.wording import plural
from tests.helpers.repos import dag_source

NAME = "a-long-repository-name-for-the-data-engineering-team-etl"
BRANCH = "feature/a-branch-name-long-enough-to-fold-any-table-at-80"
# Every read command, with what it needs to show something.
READS = [
    ["repos", "list"],
    ["repos", "show", NAME],
    ["status"],
    ["versions", NAME],
    ["events", "--text"],
    ["promotion", NAME],
    ["tests", NAME],
    ["webhooks", "show", NAME],
    ["credentials", "test", NAME],
    ["marketplace", "list"],
    ["marketplace", "search", "etl"],
    ["marketplace", "catalogs", "list"],
]
# Every command that prints data, with --json (events: JSON lines, its default).
JSON_READS = [[*args, "--json"] for args in READS if args[0] != "events"] + [["events"], ["events", "--json"]]


@pytest.fixture
def long_names(dagops_env, git_remote, monkeypatch):
    """A published repository whose name, branch and URL are each longer than a table column at 80 columns."""
    monkeypatch.setenv("COLUMNS", "80")
    remote = git_remote(name="a-remote-folder-whose-path-makes-the-url-long")
    remote.git("checkout", "-q", "-b", BRANCH)
    remote.commit("on the branch", {"dags/second.py": dag_source("second")})
    add_repository(NAME, remote.url, ref=BRANCH)
    assert sync_repository(NAME, trigger="cli").ok
    return remote


@pytest.mark.parametrize("args", READS, ids=" ".join)
def test_every_read_is_whole_at_80_columns(cli, long_names, args):
    result = cli(*args)
    assert result.exit_code in (0, 1), result.output  # `status` exits 1 while a repository is degraded
    assert "…" not in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("args", [["repos", "list"], ["repos", "show", NAME]], ids=" ".join)
def test_name_branch_and_url_come_out_whole(cli, long_names, args):
    shown = cli(*args).stdout
    assert NAME in shown and BRANCH in shown and long_names.url in shown


def test_repos_list_is_a_table_where_it_fits(cli, long_names, monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")  # read at every print, as a fresh `dagops` process would
    header = cli("repos", "list").stdout.splitlines()[0].split()
    assert header[:4] == ["name", "namespace", "url", "ref"]


def test_repos_show_is_key_value_text_not_a_python_dict(cli, long_names):
    shown = cli("repos", "show", NAME).stdout
    lines = [" ".join(line.split()) for line in shown.splitlines()]
    assert f"ref: {BRANCH}" in lines and "enabled: True" in lines
    assert "{'" not in shown and "': " not in shown  # no repr of a dict anywhere


@pytest.mark.parametrize("args", JSON_READS, ids=" ".join)
def test_json_parses(cli, long_names, args):
    result = cli(*args)
    assert result.exit_code in (0, 1), result.output
    if args[0] == "events":
        events = [json.loads(line) for line in result.stdout.splitlines()]
        assert events and all(event["repository"] == NAME for event in events)
    else:
        json.loads(result.stdout)


def test_events_print_json_lines_by_default_and_text_when_asked(cli, long_names):
    events = [json.loads(line) for line in cli("events").stdout.splitlines()]
    assert events and {"sync", "publish"} <= {event["kind"] for event in events}
    text = cli("events", "--text").stdout
    assert f"{NAME}:" in text and not text.lstrip().startswith("{")
    assert cli("events", "--json", "--text").exit_code == 2


def test_webhooks_show_for_a_file_url_says_what_it_can(cli, long_names):
    result = cli("webhooks", "show", NAME)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Git host unknown" in out and "is a local repository (file://): it names no Git host" in out
    for provider in ("github", "gitlab", "gitea", "bitbucket"):
        assert f"/pluginsv2/dagops/api/v1/webhooks/{provider}" in out
    assert "application/json" in out and "'dagops_webhook' (the global webhook secret)" in out
    assert f"dagops webhooks show {NAME} --provider github|gitlab|gitea|bitbucket" in out
    as_json = json.loads(cli("webhooks", "show", NAME, "--json").stdout)
    assert (
        as_json["provider"] is None
        and as_json["url"] is None
        and set(as_json["urls"])
        == {
            "github",
            "gitlab",
            "gitea",
            "bitbucket",
        }
    )
    named = cli("webhooks", "show", NAME, "--provider", "gitlab")
    assert named.exit_code == 0 and "Merge request events" in named.stdout and "unknown" not in named.stdout
    assert cli("webhooks", "show", NAME, "--provider", "svn").exit_code == 2


def test_counts_are_in_words(cli, tmp_path):
    checkout = tmp_path / "checkout"
    (checkout / "dags").mkdir(parents=True)
    (checkout / "dags" / "broken.py").write_text("from airflow.sdk import dag\n\ndef broken(:\n")
    result = cli("validate", str(checkout))
    assert result.exit_code == 1
    assert "1 error," in result.stdout and "1 errors" not in result.stdout and "in 1 file," in result.stdout


@pytest.mark.parametrize(
    ("count", "noun", "words"),
    [(0, "error", "0 errors"), (1, "error", "1 error"), (2, "repository", "2 repositories"), (3, "DAG", "3 DAGs")],
)
def test_plural(count, noun, words):
    assert plural(count, noun) == words


# -- plain output without rich (cli/common.py `Output`): what rich would have written where no terminal reads ------
LINES = ["plain", "a\tb\tc", "trailing   ", "bell\x07 and return\r", "[bold]not markup[/bold]", "wide 日本語", ""]


def test_plain_lines_are_what_rich_writes_without_a_terminal(capsys):
    from rich.console import Console

    for text in LINES:
        common.say(text, "red")
        plain = capsys.readouterr().out
        rich_console = Console(file=io.StringIO(), highlight=False, width=80)
        rich_console.print(text, style="red", markup=False, soft_wrap=True)
        assert plain == rich_console.file.getvalue(), text


def test_table_width_is_the_width_rich_lays_the_table_out_in():
    from rich.measure import Measurement

    console = common.out.console
    cases = [
        (["name", "url"], [["a", None], ["a longer cell", "x" * 40]]),
        (["h"], [["日本語 wide"]]),
        (["one", "two", "three"], [["", "z", "1"], ["é", "combining é", "2"]]),
    ]
    for headers, rows in cases:
        laid_out = Measurement.get(console, console.options.update_width(10**6), common.table(headers, rows))
        assert common.table_width(headers, rows) == laid_out.maximum, headers


def test_help_text_is_escaped_as_rich_escapes_it():
    from rich.markup import escape

    for text in ["[dagops] sync_schedule", "a \\[b] c", "ends with \\", "ends with \\\\", "[/x] [#f] [@a] [A]"]:
        assert common.escape_markup(text) == escape(text), text


def test_a_table_that_fits_is_printed_as_rich_prints_it(capsys):
    from rich.console import Console

    headers, rows = ["package", "version", "installs"], [["postgres_backup_to_s3", "1.2.0", 3], ["x", None, ""]]
    common.print_rows(headers, rows)
    rich_console = Console(file=io.StringIO(), highlight=False, width=80)
    rich_console.print(common.table(headers, rows))
    assert capsys.readouterr().out == rich_console.file.getvalue()
