"""Airflow 3 compatibility check: ruff's `AIR` rules over the release's Python files, in one ruff run.

DAGs written for Airflow 2 are the first migration pain; ruff's Airflow rules know every removed and moved
name and say exactly what to use instead (its fix text becomes our hint).

How ruff is run, and why:
- `--isolated`: a DAG repository may carry its own ruff config (pyproject.toml, ruff.toml) that ignores or
  excludes rules; the gate's result must not depend on it. Repo-level exceptions go through the pipeline's
  configuration, where the operator can make rules mandatory.
- `--ignore-noqa`: for the same reason a `# noqa: AIR301` comment does not switch a rule off here.
- `--preview`: in ruff 0.17 AIR003, AIR004, AIR201, AIR202, AIR304 and AIR321 are preview rules; without it
  `--select AIR` silently leaves them out.
- `--exit-zero`: findings are not a failure; any other non-zero exit is.
- `--no-cache`: the release folder is immutable and must stay free of a `.ruff_cache`.
- Paths are relative to the release root (ruff runs there) and come after `--`, so a file named `-x.py`
  can't be read as an option.

AIR3xx findings inside an `except ImportError` handler (the Airflow 2 branch of a compatibility shim such as
`try: from airflow.sdk import DAG` / `except ImportError: from airflow import DAG`) are dropped: that code only
runs where the `try` fails, i.e. on Airflow 2. Whether the shim works on this Airflow is the imports check's job.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from pathlib import Path

from airflow_dagops.validate.imports import import_fallback_line_ranges, parse_python_file, python_files_in_release
from airflow_dagops.validate.report import Finding

try:
    from ruff.__main__ import find_ruff_bin
except ImportError:  # the ruff package is missing: check_compat reports compat-check-unavailable
    find_ruff_bin = None

log = logging.getLogger(__name__)

RUFF_ARGS = (
    "check",
    "--select",
    "AIR",
    "--preview",
    "--output-format",
    "json",
    "--no-cache",
    "--isolated",
    "--ignore-noqa",
    "--exit-zero",
)
RUFF_TIMEOUT_SECONDS = 300
# Stay well below the kernel's argument-size limit; a normal release fits in one ruff run.
MAX_ARGUMENT_CHARS = 100_000
UPGRADE_GUIDE = "https://airflow.apache.org/docs/apache-airflow/stable/installation/upgrading_to_airflow3.html"

ERROR_CODES = frozenset({"AIR301", "AIR302", "AIR303"})  # breaks on Airflow 3; everything else is advice

RULES = {
    "AIR001": "Task variable name does not match its task_id.",
    "AIR002": "DAG without an explicit schedule (Airflow 3 changed the default from daily to None).",
    "AIR003": "Variable.get() outside a task: a metadata lookup on every parse of the file.",
    "AIR004": "A branch task that only ever skips: use a short-circuit task instead.",
    "AIR201": "An xcom_pull in a template string where the upstream task's .output would do.",
    "AIR202": "A @task relying on multiple_outputs inference from its return annotation.",
    "AIR301": "Uses something removed in Airflow 3 (fails on Airflow 3).",
    "AIR302": "Uses something moved to a provider package in Airflow 3 (fails on Airflow 3 without the new import).",
    "AIR303": "Calls a function with a signature Airflow 3 no longer accepts (fails on Airflow 3).",
    "AIR304": "A runtime-varying value (e.g. datetime.now()) as a DAG or task argument: a new DAG version every parse.",
    "AIR311": "Uses something deprecated in Airflow 3 that still works through a compatibility layer.",
    "AIR312": "Uses something moved to a provider that still works through a compatibility layer.",
    "AIR321": "Uses something moved or deprecated in Airflow 3.1.",
    "compat-check-unavailable": "The Airflow 3 compatibility check (ruff) could not run.",
}

# What to do when ruff offers no fix text.
_FALLBACK_HINTS = {
    "AIR001": "Name the variable after its task_id (or the task_id after the variable).",
    "AIR002": "Pass `schedule=` explicitly, e.g. `schedule=None` for a DAG that is only triggered by hand.",
    "AIR003": "Read the Variable inside the task, or pass it through a template such as '{{ var.value.NAME }}'.",
    "AIR004": "Use `@task.short_circuit` (ShortCircuitOperator) instead of a branch that only skips.",
    "AIR301": "Remove it or use its Airflow 3 replacement (the upgrade guide lists them).",
    "AIR302": "Install the provider package named in the message and import from it.",
    "AIR303": "Call it the Airflow 3 way (for example with keyword arguments).",
    "AIR304": "Use fixed values, e.g. `start_date=pendulum.datetime(2024, 1, 1, tz='UTC')`, not `datetime.now()`.",
}


class RuffFailed(Exception):
    """ruff could not be found, did not finish, or gave output we can't read."""


def check_compat(root: Path, files: list[str]) -> list[Finding]:
    root = Path(root)
    targets = [relative for relative, _ in python_files_in_release(root, files)]
    if not targets:
        return []
    try:
        diagnostics = []
        for batch in _batches(targets):
            diagnostics.extend(run_ruff(root, batch))
    except RuffFailed as err:
        log.warning("Airflow 3 compatibility check unavailable: %s", err)
        return [_unavailable(str(err))]
    relative_paths = _relative_path_lookup(root, targets)
    findings = [f for f in (_finding(d, relative_paths) for d in diagnostics) if f is not None]
    return _without_import_fallback_findings(root, findings)


def _without_import_fallback_findings(root: Path, findings: list[Finding]) -> list[Finding]:
    """Drop AIR3xx findings on lines inside an `except ImportError` handler (the Airflow 2 side of a shim)."""
    ranges: dict[str, list[tuple[int, int]]] = {}
    kept = []
    for finding in findings:
        if finding.rule.startswith("AIR3") and finding.file and finding.line:
            if finding.file not in ranges:
                tree = parse_python_file(root / finding.file, finding.file)
                ranges[finding.file] = import_fallback_line_ranges(tree) if tree is not None else []
            if any(first <= finding.line <= last for first, last in ranges[finding.file]):
                log.debug("compat: %s at %s:%s is in an ImportError fallback", finding.rule, finding.file, finding.line)
                continue
        kept.append(finding)
    return kept


def ruff_binary() -> str:
    if find_ruff_bin is None:
        raise RuffFailed("the `ruff` package is not installed in this environment")
    try:
        return os.fspath(find_ruff_bin())
    except (FileNotFoundError, OSError) as err:
        raise RuffFailed(f"the ruff binary was not found ({err})") from err


def run_ruff(root: Path, relative_paths: list[str]) -> list[dict]:
    """ruff's JSON diagnostics for these files; raises RuffFailed when ruff doesn't do its job."""
    command = [ruff_binary(), *RUFF_ARGS, "--", *relative_paths]
    try:
        result = subprocess.run(
            command,
            cwd=root,
            env=_ruff_environment(),
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=RUFF_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as err:
        raise RuffFailed(f"ruff did not finish within {RUFF_TIMEOUT_SECONDS} s") from err
    except OSError as err:
        raise RuffFailed(f"ruff could not be started ({err})") from err
    if result.returncode != 0:
        raise RuffFailed(f"ruff exited with code {result.returncode}: {_last_line(result.stderr)}")
    if result.stderr.strip():
        # Files ruff can't read (non-UTF-8, vanished) are warnings on stderr: the syntax check reports those.
        log.debug("ruff: %s", result.stderr.strip())
    try:
        diagnostics = json.loads(result.stdout or "[]")
    except json.JSONDecodeError as err:
        raise RuffFailed(f"ruff's output is not JSON ({err}): {_last_line(result.stdout)}") from err
    if not isinstance(diagnostics, list):
        raise RuffFailed("ruff's JSON output is not a list of diagnostics")
    return diagnostics


def severity_for(code: str) -> str:
    return "error" if code in ERROR_CODES else "warning"


def _ruff_environment() -> dict[str, str]:
    # RUFF_* variables (output format, cache dir, ...) belong to the person running the validator, not to us.
    return {key: value for key, value in os.environ.items() if not key.startswith("RUFF_")}


def _batches(paths: list[str]) -> list[list[str]]:
    batches: list[list[str]] = [[]]
    size = 0
    for path in paths:
        if batches[-1] and size + len(path) + 1 > MAX_ARGUMENT_CHARS:
            batches.append([])
            size = 0
        batches[-1].append(path)
        size += len(path) + 1
    return batches


def _relative_path_lookup(root: Path, targets: list[str]) -> dict[str, str]:
    """ruff names files by absolute path under its (resolved) working directory: map those back to ours."""
    lookup = {}
    for base in {os.path.abspath(root), os.path.realpath(root)}:
        for relative in targets:
            lookup[os.path.normpath(os.path.join(base, relative))] = relative
    return lookup


def _finding(diagnostic: dict, relative_paths: dict[str, str]) -> Finding | None:
    code = diagnostic.get("code")
    if not isinstance(code, str) or not code.startswith("AIR"):
        return None  # syntax errors come without a code: the syntax check reports them
    filename = os.path.normpath(str(diagnostic.get("filename", "")))
    location = diagnostic.get("location") or {}
    fix = diagnostic.get("fix") or {}
    return Finding(
        rule=code,
        severity=severity_for(code),
        message=str(diagnostic.get("message", "")).strip().rstrip(";").strip(),
        file=relative_paths.get(filename, filename),
        line=location.get("row"),
        hint=_hint(code, fix.get("message"), diagnostic.get("url")),
    )


def _hint(code: str, fix_message: str | None, url: str | None) -> str:
    hint = (fix_message or "").strip() or _FALLBACK_HINTS.get(code, "Update the code for Airflow 3.")
    if not hint.endswith("."):
        hint += "."
    references = f"{url} and the Airflow 3 upgrade guide: {UPGRADE_GUIDE}" if url else UPGRADE_GUIDE
    return f"{hint} See {references}"


def _unavailable(reason: str) -> Finding:
    return Finding(
        rule="compat-check-unavailable",
        severity="warning",
        message=f"The Airflow 3 compatibility check (ruff AIR rules) did not run: {reason}",
        hint="Install ruff in the environment that runs the validation (pip install 'ruff>=0.17,<0.18').",
    )


def _last_line(text: str) -> str:
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "(no output)"
