"""BENCHMARKS.md: the command, the machine, and per measurement the timings, baselines, ratios and goals.

Everything in the file comes from one run, so the engine and its baselines saw the same machine state.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata

from benchmarks.timing import Measurement, Samples, Stated

METHOD = """\
- The engine is timed **in process** with `time.perf_counter()` (no interpreter start-up), through the
  same use cases every face calls (`sync_repository`, `sense`). Validation is excluded: (a)-(c) and (l) pass a
  `validator=` that returns an empty `Report` (it would time the user's checks, not the engine).
- Each subject runs once as a warm-up, then the given number of times; the tables show median, min and max.
- Baselines run in the same process, on the same repositories and commits, **interleaved** with the
  engine in a rotating order, so a slow moment of the machine hits all subjects alike.
- Repositories are generated: 30-60 line DAG files (`airflow.sdk` imports, `@dag` with default_args,
  3-5 `@task`s, docstrings) spread over five team folders, committed in plain repositories used as
  `file://` remotes. The state DB is SQLite in a temporary work folder, removed afterwards.
- Ratios are of medians: "0.40×" means dagops takes 0.40 times as long as the baseline.
- File-system-heavy work (git clone, cp, hard links, rmtree) varies 2-3× from minute to minute on this
  machine (a VM; ext4 mounted with `discard`), which the min/max columns show. Compare ratios from one
  run rather than absolute numbers from different runs.
"""


@dataclass
class RunInfo:
    command: str
    started: datetime
    seconds: float
    reps: int
    e2e_reps: int


def machine_facts() -> list[tuple[str, str]]:
    """What the numbers depend on: cores, CPU, interpreter, git and Airflow versions."""
    return [
        ("CPUs available (nproc)", str(len(os.sched_getaffinity(0)))),
        ("CPU", _cpu_model()),
        ("OS", f"{platform.system()} {platform.release()} ({platform.machine()})"),
        ("Python", platform.python_version()),
        ("git", subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.strip()),
        ("Apache Airflow", _version("apache-airflow")),
        ("apache-airflow-providers-git", _version("apache-airflow-providers-git")),
        ("airflow-dagops", _version("airflow-dagops")),
    ]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def render(run: RunInfo, measurements: list[Measurement]) -> str:
    parts = [
        "# Benchmarks\n",
        f"Produced by `{run.command}` (what `make bench` runs) on {run.started:%Y-%m-%d %H:%M} UTC; the "
        f"whole run took {run.seconds / 60:.1f} min. Engine measurements: {run.reps} timed runs after a "
        f"warm-up; end to end: {run.e2e_reps} timed runs. Rerun `make bench` to refresh this file.\n",
        "## Machine\n",
        _table(["", ""], [[k, v] for k, v in machine_facts()]),
        "## Summary\n",
        _summary(measurements),
        "## How it is measured\n",
        METHOD,
    ]
    parts += [_section(m) for m in measurements]
    return "\n".join(parts)


def merge(existing: str, run: RunInfo, measurements: list[Measurement]) -> str:
    """`existing` (a BENCHMARKS.md) with the sections and summary rows of `measurements` replaced or added, and a
    line saying which command refreshed them when; everything else, from its earlier run, is kept as it was."""
    head, *sections = existing.split("\n## ")
    by_title = {section.split("\n", 1)[0]: section for section in sections}
    for m in measurements:  # in the place of the section it replaces, so the file keeps its order
        text = _section(m).removeprefix("## ").rstrip("\n") + "\n"
        old = [title for title in by_title if title.startswith(f"({m.key})")]
        by_title = {
            (m.title if title == old[0] else title): (text if title == old[0] else section)
            for title, section in by_title.items()
            if title not in old[1:]
        }
        by_title.setdefault(m.title, text)
    keys = tuple(f"({m.key})" for m in measurements)
    summary = by_title.get("Summary", "Summary\n")
    by_title["Summary"] = "Summary\n\n" + "\n".join(_merged_rows(summary.splitlines()[1:], measurements)) + "\n"
    again = f"{', '.join(keys)}: measured again by"
    refreshed = (
        f"{again} `{run.command}` on {run.started:%Y-%m-%d %H:%M} UTC ({run.seconds / 60:.1f} min); the other "
        "sections are from the run named above."
    )
    head = re.sub(r"\n{3,}", "\n\n", "\n".join(line for line in head.splitlines() if not _superseded(line, keys)))
    return "\n## ".join([head.rstrip("\n") + "\n\n" + refreshed + "\n", *by_title.values()])


def _superseded(line: str, keys: tuple[str, ...]) -> bool:
    """An earlier "measured again" line whose sections were all measured again by this run."""
    match = re.match(r"((?:\(\w\)(?:, )?)+): measured again by", line)
    return match is not None and set(re.findall(r"\(\w\)", match.group(1))) <= set(keys)


def _merged_rows(lines: list[str], measurements: list[Measurement]) -> list[str]:
    """The summary's rows with those of `measurements` replaced where they stood (new ones at the end)."""
    fresh = {m.key: _summary([m]).splitlines()[2:] for m in measurements}
    rows: list[str] = []
    for line in (line for line in lines if line):
        key = next((m.key for m in measurements if line.startswith(f"| ({m.key})")), None)
        if key is None:
            rows.append(line)
        elif key in fresh:  # the first old row of a measurement: its new rows go here, the other old ones go
            rows += fresh.pop(key)
    return rows + [row for new in fresh.values() for row in new]


def _summary(measurements: list[Measurement]) -> str:
    rows = []
    for m in measurements:
        if m.error:
            rows.append([m.title, "—", f"error: {m.error}", "**ERROR**"])
        for goal in m.goals:
            rows.append([m.title, goal.text, goal.measured, _verdict(goal.passed)])
    return _table(["Measurement", "Goal", "Measured", "Result"], rows)


def _section(m: Measurement) -> str:
    parts = [f"## {m.title}\n"]
    if m.error:
        parts.append(f"**ERROR**: the measurement failed: `{m.error}`\n")
        return "\n".join(parts)
    parts.append(m.method + "\n")
    subject = m.rows[0]
    rows = [_row(row, subject, first=i == 0) for i, row in enumerate(m.rows)]
    headers = ["What", "Median ms", "Min ms", "Max ms", "Runs", "dagops ÷ this"]
    parts.append(_table(headers, rows))
    parts.append(_table(["Goal", "Measured", "Result"], [[g.text, g.measured, _verdict(g.passed)] for g in m.goals]))
    parts += [f"{note}\n" for note in m.notes]
    return "\n".join(parts)


def _row(row: Samples | Stated, subject: Samples, *, first: bool) -> list[str]:
    if isinstance(row, Stated):
        return [f"{row.what} *(baseline)*", _ms(row.ms), "—", "—", "stated", f"{subject.median / row.ms:.2f}×"]
    if first:
        return [f"**{row.what}**", _ms(row.median), _ms(row.min), _ms(row.max), str(len(row.ms)), "—"]
    ratio = f"{subject.median / row.median:.2f}×" if row.role == "baseline" else "—"
    return [f"{row.what} *({row.role})*", _ms(row.median), _ms(row.min), _ms(row.max), str(len(row.ms)), ratio]


def _ms(value: float) -> str:
    return f"{value:,.1f}" if value < 1000 else f"{value:,.0f}"


def _verdict(passed: bool) -> str:
    return "**PASS**" if passed else "**MISS**"


def _table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def command_line(argv: list[str]) -> str:
    """The command as typed from the repository root (interpreter path made relative when it is inside)."""
    python = os.path.relpath(sys.executable) if sys.executable.startswith(os.getcwd()) else sys.executable
    return " ".join([python, "-m", "benchmarks.run", *argv])
