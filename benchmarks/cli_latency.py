"""(j) CLI latency: the wall time of every `dagops` read command, beside `airflow version`, in the same run.

Each command is a new process, as a person or a script runs it (interpreter start-up, imports, the state DB
query, rendering), timed from `subprocess.run` to its exit. The installation is a SQLite state DB with three
registered repositories, one of them published with a few DAG files, and the example marketplace catalog, so
lists, releases, events and packages have rows. The commands run in a rotating order, so a slow moment of this
shared machine hits them all alike.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from benchmarks.env import use_installation
from benchmarks.repos import make_dag_repo
from benchmarks.timing import Goal, Measurement, Samples, timed

LIMIT_MS = 500.0
REPOSITORIES = ("team-etl", "team-ml", "team-reporting")
PUBLISHED = REPOSITORIES[0]
EXAMPLE_CATALOG = Path(__file__).resolve().parents[1] / "examples" / "catalog"
PACKAGE = "postgres_backup_to_s3"  # of examples/catalog
DAGOPS = [sys.executable, "-m", "airflow_dagops.cli.main"]
# What a read stands on: the interpreter; SQLAlchemy, which reads of a SQLite state DB no longer import (store/reads.py
# reads it with Python's sqlite3), and with its ORM and dagops' models what every read paid before; last the floor of
# a read now: typer and dagops' CLI with its state DB reader (the last breakdown row is the one the notes compare).
FLOORS = [
    ("`python -c pass` (interpreter start-up)", "pass"),
    ("`python -c 'import sqlalchemy'` (SQLAlchemy Core alone)", "import sqlalchemy"),
    (
        "`python -c 'import typer, rich, airflow_dagops.store.models'` (what every read loaded before: CLI framework, "
        "output, SQLAlchemy ORM, state DB models)",
        "import typer, typer.main, rich.console, rich.table, airflow_dagops.store.models",
    ),
    (
        "`python -c 'import typer.main, airflow_dagops.cli.main, airflow_dagops.store.reads'` (a read's floor now: "
        "CLI framework, dagops' CLI, the sqlite3 reader)",
        "import typer.main, airflow_dagops.cli.main, airflow_dagops.store.reads",
    ),
]
# Every command that only reads (`credentials test` reaches the remote with git: it is a check, not a read).
READS = [
    ("repos list", ["repos", "list"]),
    ("repos list --json", ["repos", "list", "--json"]),
    ("repos show", ["repos", "show", PUBLISHED]),
    ("repos export", ["repos", "export"]),
    ("status", ["status"]),
    ("versions", ["versions", PUBLISHED]),
    ("diff", ["diff", PUBLISHED, "1", "1"]),
    ("events", ["events"]),
    ("promotion", ["promotion", PUBLISHED]),
    ("tests", ["tests", PUBLISHED, "--json"]),
    ("webhooks show", ["webhooks", "show", PUBLISHED]),
    ("discover --list", ["discover", "--list"]),
    ("marketplace list", ["marketplace", "list"]),
    ("marketplace list --installed", ["marketplace", "list", "--installed"]),
    ("marketplace search", ["marketplace", "search", "backup"]),
    ("marketplace info", ["marketplace", "info", PACKAGE]),
    ("marketplace catalogs list", ["marketplace", "catalogs", "list"]),
    ("--help", ["--help"]),
]


def measure_cli_latency(work: Path, reps: int, progress: Callable[[str], None]) -> Measurement:
    """Median wall time of every read, and of `airflow version`, over `reps` rotated rounds after a warm-up."""
    _seed(work / "cli", progress)
    airflow = shutil.which("airflow", path=str(Path(sys.executable).parent)) or "airflow"
    subjects = [(Samples(f"`dagops {label}`", role="read"), [*DAGOPS, *args]) for label, args in READS]
    subjects[0][0].role = "subject"
    subjects += [(Samples(what, role="breakdown"), [sys.executable, "-c", code]) for what, code in FLOORS]
    baseline = Samples("`airflow version` (the lightest Airflow CLI command)", role="baseline")
    subjects.append((baseline, [airflow, "version"]))
    cpu: dict[str, list[float]] = {samples.what: [] for samples, _ in subjects}
    load_before = os.getloadavg()[0]
    for rep in range(reps + 1):  # the first round warms the page cache and writes bytecode; it is not kept
        progress(f"(j) round {rep}/{reps}: {len(subjects)} commands")
        order = subjects[rep % len(subjects) :] + subjects[: rep % len(subjects)]
        for samples, argv in order:
            ms, cpu_ms = _run(argv)
            if rep:
                samples.ms.append(ms)
                cpu[samples.what].append(cpu_ms)
    rows = [samples for samples, _ in subjects]
    loads = (load_before, os.getloadavg()[0])
    return Measurement(
        "j",
        "(j) CLI latency: `dagops` reads beside `airflow version`",
        _method(reps),
        rows=rows,
        goals=_goals([s for s in rows if s.role in ("subject", "read")]),
        notes=_notes(rows, cpu, loads),
    )


def _seed(root: Path, progress: Callable[[str], None]) -> None:
    """Three registered repositories on a SQLite state DB, the first one synced (so it has a live release), and the
    example marketplace catalog, read."""
    from airflow_dagops.marketplace import catalogs
    from airflow_dagops.repositories.registry import add_repository
    from airflow_dagops.sync.sync import sync_repository
    from benchmarks.engine import noop_validator

    progress("(j) preparing: a state DB with three repositories, one published, and the example catalog")
    use_installation(root)
    for name in REPOSITORIES:
        source = make_dag_repo(root / "sources" / name, 5, prefix=name.replace("-", "_"))
        add_repository(name, source.url, verify=False)
    outcome = sync_repository(PUBLISHED, trigger="cli", validator=noop_validator)
    if not outcome.ok:
        raise RuntimeError(f"could not publish {PUBLISHED}: {outcome.message}")
    catalog = root / "catalog"
    catalogs.catalog_repo_from_folder(EXAMPLE_CATALOG, catalog)
    catalogs.add_catalog("community", catalog.as_uri(), verify=False)
    if any(result["status"] != "ok" for result in catalogs.refresh_catalogs()):
        raise RuntimeError("could not read the example catalog")


def _run(argv: list[str]) -> tuple[float, float]:
    """One command to its end, its output discarded: its wall time and its CPU time (user + system), in ms. A
    failure stops the measurement (it would time an error)."""
    env = {**os.environ, "COLUMNS": "80"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    ms, result = timed(lambda: subprocess.run(argv, capture_output=True, text=True, env=env, check=False))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode not in (0, 1):  # `status` exits 1 while repositories are degraded (not yet polled)
        raise RuntimeError(f"{' '.join(argv[2:])} exited {result.returncode}: {result.stderr.strip()[-500:]}")
    cpu_ms = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000
    return ms, cpu_ms


def _goals(reads: list[Samples]) -> list[Goal]:
    slowest = max(reads, key=lambda s: s.median)
    subject = reads[0]
    over = [s.what for s in reads if s.median > LIMIT_MS]
    return [
        Goal(f"{subject.what} ≤ {LIMIT_MS:.0f} ms", f"{subject.median:.0f} ms", subject.median <= LIMIT_MS),
        Goal(
            f"every read ≤ {LIMIT_MS:.0f} ms (the slowest)",
            f"{slowest.median:.0f} ms ({slowest.what}); {len(over)} of {len(reads)} over",
            slowest.median <= LIMIT_MS,
        ),
    ]


def _notes(rows: list[Samples], cpu: dict[str, list[float]], loads: tuple[float, float]) -> list[str]:
    airflow = rows[-1]
    floor = [s for s in rows if s.role == "breakdown"][-1]
    cpu_rows = [f"| {what} | {statistics.median(values):,.0f} |" for what, values in cpu.items()]
    cpus = os.cpu_count() or 1
    busy = ": other work shared the CPUs, which stretches wall times" if max(loads) > cpus / 2 else ""
    return [
        f"This machine's load average (1 min, {cpus} CPUs) was {loads[0]:.1f} when the rounds began and "
        f"{loads[1]:.1f} when they ended{busy}. CPU time (user + system) of each command, median ms, depends less "
        "on other work:\n\n| What | CPU ms |\n|---|---|\n" + "\n".join(cpu_rows),
        f"The last *(breakdown)* row is the floor a read stands on now: {floor.median:,.0f} ms to start Python and "
        f"import typer, dagops' CLI and its state DB reader, of the {rows[0].median:,.0f} ms of `dagops repos list`; "
        "the rest is the command's own module, the queries and the rendering. The rows above it show what the reads "
        "no longer load: SQLAlchemy (its import alone is most of a read's old time), its ORM and dagops' models.",
        f"`dagops repos list` takes {rows[0].median / airflow.median:.2f}× the time of `airflow version` in this "
        "run. Before issue 19 it took about 3.1 s (about 1.9× `airflow version`): it imported Airflow's "
        "configuration and every command group. No read imports Airflow, pydantic, YAML, the package schema or "
        "an HTTP client now (`webhooks show` reads whether the webhook secret's connection exists from the "
        "environment or Airflow's metadata DB directly, unless a custom secrets backend is configured), and on a "
        "SQLite state DB every read (the event feed too) queries it with Python's sqlite3 (store/reads.py) and writes "
        "plain text to a pipe, importing neither SQLAlchemy nor rich: tests/cli/test_fast_reads.py checks both in a "
        "subprocess.",
    ]


def _method(reps: int) -> str:
    return (
        f"Each command is started as a new process (`python -m airflow_dagops.cli.main ...`, what the `dagops` "
        f"script runs) with COLUMNS=80 and its output captured (no terminal), and timed from start to exit: "
        f"interpreter start-up, imports, the state DB query and rendering. {reps} rounds after a warm-up round; in "
        "each round every command runs once, in a rotating order. The state DB is SQLite with three registered "
        f"repositories, `{PUBLISHED}` published (5 DAG files), and the example marketplace catalog (examples/catalog). "
        "`airflow version` is the baseline: the lightest command of Airflow's own CLI, in the same rounds; bare "
        "`python -c` processes in the same rounds show the floor under the reads."
    )
