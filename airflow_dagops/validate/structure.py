"""Structure check: load the release's DAG files with Airflow's DagBag, in a sandbox, and report what is wrong.

User DAG code runs only in child processes (`sandbox_worker.py`), with:
- a scrubbed environment: no Airflow DB URL, no `AIRFLOW_CONN_*` / `AIRFLOW_VAR_*`, nothing that looks like a
  secret; `AIRFLOW_HOME`, `HOME`, `TMPDIR` and the working directory in a fresh temporary directory;
- Variables and Connections answered by placeholders (reading a Variable at import time is reported);
- no metadata DB at all: the ORM is blocked as in Airflow 3's dag-processor, so no import leaves state for the next;
- a per-file timeout (default `[core] dagbag_import_timeout`): Airflow's own alarm inside the child first, then a
  kill of the child's process group by the parent (for code that swallows the alarm or is stuck in C);
- a per-file memory limit (RLIMIT_AS, default 1 GiB) counted from what the child already maps after importing
  Airflow (several hundred MiB of address space on its own), so every file gets the whole limit for itself.

Why subprocess + JSON lines rather than multiprocessing: the parent must choose the child's environment, working
directory and session exactly (multiprocessing's spawn copies the parent's environment and re-imports its
`__main__`, which may be pytest, the dagops CLI or an Airflow task runner), must be able to kill a child's whole
process group, and must never unpickle anything a child sends. A JSON line protocol over pipes gives all of that.

Why one zygote: importing Airflow costs 1-2 s of CPU, so a single child imports it once and forks one long-lived
"generation" per worker slot; the generations load files one by one from the parent's queue. One that hangs,
dies or exhausts its memory is replaced by another fork in milliseconds, and the slots share one Airflow import
(CPU and memory that the pipeline's other checks can use). See `sandbox_worker.py` for the process layout. A sync
starts its sandbox ahead, before the release exists (`start_ahead`): that import then overlaps the fetch and export.

Size: the parent's half of one protocol (sandbox_worker.py is the other half). The `Sandbox` class (the
warm pool, the request loop, the timeouts and the kill paths) shares private state that would otherwise leak
across modules; the environment scrubbing and the sandbox command are already apart (redaction.py,
sandbox_host.py).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import logging
import os
import selectors
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO

import airflow_dagops
from airflow_dagops import settings, tempdirs
from airflow_dagops.redaction import is_sensitive
from airflow_dagops.validate import sandbox_host
from airflow_dagops.validate.report import Finding
from airflow_dagops.validate.rules import default_severity
from airflow_dagops.validate.sandbox_audit import HINTS as BEHAVIOUR_HINTS
from airflow_dagops.validate.sandbox_audit import RULES as BEHAVIOUR_RULES
from airflow_dagops.validate.sandbox_host import SandboxSupport, SandboxUnavailable

log = logging.getLogger(__name__)

RULES: dict[str, str] = {
    "import-error": "A DAG file raises an exception when Airflow imports it.",
    "import-timeout": "A DAG file takes longer than the import timeout to load.",
    "import-memory-limit": "A DAG file allocates more memory than the sandbox's limit while it loads.",
    "import-exit": "A DAG file calls sys.exit() or os._exit() while it loads.",
    "import-crash": "The process loading a DAG file crashed (a signal) or was killed by the file's own code.",
    "dag-cycle": "A DAG's task dependencies form a cycle.",
    "no-dag-in-file": "A file that builds DAGs (DAG(...) or @dag) produced no DAG when loaded.",
    "duplicate-dag-id": "Two different DAG objects of the release (in two files, or in one) have the same dag_id.",
    "dag-id-taken": "A dag_id is already owned by a repository with a higher priority (see on_conflict).",
    "dag-id-shadows": "A dag_id this release takes from a lower-priority repository, whose file is left out.",
    "variable-at-import": "A Variable is read at import time (a secrets/DB round trip on every parse).",
    "sandbox-degraded": "DAG files were imported without the OS sandbox ([dagops] sandbox = degraded).",
    **BEHAVIOUR_RULES,
}

DEFAULT_MEMORY_LIMIT = 2**30
DEFAULT_TIMEOUT = 30.0  # Airflow's own default, used when its setting disables the timeout (<= 0)
STARTUP_TIMEOUT = 120.0  # importing Airflow in a fresh zygote, on a busy machine
GENERATION_TIMEOUT = 30.0  # a fork of the zygote saying it is ready
MAX_ZYGOTE_STARTS = 4  # beyond that the sandbox itself is broken, not a DAG file
LOG_TAIL_BYTES = 8192
# The worker is found through the folder that holds this package, which is then taken off sys.path again, so
# DAG files never import from it (PYTHONPATH would leave it there, and `python FILE` would expose this package's
# own folder instead). The garbage collector is off while the zygote imports Airflow: ~1,500 modules make millions of
# objects that are not garbage, and collecting over them is about a fifth of the zygote's start-up CPU. It is back on
# before any generation forks (`sandbox_worker.Zygote.run`), so DAG code runs with it as in production.
PACKAGE_PARENT = str(Path(airflow_dagops.__file__).resolve().parent.parent)
BOOTSTRAP = (
    "import gc; gc.disable(); import sys; sys.path.insert(0, sys.argv[1]); "
    "from airflow_dagops.validate.sandbox_worker import main; "
    "sys.path.remove(sys.argv[1]); sys.exit(main(sys.argv[1:]))"
)

# Settings that change how Airflow parses DAG files; copied from the parent's configuration (none is a secret).
_PARSE_SETTINGS = (
    ("core", "executor"),
    ("core", "dag_discovery_safe_mode"),
    ("core", "dag_ignore_file_syntax"),
    ("core", "default_timezone"),
    ("core", "might_contain_dag_callable"),
    # Custom timetables and priority-weight strategies come from plugins; serializing a DAG needs them registered.
    ("core", "plugins_folder"),
    ("core", "load_examples"),  # loads Airflow's example plugins, as production does
    ("operators", "default_owner"),
)

HINTS = {
    "import-error": "Fix the exception at the line shown; `python {file}` in an environment like Airflow's reproduces "
    "it. A missing module means a missing dependency (see the imports check).",
    "import-timeout": "Move slow work (network calls, big computations, waiting) out of top-level code into tasks; "
    "Airflow re-imports DAG files every few seconds.",
    "import-memory-limit": "Do not build large data structures at import time; load data inside tasks instead.",
    "import-exit": "Remove sys.exit()/os._exit()/exit() from top-level code: raise an exception or skip the DAG.",
    "import-crash": "A native extension crashed the interpreter while loading this file; import it inside a task.",
    "dag-cycle": "Remove one of the dependencies (>>, <<, set_upstream/set_downstream) that closes the loop.",
    "no-dag-in-file": "Make sure the DAG is created at import time (call the @dag function, or use `with DAG(...)` at "
    "module level). If this is a helper module, list it in .airflowignore so Airflow does not parse it.",
    "duplicate-dag-id": "Give each DAG a unique dag_id; Airflow keeps only one of them.",
    "dag-id-taken": "Choose another dag_id, or change the repositories' priorities: it belongs to another namespace.",
    "variable-at-import": "Read the Variable inside a task, or in a template ('{{{{ var.value.{key} }}}}'), not at "
    "module level.",
    "sandbox-degraded": "Install bubblewrap and set [dagops] sandbox = strict (see docs/security.md).",
    **{rule: hint.replace("{", "{{").replace("}", "}}") for rule, hint in BEHAVIOUR_HINTS.items()},
}


@dataclass
class DagInfo:
    dag_id: str
    file: str
    owners: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    # The smallest effective `retries` over the DAG's tasks (operator arguments, default_args and Airflow's
    # default all included); the default_args value for a DAG without tasks; None when neither exists.
    retries: int | None = None
    schedule: str | None = None
    schedule_explicit: bool = False
    task_count: int = 0
    line: int | None = None
    task_ids: list[str] = field(default_factory=list)  # sorted; what structural diffs between releases compare


@dataclass
class StructureResult:
    findings: list[Finding] = field(default_factory=list)
    dags: list[DagInfo] = field(default_factory=list)
    import_seconds: dict[str, float] = field(default_factory=dict)


def check_structure(
    root: Path,
    files: list[str],
    *,
    timeout: float | None = None,
    memory_limit: int | None = None,
    workers: int = 2,
    dag_owners: dict[str, str] | None = None,
    serialize: bool = True,
    listed: bool = False,
) -> StructureResult:
    """Load `files` (relative to `root`) in sandboxed Airflow DagBags and report import errors, cycles and the rest.

    `serialize=False` skips serializing each DAG as the dag-processor does (about 40% of the load time): faster,
    but a DAG that only fails at serialization (an unregistered custom timetable, ...) then passes.
    `listed`: the caller chose `files` with `files.parse_view` of the folder as it is now (the pipeline does), so
    the sandbox loads them without listing the folder again; otherwise it skips those Airflow would not parse.
    """
    root = Path(root).resolve()
    candidates = python_files_inside(root, files)
    outcomes: dict[str, dict[str, Any]] = {}
    support: SandboxSupport | None = None
    if candidates:
        support = sandbox_host.require_sandbox()  # strict mode: SandboxUnavailable, nothing imported
        limits = SandboxLimits.resolve(timeout, memory_limit, serialize)
        with warm_sandbox(root, limits, slots=max(1, workers), support=support) as sandbox:
            outcomes = sandbox.load(candidates, listed=listed)
    result = assemble(outcomes)
    if candidates and support is None:
        message = "DAG files were imported without the OS sandbox ([dagops] sandbox = degraded): " + (
            sandbox_host.sandbox_support().reason or "no sandbox"
        )
        result.findings.append(finding("sandbox-degraded", message, None))
    result.findings.extend(duplicate_dag_id_findings(result.dags))
    result.findings.extend(dag_id_taken_findings(result.dags, dag_owners or {}))
    result.findings.sort(key=lambda f: (f.file or "", f.line or 0, f.rule))
    return result


def python_files_inside(root: Path, files: list[str]) -> list[str]:
    """The .py files among `files` that really are inside root (a symlink out of the tree is never imported)."""
    inside = []
    for relative in dict.fromkeys(files):
        if not relative.endswith(".py"):
            continue
        path = (root / relative).resolve()
        if path.is_file() and path.is_relative_to(root):
            inside.append(relative)
    return inside


# ---------------------------------------------------------------------------------------------------------------
# Findings from what the sandbox reported
# ---------------------------------------------------------------------------------------------------------------


def finding(rule: str, message: str, file: str | None, line: int | None = None, **hint_values: str) -> Finding:
    severity = default_severity(rule)
    hint = HINTS[rule].format(file=file or "FILE", **hint_values)
    return Finding(rule=rule, severity=severity, message=message, file=file, line=line, hint=hint)


def assemble(outcomes: dict[str, dict[str, Any]]) -> StructureResult:
    result = StructureResult()
    for relative, outcome in sorted(outcomes.items()):
        if outcome.get("status") != "loaded":
            continue
        if "seconds" in outcome:
            result.import_seconds[relative] = float(outcome["seconds"])
        for problem in outcome.get("problems", []):
            message = problem["message"].replace(sandbox_host.RELEASE_MOUNT + "/", "")  # relative, like the rest
            result.findings.append(finding(problem["rule"], message, problem["file"], problem["line"]))
        result.findings.extend(variable_findings(relative, outcome.get("variable_reads", [])))
        dags = [DagInfo(**dag) for dag in outcome.get("dags", [])]
        result.dags.extend(dags)
        if not dags and not outcome.get("problems") and outcome.get("builds_dag"):
            result.findings.append(no_dag_finding(relative, outcome.get("uncalled_dag_functions", [])))
    return result


def variable_findings(relative: str, reads: list[dict[str, Any]]) -> list[Finding]:
    """One warning per line of the loaded file that reads Variables (directly, or through a helper module)."""
    grouped: dict[tuple[int | None, str | None, int | None], list[str]] = defaultdict(list)
    for read in reads:
        keys = grouped[(read.get("line"), read.get("site_file"), read.get("site_line"))]
        if read["key"] not in keys:
            keys.append(read["key"])
    findings = []
    for (line, site_file, site_line), keys in grouped.items():
        names = ", ".join(repr(key) for key in keys)
        where = f" (in {site_file}:{site_line})" if site_file and site_file != relative else ""
        message = f"Variable {names} is read at import time{where}: every parse of this file asks the secrets backend."
        findings.append(finding("variable-at-import", message, relative, line, key=keys[0]))
    return findings


def no_dag_finding(relative: str, uncalled: list[str]) -> Finding:
    if uncalled:
        names = ", ".join(f"{name}()" for name in uncalled)
        message = f"No DAG was created: the @dag function(s) {names} are never called."
    else:
        message = "The file builds DAGs (DAG(...) or @dag) but loading it created none."
    return finding("no-dag-in-file", message, relative)


def duplicate_dag_id_findings(dags: list[DagInfo]) -> list[Finding]:
    """One finding per DAG that shares its dag_id with another DAG object, in another file or in its own.

    The sandbox reports each DAG object once (see `sandbox_worker.unique_dags`), so a file that reaches one DAG
    twice (`dag=dag` after a `with` block, two globals bound to it) is one DAG here. Records that agree on every
    fact (a cache entry written before that) are that same DAG too. Two objects that differ are a duplicate even
    in one file: Airflow keeps the last one bagged and silently drops the other.
    """
    by_id: dict[str, list[DagInfo]] = defaultdict(list)
    for dag in dags:
        if dag not in by_id[dag.dag_id]:  # dataclass equality: every fact the same
            by_id[dag.dag_id].append(dag)
    findings = []
    for dag_id, defined in sorted(by_id.items()):
        if len(defined) < 2:
            continue
        for dag in defined:
            same_file = sorted({o.line or 0 for o in defined if o is not dag and o.file == dag.file})
            others = sorted({f"{o.file}:{o.line}" if o.line else o.file for o in defined if o.file != dag.file})
            parts = []
            if same_file:
                lines = ", ".join(f"line {line}" if line else "another place" for line in same_file)
                parts.append(
                    f"dag_id {dag_id!r} is defined twice in this file (also at {lines}): Airflow keeps only "
                    "the DAG bagged last."
                )
            if others:
                parts.append(f"dag_id {dag_id!r} is also defined in {', '.join(others)}.")
            findings.append(finding("duplicate-dag-id", " ".join(parts), dag.file, dag.line))
    return findings


def dag_id_taken_findings(dags: list[DagInfo], dag_owners: dict[str, str]) -> list[Finding]:
    findings = []
    for dag in dags:
        owner = dag_owners.get(dag.dag_id)
        if owner is not None:
            message = f"dag_id {dag.dag_id!r} is already used by namespace {owner!r}."
            findings.append(finding("dag-id-taken", message, dag.file, dag.line))
    return findings


def death_outcome(relative: str, status: dict[str, Any], log_tail: str) -> dict[str, Any]:
    """What to report when the process loading a file died without answering."""
    memory_words = ("MemoryError", "Cannot allocate memory", "out of memory", "bad_alloc", "ENOMEM")
    looks_like_memory = any(word in log_tail for word in memory_words)
    if "signal" in status:
        number = int(status["signal"])
        name = signal.Signals(number).name if number in signal.Signals._value2member_map_ else str(number)
        # An unexpected SIGKILL is the kernel's OOM killer: the sandbox's own kills are accounted elsewhere.
        if looks_like_memory or number == signal.SIGKILL:
            rule, message = "import-memory-limit", f"The process loading the file was killed ({name}), out of memory."
        else:
            rule, message = "import-crash", f"The process loading the file died with signal {name}."
    elif looks_like_memory:
        rule, message = "import-memory-limit", "The process loading the file ran out of memory and exited."
    else:
        rule, message = "import-exit", f"The file ended the process loading it (exit code {status.get('exitcode')})."
    problem = {"rule": rule, "message": message, "file": relative, "line": None}
    return {"file": relative, "status": "loaded", "problems": [problem]}


def sandbox_killed_outcome(relative: str) -> dict[str, Any]:
    message = "Loading the file killed the sandbox process that was loading it (twice)."
    problem = {"rule": "import-crash", "message": message, "file": relative, "line": None}
    return {"file": relative, "status": "loaded", "problems": [problem]}


def timeout_outcome(relative: str, seconds: float) -> dict[str, Any]:
    message = f"Loading the file did not finish within {seconds:g} s; the process was killed."
    problem = {"rule": "import-timeout", "message": message, "file": relative, "line": None}
    return {"file": relative, "status": "loaded", "problems": [problem]}


# ---------------------------------------------------------------------------------------------------------------
# The sandbox: limits, environment, worker pool
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SandboxLimits:
    timeout: float
    memory_limit: int
    serialize: bool = True

    @classmethod
    def resolve(cls, timeout: float | None, memory_limit: int | None, serialize: bool = True) -> SandboxLimits:
        if timeout is None:
            from airflow.configuration import conf

            timeout = conf.getfloat("core", "dagbag_import_timeout")
        if timeout <= 0:
            # Airflow reads <= 0 as "no timeout"; the validator must still finish, so it falls back to the default.
            timeout = DEFAULT_TIMEOUT
        memory_limit = DEFAULT_MEMORY_LIMIT if memory_limit is None else memory_limit
        return cls(timeout=float(timeout), memory_limit=memory_limit, serialize=serialize)

    @property
    def kill_after(self) -> float:
        """When the parent kills a generation: Airflow's own alarm fires at `timeout`; this is the backstop for code
        that swallows it (or is stuck in C), with time left to validate and describe the DAGs."""
        return self.timeout + max(2.0, self.timeout * 0.5)


def sandbox_environment(home: Path, timeout: float, *, airflow_home: str | None = None) -> dict[str, str]:
    """The child's environment, built from an allow-list of the parent's (`inherited_environment`) plus the
    parse-relevant Airflow settings, the sandbox's own home and the import timeout."""
    env = inherited_environment(os.environ)
    env.update(parse_settings(os.environ))
    env.update(
        {
            "HOME": str(home),
            "TMPDIR": str(home),
            "AIRFLOW_HOME": airflow_home or str(home / "airflow"),
            # The release folder is published as it is: no __pycache__ written into it.
            "PYTHONDONTWRITEBYTECODE": "1",
            "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": repr(timeout),
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        }
    )
    return env


# What a child may inherit: the locale, the search path, Airflow's and dagops' own settings. Anything else (the
# parent's pytest, coverage or CI variables, tool credentials) stays out, so nothing reaches a DAG by accident.
_INHERITED_NAMES = frozenset({"PATH", "LANG", "LANGUAGE", "TZ", "PYTHONIOENCODING", "PYTHONUTF8", "PYTHONHASHSEED"})
_INHERITED_PREFIXES = ("LC_", "AIRFLOW__", "DAGOPS_")


def inherited_environment(environ: dict[str, str] | os._Environ) -> dict[str, str]:
    """The parent's variables a sandboxed child keeps: allow-listed by name, and never one that reaches the DB or
    looks like a secret (`redaction.is_sensitive`)."""
    return {
        name: value
        for name, value in environ.items()
        if (name in _INHERITED_NAMES or name.startswith(_INHERITED_PREFIXES)) and not is_sensitive(name, value)
    }


def parse_settings(environ: dict[str, str] | os._Environ) -> dict[str, str]:
    """Parse-relevant settings from the parent's Airflow configuration (airflow.cfg is not visible to the child)."""
    try:
        from airflow.configuration import conf
    except Exception:  # the check still runs with Airflow's defaults
        log.warning("Could not read Airflow's configuration; the sandbox uses Airflow's defaults", exc_info=True)
        return {}
    settings = {}
    for section, key in _PARSE_SETTINGS:
        name = f"AIRFLOW__{section.upper()}__{key.upper()}"
        value = conf.get(section, key, fallback=None)
        if name not in environ and value is not None and not is_sensitive(name, value):
            settings[name] = str(value)
    return settings


def private_paths(root: Path) -> list[str]:
    """Host paths a DAG file has no business reading (an attempt is a finding): Airflow's and dagops' homes and
    their configuration and databases, except the release being validated (in degraded mode it lives there)."""

    candidates = []
    with contextlib.suppress(Exception):
        candidates += [str(settings.airflow_home()), str(settings.dagops_home())]
    inside = [p for p in candidates if not str(root).startswith(p.rstrip("/") + "/")]
    return sorted(set(inside))


# ---------------------------------------------------------------------------------------------------------------
# Warm sandboxes: one folder validated again (a local edit loop, `make bench`) reuses its started sandbox
# ---------------------------------------------------------------------------------------------------------------

_WARM: dict[tuple, tuple[Sandbox, threading.Timer]] = {}
_WARM_LOCK = threading.Lock()


@contextlib.contextmanager
def warm_sandbox(root: Path, limits: SandboxLimits, *, slots: int, support: SandboxSupport | None):
    """A sandbox for `root`: the one kept from the last validation of the very same folder, or a new one.

    Why this is safe: the key holds everything the sandbox was built from (the folder and the identity of each
    of its entries, the limits, the environment, the interpreter); the zygote never runs DAG code, and every
    generation that did is replaced before the sandbox serves again (`Sandbox.refresh`). A sandbox in use is out
    of the table, so two threads never share one. `[dagops] sandbox_keep_warm` seconds after its last use (0:
    never kept), or when this process exits, it is stopped.
    """
    keep = _keep_warm_seconds()
    key = _warm_key(root, limits, slots, support) if keep > 0 else None
    with _WARM_LOCK:
        kept = _WARM.pop(key, None) if key is not None else None
    if kept is not None:
        kept[1].cancel()
    sandbox = kept[0] if kept is not None and kept[0].alive() else None
    if sandbox is None:
        if kept is not None:
            kept[0].__exit__()
        sandbox = _take_ahead(root, limits, slots, support)
        sandbox = sandbox or Sandbox(root, limits, slots=slots, support=support).__enter__()
    else:
        sandbox.refresh()
    try:
        yield sandbox
    except BaseException:
        sandbox.__exit__()
        raise
    if key is None:
        sandbox.__exit__()
        return
    timer = threading.Timer(keep, _expire, args=(key, sandbox))
    timer.daemon = True
    with _WARM_LOCK:
        previous = _WARM.pop(key, None)
        _WARM[key] = (sandbox, timer)
    if previous is not None:
        previous[1].cancel()
        previous[0].__exit__()
    timer.start()


@functools.cache
def _spawner() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="dagops-sandbox-spawner")


def _keep_warm_seconds() -> float:

    try:
        return max(0.0, float(settings.get("sandbox_keep_warm") or 0))
    except ValueError:
        return 0.0


def _warm_key(root: Path, limits: SandboxLimits, slots: int, support: SandboxSupport | None) -> tuple:
    """What a sandbox was built from: a new or replaced top-level entry (bound one by one) means a new one."""
    entries = []
    with os.scandir(root) as scan:
        for entry in scan:
            info = entry.stat(follow_symlinks=False)
            target = os.readlink(entry.path) if entry.is_symlink() else ""
            entries.append((entry.name, info.st_dev, info.st_ino, target))
    folder = root.stat()
    return (str(root), folder.st_dev, folder.st_ino, tuple(sorted(entries)), *_built_from(root, limits, slots, support))


def _built_from(root: Path, limits: SandboxLimits, slots: int, support: SandboxSupport | None) -> tuple:
    """What a sandbox's processes were made from, whatever folder it serves."""
    environment = sorted(sandbox_environment(Path("/"), limits.timeout).items())
    return (limits, slots, support, sys.executable, tuple(environment), tuple(private_paths(root)))


# ---------------------------------------------------------------------------------------------------------------
# Sandboxes started ahead: a sync starts one before it fetches, so Airflow's import overlaps the fetch and export
# ---------------------------------------------------------------------------------------------------------------

_AHEAD: dict[str, tuple[Sandbox, tuple]] = {}  # folder of releases -> (its sandbox, what that was built from)


def start_ahead(releases: Path, *, timeout: float | None, memory_limit: int | None, workers: int = 2) -> bool:
    """Start a sandbox for the next release exported into the folder `releases`, before it exists; the next
    `check_structure` of a release there takes it over (`warm_sandbox`). Only with the OS sandbox (its zygote binds
    the release alone before any DAG code runs, see sandbox_isolation.show_only_release). False: none was started."""
    support = sandbox_host.sandbox_support()
    releases = Path(os.path.realpath(releases))
    if not support.available or not releases.is_dir():
        return False
    limits = SandboxLimits.resolve(timeout, memory_limit)
    sandbox = Sandbox(releases, limits, slots=workers, support=support, release_to_come=True).__enter__()
    with _WARM_LOCK:
        previous = _AHEAD.pop(str(releases), None)
        _AHEAD[str(releases)] = (sandbox, _built_from(releases, limits, workers, support))
    if previous is not None:
        previous[0].__exit__()
    return True


def stop_ahead(releases: Path) -> None:
    """Stop the sandbox started ahead for `releases` if no validation took it (nothing changed, all cached)."""
    with _WARM_LOCK:
        entry = _AHEAD.pop(os.path.realpath(releases), None)
    if entry is not None:
        entry[0].__exit__()


def _take_ahead(root: Path, limits: SandboxLimits, slots: int, support: SandboxSupport | None) -> Sandbox | None:
    """The sandbox started ahead for the folder that holds `root`, attached to it; None when there is none, or it
    was made otherwise (limits, environment, ...), or `root` is not a release it can show (see `_whole_folder_ok`)."""
    with _WARM_LOCK:
        entry = _AHEAD.pop(str(root.parent), None)
    if entry is None:
        return None
    sandbox, built_from = entry
    if built_from != _built_from(root, limits, slots, support) or not sandbox.alive() or not _whole_folder_ok(root):
        sandbox.__exit__()
        return None
    try:
        sandbox.attach(root)
    except OSError:  # its zygote died meanwhile
        sandbox.__exit__()
        return None
    return sandbox


def _whole_folder_ok(root: Path) -> bool:
    """The release is bound as one folder: it must be a real folder that every user may list and enter (the usual
    start binds its entries under a folder of its own, so a private release root works there)."""
    info = os.lstat(root)
    return stat.S_ISDIR(info.st_mode) and info.st_mode & 0o005 == 0o005


def _expire(key: tuple, sandbox: Sandbox) -> None:
    with _WARM_LOCK:
        if _WARM.get(key, (None,))[0] is not sandbox:
            return
        del _WARM[key]
    sandbox.__exit__()


@atexit.register
def stop_warm_sandboxes() -> None:
    with _WARM_LOCK:
        kept = list(_WARM.values())
        _WARM.clear()
        ahead = [sandbox for sandbox, _ in _AHEAD.values()]
        _AHEAD.clear()
    for sandbox, timer in kept:
        timer.cancel()
        with contextlib.suppress(Exception):
            sandbox.__exit__()
    for sandbox in ahead:
        with contextlib.suppress(Exception):
            sandbox.__exit__()


class Slot:
    """One worker slot: its pipes to the zygote's generation for the slot, and what that generation is doing."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.requests: BinaryIO | None = None  # parent's write end
        self.results: int | None = None  # parent's read end
        self.buffer = b""
        self.state = "starting"  # starting | idle | busy
        self.generation: int | None = None
        self.file: str | None = None
        self.deadline = 0.0

    def expect_generation(self, deadline: float) -> None:
        self.state, self.generation, self.file = "starting", None, None
        self.deadline = deadline


class Sandbox:
    """One zygote (one Airflow import) and `slots` generations loading files in parallel. The parent hands out
    files, enforces per-file deadlines, and restarts the zygote if it dies (it never runs user code, so that means
    something killed it)."""

    def __init__(
        self,
        root: Path,
        limits: SandboxLimits,
        *,
        slots: int,
        support: SandboxSupport | None = None,
        release_to_come: bool = False,
    ) -> None:
        # `release_to_come`: `root` is the folder a release is about to be exported into (`start_ahead`); the zygote
        # imports Airflow meanwhile and forks no generation until `attach` names the release.
        self.root = root
        self.listed = False  # the files of the current `load` were chosen by the caller's own listing
        self.release_to_come = release_to_come
        self.limits = limits
        self.support = support  # None: degraded, plain child processes
        self.uid = sandbox_host.sandbox_uid() if support is not None and support.as_root else None
        self.selector = selectors.DefaultSelector()
        # Named after its owner: a sandbox folder left by a killed validator is swept later (tempdirs.sweep).
        self.tempdir = tempfile.TemporaryDirectory(prefix=tempdirs.owned_prefix("dagops-sandbox-"))
        self.home = Path(self.tempdir.name)
        airflow_home = sandbox_host.AIRFLOW_HOME_MOUNT if support else None
        self.env = sandbox_environment(self.home, limits.timeout, airflow_home=airflow_home)
        if support:  # inside, the host's temp folder does not exist: the sandbox has its own /tmp and home
            self.env.update({"HOME": sandbox_host.HOME_MOUNT, "TMPDIR": "/tmp"})  # noqa: S108
        self.slots = [Slot(index) for index in range(slots)]
        self.zygote: subprocess.Popen | None = None
        self.starts = 0
        self.log_path = self.home / "sandbox.log"
        self.outcomes: dict[str, dict[str, Any]] = {}
        self.pending: deque[str] = deque()
        self.interrupted: dict[str, int] = defaultdict(int)  # file -> zygote deaths while it was loading

    def __enter__(self) -> Sandbox:
        try:
            self.start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
        self.selector.close()
        with contextlib.suppress(OSError):
            self.tempdir.cleanup()

    # -- processes ----------------------------------------------------------------------------------------------

    def start(self) -> None:
        if self.starts >= MAX_ZYGOTE_STARTS:
            raise SandboxUnavailable(f"The structure sandbox died {self.starts} times; last output: {self.tail()}")
        self.starts += 1
        workdir = self.home / "work"
        workdir.mkdir(exist_ok=True)
        child_ends, now = [], time.monotonic()
        for slot in self.slots:
            request_read, request_write = os.pipe()
            result_read, result_write = os.pipe()
            slot.requests, slot.results, slot.buffer = os.fdopen(request_write, "wb"), result_read, b""
            slot.expect_generation(now + STARTUP_TIMEOUT)
            child_ends.append((request_read, result_write))
            os.set_blocking(result_read, False)
            self.selector.register(result_read, selectors.EVENT_READ, slot)
        argv = [sys.executable, "-c", BOOTSTRAP, PACKAGE_PARENT, json.dumps(self.worker_config(workdir, child_ends))]
        if self.support is not None:
            argv = sandbox_host.bwrap_command(
                self.support,
                root=self.root,
                workdir=workdir,
                extra_paths=self.extra_paths(),
                argv=argv,
                release_to_come=self.release_to_come,
            )
        try:
            with open(self.log_path, "ab") as log_file:
                # Started from one long-lived thread: bwrap and the zygote die with the *thread* that started them
                # (PR_SET_PDEATHSIG), and the pipeline's structure thread ends with each validation.
                self.zygote = (
                    _spawner()
                    .submit(
                        subprocess.Popen,
                        argv,
                        stdin=subprocess.PIPE,  # the control pipe: {"kill": pid} when a file overruns its time
                        stdout=subprocess.PIPE,
                        stderr=log_file,
                        cwd=workdir,
                        env=self.env,
                        pass_fds=[fd for pair in child_ends for fd in pair],
                        start_new_session=True,  # no terminal signals; the parent decides when it stops
                    )
                    .result()
                )
        finally:
            for pair in child_ends:  # the child's ends: closing ours lets EOF mean what it should
                for fd in pair:
                    os.close(fd)
        _, output = self.zygote_pipes()
        os.set_blocking(output.fileno(), False)
        self.selector.register(output, selectors.EVENT_READ, None)

    def zygote_pipes(self) -> tuple[IO[bytes], IO[bytes]]:
        """The running zygote's control pipe (its stdin) and its messages (its stdout): start() opens both."""
        assert self.zygote is not None and self.zygote.stdin is not None and self.zygote.stdout is not None
        return self.zygote.stdin, self.zygote.stdout

    def worker_config(self, workdir: Path, child_ends: list[tuple[int, int]]) -> dict[str, Any]:
        sandboxed = self.support is not None
        return {
            "root": sandbox_host.RELEASE_MOUNT if sandboxed else str(self.root),
            "memory_limit": self.limits.memory_limit,
            "serialize": self.limits.serialize,
            "workdir": sandbox_host.WORK_MOUNT if sandboxed else str(workdir),
            "slots": child_ends,
            "isolation": "namespaces" if sandboxed else "none",
            "uid": self.uid,
            "writable": ["/tmp/"] if sandboxed else [str(self.home) + "/"],  # noqa: S108 - the sandbox's own
            "private": private_paths(self.root),
            "release_to_come": sandbox_host.RELEASES_MOUNT if self.release_to_come else None,
        }

    def attach(self, root: Path) -> None:
        """The release a sandbox started with `release_to_come` serves, now that it is exported into that folder: the
        zygote binds it, unmounts the other releases and forks its generations. Should the zygote be restarted, it
        is started the usual way, for this release."""
        control, _ = self.zygote_pipes()
        control.write(json.dumps({"attach": root.name}).encode() + b"\n")
        control.flush()
        self.root, self.release_to_come = root, False

    def extra_paths(self) -> list[str]:
        """Airflow's plugins folder: custom timetables and the like that serializing a DAG needs."""
        folder = self.env.get("AIRFLOW__CORE__PLUGINS_FOLDER")
        return [folder] if folder else []

    def stop(self) -> None:
        for slot in self.slots:
            if slot.state == "busy":
                self.kill_generation(slot)
            with contextlib.suppress(OSError):
                if slot.requests is not None:  # None: the sandbox never started
                    slot.requests.close()  # idle generations read EOF and exit; the zygote forks no more and exits
        if self.zygote is not None:
            if self.release_to_come:  # never attached, so no DAG code ran: nothing to wait for (it may be importing)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.zygote.pid, signal.SIGKILL)
            try:
                self.zygote.wait(timeout=5)
            except subprocess.TimeoutExpired:
                # bwrap's process 1 takes every process of the sandbox with it; degraded: the zygote's group.
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.zygote.pid, signal.SIGKILL)
                self.zygote.wait()
            control, output = self.zygote_pipes()
            with contextlib.suppress(OSError):
                control.close()
            self.selector.unregister(output)
            output.close()
            self.zygote = None
        for slot in self.slots:
            if slot.results is not None:
                self.selector.unregister(slot.results)
                os.close(slot.results)
                slot.results = None

    def restart(self) -> None:
        """The zygote died: put the files being loaded back in the queue (each gets two chances), start afresh."""
        for slot in self.slots:
            if slot.state == "busy" and slot.file is not None:
                self.interrupted[slot.file] += 1
                if self.interrupted[slot.file] >= 2:  # it was loading both times: this file kills the sandbox
                    self.outcomes[slot.file] = sandbox_killed_outcome(slot.file)
                else:
                    self.pending.appendleft(slot.file)
            slot.state = "starting"
        if self.zygote is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.zygote.pid, signal.SIGKILL)
        self.stop()
        self.start()

    def kill_generation(self, slot: Slot) -> None:
        """Ask the zygote: inside the sandbox, only it knows the generation's process (pids are its namespace's)."""
        if slot.generation is not None and self.zygote is not None:
            control, _ = self.zygote_pipes()
            with contextlib.suppress(OSError, ValueError):
                control.write(json.dumps({"kill": slot.generation}).encode() + b"\n")
                control.flush()
            slot.generation = None

    def tail(self, slot: Slot | None = None) -> str:
        """The end of a slot's log (what its generation printed while loading its last file), or the zygote's."""
        path = self.home / "work" / f"slot-{slot.index}.log" if slot is not None else self.log_path
        try:
            with open(path, "rb") as log_file:
                log_file.seek(0, os.SEEK_END)
                log_file.seek(max(0, log_file.tell() - LOG_TAIL_BYTES))
                return log_file.read().decode(errors="replace")
        except OSError:
            return ""

    # -- the loop -----------------------------------------------------------------------------------------------

    def alive(self) -> bool:
        return self.zygote is not None and self.zygote.poll() is None

    def refresh(self) -> None:
        """Before serving another validation: every generation is replaced by a fresh fork of the zygote (which
        never ran DAG code), so nothing one run's files did to their process can touch the next run."""
        deadline = time.monotonic() + GENERATION_TIMEOUT
        for slot in self.slots:
            self.kill_generation(slot)
            slot.expect_generation(deadline)

    def load(self, files: list[str], *, listed: bool = False) -> dict[str, dict[str, Any]]:
        self.listed = listed
        self.outcomes = {}
        self.interrupted.clear()
        self.pending = deque(files)
        while len(self.outcomes) < len(files):
            for slot in self.slots:
                if slot.state == "idle" and self.pending:
                    self.assign(slot, self.pending.popleft())
            deadlines = [slot.deadline for slot in self.slots if slot.state in ("starting", "busy")]
            wait = min(deadlines, default=time.monotonic() + 1.0) - time.monotonic()
            for key, _ in self.selector.select(timeout=max(0.0, wait)):
                if key.data is None:
                    self.read_zygote()
                else:
                    self.read_slot(key.data)
            self.enforce_deadlines()
        return self.outcomes

    def assign(self, slot: Slot, relative: str) -> None:
        assert slot.requests is not None  # start() opened every slot's pipes
        request = {"file": relative, "listed": True} if self.listed else {"file": relative}
        slot.requests.write(json.dumps(request).encode() + b"\n")
        slot.requests.flush()
        slot.state, slot.file = "busy", relative
        slot.deadline = time.monotonic() + self.limits.kill_after

    def read_zygote(self) -> None:
        try:
            data = os.read(self.zygote_pipes()[1].fileno(), 1 << 16)
        except BlockingIOError:
            return
        for line in data.splitlines():
            message = json.loads(line) if line.strip() else {}
            if message.get("event") == "fatal" and message.get("attach"):
                log.warning("The sandbox started ahead cannot show its release (%s); restarting", message.get("error"))
                self.restart()
                return
            if message.get("event") == "fatal":
                raise SandboxUnavailable(f"The structure sandbox cannot start: {message.get('error')}")
        if not data:
            if self.starts == 1 and all(slot.generation is None and slot.state == "starting" for slot in self.slots):
                slot_logs = "\n".join(self.tail(slot)[-1000:] for slot in self.slots)
                raise SandboxUnavailable(
                    f"The structure sandbox exited while starting: {self.tail()[-2000:]}\n{slot_logs}".rstrip()
                )
            self.restart()

    def read_slot(self, slot: Slot) -> None:
        assert slot.results is not None  # registered with the selector by start() until stop() closes it
        try:
            data = os.read(slot.results, 1 << 16)
        except BlockingIOError:
            return
        slot.buffer += data
        *lines, slot.buffer = slot.buffer.split(b"\n")
        for line in lines:
            if not line.strip():
                continue
            try:
                message = json.loads(line)
            except ValueError:  # only user code can garble the channel (it runs in the same process)
                message = {"event": "garbled"}
            self.handle(slot, message)

    def handle(self, slot: Slot, message: dict[str, Any]) -> None:
        event, now = message.get("event"), time.monotonic()
        file = slot.file if slot.state == "busy" else None  # a busy slot always has its file
        if event == "ready":
            slot.generation = int(message["pid"])
            # Ready while busy: the request went to a generation that had just died, and this new one will read it.
            if slot.state != "busy":
                slot.state = "idle"
        elif event == "result" and file is not None and message.get("file") == file:
            self.outcomes[file] = message
            if message.get("retire"):
                slot.expect_generation(now + GENERATION_TIMEOUT)
            else:
                slot.state, slot.file = "idle", None
        elif event == "garbled" and file is not None:
            problem = {
                "rule": "import-crash",
                "message": "The file's code corrupted the sandbox's answer.",
                "line": None,
            }
            self.outcomes[file] = {
                "file": file,
                "status": "loaded",
                "problems": [{**problem, "file": file}],
            }
            self.kill_generation(slot)
            slot.expect_generation(now + GENERATION_TIMEOUT)
        elif event == "exited" and message.get("pid") == slot.generation:
            if file is not None:
                self.outcomes[file] = death_outcome(file, message, self.tail(slot))
            slot.expect_generation(now + GENERATION_TIMEOUT)

    def enforce_deadlines(self) -> None:
        now = time.monotonic()
        for slot in self.slots:
            if slot.state == "busy" and slot.file is not None and now >= slot.deadline:
                log.info("Killing the sandbox process loading %s after %.1f s", slot.file, self.limits.kill_after)
                self.outcomes[slot.file] = timeout_outcome(slot.file, self.limits.timeout)
                self.kill_generation(slot)
                slot.expect_generation(now + GENERATION_TIMEOUT)
            elif slot.state == "starting" and now >= slot.deadline:
                self.restart()
                return
