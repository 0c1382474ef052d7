"""Every command and request in README.md and docs/*.md, executed against `make run`'s setup.

What runs: each fenced block in `bash`, `sh`, `shell` or `console` (only its `$ ` lines), and each unlabelled block
that starts with a command (`dagops`, `airflow`, `curl`, `$ `), in document order, one `bash -euo pipefail` per
block, from a clone of the demo repository (a DAG repository's checkout, where `dagops validate dags/` makes
sense). Variables a block assigns (`TOKEN=...`, `API=...`) carry over to the later blocks of the same document.

Against what: the worker's shared real Airflow (tests/helpers/airflow.py: api-server, scheduler, dag-processor)
prepared with scripts/run.sh's steps: the demo repository (examples/demo-repo as a local git repository) registered
as `demo` in namespace `demo` and synced, and examples/catalog registered as the marketplace catalog `community`.
What they add (repositories, the catalog, Airflow connections) is removed afterwards: the instance is shared.
README's examples run in `make test`; those of docs/ take minutes together and are marked `slow` (`make test-slow`).

Substitutions, the same for every block:
- `localhost:8080` is the instance's address, and `.airflow/` its AIRFLOW_HOME (`make run`'s is `./.airflow`);
- `TOKEN` (a JWT of admin/admin, fetched as README shows), `API` and `AIRFLOW` are set before each document, for the
  documents that take them from a block marked skip (one with a placeholder password);
- `curl` fails on an HTTP status >= 400 (`--fail-with-body`), so a request answers 2xx or 3xx or the block fails;
- `EDITOR=true`: an editor that leaves the file as it is.

A block that cannot run here (it needs GitHub, a container engine, a cluster, or is a synopsis with `[optional]`
parts and placeholders) is marked in the document's source, on the line before its fence:
`<!-- docs-test: skip (needs a GitHub token) -->`. Every skip and its reason is printed by
`test_skipped_blocks_say_why`; an unmarked block that fails fails its document's test.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import sqlite3
import subprocess
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.helpers.airflow import BIN, AirflowInstance
from tests.helpers.programs import requires_program
from tests.helpers.repos import GIT_IDENTITY
from tests.helpers.servers import wait_for

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_LANGS = {"bash", "sh", "shell", "console"}
COMMAND_START = re.compile(r"^\s*(\$ |(dagops|airflow|curl)(\s|$))")
FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.M | re.S)
MARKER = re.compile(r"<!--\s*docs-test:\s*(?P<what>.*?)\s*-->\s*$")
SKIP = re.compile(r"^skip\s*\((?P<reason>.+)\)$")
ASSIGNED = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=", re.M)
BLOCK_TIMEOUT = 300  # a block of a few CLI calls and syncs; a hang must end with the block's name, not the suite's


@dataclass(frozen=True)
class Block:
    doc: str  # README.md, docs/api.md
    line: int  # of the opening fence
    lang: str
    body: str
    marker: str | None  # what the `<!-- docs-test: ... -->` line before it says

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"

    @property
    def skip_reason(self) -> str | None:
        match = SKIP.match(self.marker or "")
        return match["reason"] if match else None

    def script(self) -> str:
        """The shell text to run: a console block's `$ ` commands (and their continuation lines), or all of it."""
        if self.lang != "console" and not self.body.lstrip().startswith("$ "):
            return self.body
        lines, continued = [], False
        for line in self.body.splitlines():
            if line.startswith("$ ") or continued:
                lines.append(line[2:] if line.startswith("$ ") and not continued else line)
                continued = line.rstrip().endswith("\\")
        return "\n".join(lines) + "\n"


def blocks_of(path: Path) -> list[Block]:
    """The command blocks of one document (see the module's docstring)."""
    text = path.read_text()
    found = []
    for match in FENCE.finditer(text):
        lang, body = match["lang"], textwrap.dedent(match["body"])
        first = next((line for line in body.splitlines() if line.strip()), "")
        if lang not in SHELL_LANGS and not (lang == "" and COMMAND_START.match(first)):
            continue
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = MARKER.search(before)
        found.append(
            Block(
                doc=str(path.relative_to(ROOT)),
                line=text.count("\n", 0, match.start()) + 1,
                lang=lang,
                body=body,
                marker=marker["what"] if marker else None,
            )
        )
    return found


ALL_BLOCKS = {path.name: blocks_of(path) for path in DOCS}


# -- the documents, without running anything ---------------------------------------------------------------------
def test_every_marker_is_known_and_sits_on_a_command_block():
    known = {(block.doc, block.line) for blocks in ALL_BLOCKS.values() for block in blocks if block.marker}
    problems = []
    for path in DOCS:
        lines = path.read_text().splitlines()
        for number, line in enumerate(lines, start=1):
            marker = MARKER.search(line)
            if marker is None:
                continue
            where = f"{path.relative_to(ROOT)}:{number}"
            if not SKIP.match(marker["what"]):
                problems.append(f"{where}: unknown marker {marker['what']!r} (known: skip (reason))")
            elif (str(path.relative_to(ROOT)), number + 1) not in known:
                problems.append(f"{where}: the marker is not on the line right before a command block's fence")
    assert problems == []


def test_skipped_blocks_say_why():
    """The list of what does not run here, and why (printed with `-s` or `-rA`)."""
    skipped = [(block.where, block.skip_reason) for blocks in ALL_BLOCKS.values() for block in blocks if block.marker]
    for where, reason in skipped:
        print(f"skipped {where}: {reason}")
    assert skipped and all(reason and len(reason) > 8 for _, reason in skipped), skipped
    executed = [block for blocks in ALL_BLOCKS.values() for block in blocks if not block.marker]
    assert len(executed) >= 5, "most examples must run, not be skipped"


# -- `make run`'s setup on the shared real Airflow ------------------------------------------------------------------
@dataclass
class MakeRun:
    airflow: AirflowInstance
    checkout: Path  # a clone of the demo repository: the working folder of every block
    env: dict[str, str] = field(default_factory=dict)

    def substitute(self, script: str) -> str:
        home = str(self.airflow.home)
        script = script.replace("localhost:8080", f"127.0.0.1:{self.airflow.port}")
        return re.sub(r"(?<![\w/~])\.airflow/", home + "/", script)


CATALOG_SETUP = """
import sys
from pathlib import Path

from airflow_dagops.marketplace import catalogs as market

source, dest = sys.argv[1:]
if not (Path(dest) / ".git").is_dir():
    market.catalog_repo_from_folder(source, dest)
if "community" not in {c["name"] for c in market.list_catalogs()}:
    market.add_catalog("community", f"file://{dest}")
print(market.refresh_catalogs(["community"])[0]["message"])
"""


def _connections(airflow: AirflowInstance) -> set[str]:
    """Connection ids in the instance's metadata DB (SQLite: read directly, an `airflow` CLI call takes seconds)."""
    with contextlib.closing(sqlite3.connect(airflow.home / "airflow.db")) as db:
        return {row[0] for row in db.execute("SELECT conn_id FROM connection")}


def _repositories(airflow: AirflowInstance) -> set[str]:
    listed = json.loads(airflow.run(str(BIN / "dagops"), "repos", "list", "--json").stdout)
    items = listed["items"] if isinstance(listed, dict) else listed
    return {item["name"] for item in items}


@pytest.fixture(scope="module")
def make_run(real_airflow: AirflowInstance, tmp_path_factory):
    """scripts/run.sh's steps after `airflow db migrate` and `dagops init` (done by the shared instance): its env.sh,
    the demo repository registered as `demo` and synced, the catalog `community`; then, as someone who just ran
    `make run` would wait for, the demo DAGs and dagops_sync listed by Airflow."""
    airflow = real_airflow
    home = airflow.home
    before, connections_before = _repositories(airflow), _connections(airflow)
    exports = "".join(f"export {key}={json.dumps(value)}\n" for key, value in sorted(airflow.env.items()))
    (home / "env.sh").write_text("# Source this file to use `airflow` and `dagops` against this instance.\n" + exports)

    demo = home / "demo-remote"
    if not (demo / ".git").is_dir():
        shutil.copytree(ROOT / "examples" / "demo-repo", demo)
        git_env = {**airflow.env, **GIT_IDENTITY}
        for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "Demo DAGs"]):
            subprocess.run(["git", "-C", str(demo), *args], env=git_env, check=True, capture_output=True)
    if "demo" not in before:
        airflow.run(str(BIN / "dagops"), "repos", "add", "demo", f"file://{demo}", "--namespace", "demo")
    airflow.run(str(BIN / "dagops"), "sync", "demo")
    airflow.run(
        str(BIN / "python"), "-c", CATALOG_SETUP, str(ROOT / "examples" / "catalog"), str(home / "catalog-remote")
    )
    wanted = {"dagops_sync", "demo_etl", "demo_fanout", "demo_report"}
    wait_for(lambda: wanted <= airflow.dag_ids(), timeout=120, what="the demo DAGs and dagops_sync in Airflow")

    checkout = tmp_path_factory.mktemp("docs") / "demo-checkout"
    subprocess.run(["git", "clone", "-q", str(demo), str(checkout)], check=True, capture_output=True)
    token = requests.post(
        f"{airflow.url}/auth/token", json={"username": "admin", "password": "admin"}, timeout=10
    ).json()["access_token"]
    env = {
        **airflow.env,
        "PATH": f"{BIN}:{airflow.env['PATH']}",
        "AIRFLOW": airflow.url,
        "TOKEN": token,
        "API": f"{airflow.url}/pluginsv2/dagops/api/v1",
        "EDITOR": "true",
    }
    try:
        yield MakeRun(airflow, checkout, env)
    finally:
        # The instance is shared: leave it with the repositories, catalogs and connections it had.
        for name in sorted(_repositories(airflow) - before):
            airflow.run(str(BIN / "dagops"), "repos", "remove", name)
        for conn_id in sorted(_connections(airflow) - connections_before):
            airflow.run(str(BIN / "airflow"), "connections", "delete", conn_id)
        airflow.run(
            str(BIN / "python"),
            "-c",
            "from airflow_dagops.marketplace import catalogs as m\n"
            "[m.remove_catalog(c['name']) for c in m.list_catalogs() if c['name'] == 'community']",
        )


# -- running the blocks --------------------------------------------------------------------------------------------
PRELUDE = r"""
set -eEuo pipefail
curl() { command curl --fail-with-body --silent --show-error "$@"; }
trap 'echo "docs-test: exit $? at line $LINENO of the block: $BASH_COMMAND" >&2' ERR
[ -s "$DOCS_TEST_STATE" ] && source "$DOCS_TEST_STATE"
source "$DOCS_TEST_BLOCK"
"""


def run_block(block: Block, make_run: MakeRun, state: Path, work: Path) -> str | None:
    """Run one block; None when it succeeded, else what failed (its output and the failing line)."""
    script = make_run.substitute(block.script())
    names = sorted(set(ASSIGNED.findall(script)))
    if names:  # keep what the block assigned for the next blocks of the document
        script += f'\ndeclare -p {" ".join(names)} >> "$DOCS_TEST_STATE" 2>/dev/null || true\n'
    source = work / f"block-{block.line}.sh"
    source.write_text(script)
    env = {**make_run.env, "DOCS_TEST_STATE": str(state), "DOCS_TEST_BLOCK": str(source)}
    try:
        done = subprocess.run(
            ["bash", "-c", PRELUDE],
            cwd=make_run.checkout,
            env=env,
            capture_output=True,
            text=True,
            timeout=BLOCK_TIMEOUT,
        )
    except subprocess.TimeoutExpired as err:
        return f"{block.where}: still running after {BLOCK_TIMEOUT} s\n{err.stdout or ''}{err.stderr or ''}"
    if done.returncode == 0:
        return None
    failed_line = re.search(r"docs-test: exit \d+ at line (\d+) of the block", done.stderr)
    where = block.where if failed_line is None else f"{block.doc}:{block.line + int(failed_line[1])}"
    output = f"--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
    return f"{where} failed (exit {done.returncode}):\n{script}\n{output}"


# README's examples (the first hour after `make run`, about 40 s) run in `make test`; the commands of docs/ (CLI
# validations, pytest runs, declarative apply: about 4 minutes together) in `make test-slow`.
DOCS_WITH_COMMANDS = [
    pytest.param(name, marks=() if name == "README.md" else pytest.mark.slow)
    for name, blocks in ALL_BLOCKS.items()
    if any(not block.marker for block in blocks)
]


@pytest.mark.e2e
@requires_program("curl", "jq")
@pytest.mark.parametrize("doc", DOCS_WITH_COMMANDS)
def test_the_commands_of_a_document_run_against_make_run(doc, make_run, tmp_path):
    """Each unmarked block of the document exits 0 (its requests answer < 400), in order; all failures are listed."""
    state = tmp_path / "state.sh"
    state.touch()
    failures = []
    for block in ALL_BLOCKS[doc]:
        if block.marker:
            continue
        failure = run_block(block, make_run, state, tmp_path)
        if failure:
            failures.append(failure)
    if failures:
        print(make_run.airflow.logs())
    assert not failures, "\n\n".join(failures)
