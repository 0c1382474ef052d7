"""The code that runs inside the structure step's sandbox (started by `structure.py`, see its BOOTSTRAP).

Process layout for one `check_structure` call:

    validator (parent) ──one request pipe + one result pipe per slot──┐
        └── zygote: imports Airflow once, then only forks             │
              ├── generation for slot 0 ─── loads DAG files ──────────┤
              └── generation for slot 1 ─── loads DAG files ──────────┘

* The **zygote** imports Airflow (1-2 s), installs the placeholders for Variables and Connections, blocks the ORM
  (no metadata DB, as in Airflow 3's dag-processor; see `block_metadata_db`), lists the files
  Airflow would consider (`.airflowignore`, safe mode) and forks one generation per slot. It never runs user code,
  so it never needs replacing, and the slots share one Airflow import (CPU and memory the other checks can use).
* A **generation** answers its slot's requests one file at a time: it loads the file with Airflow's own
  `DagBag.process_file` and sends back what it found. It runs in its own process group, so the parent can kill it
  (and whatever it started) when a file overruns its timeout. It retires after a file that left it in a doubtful
  state (timeout, memory error, exit) or once its address space has grown by `memory_limit`. Whenever a generation
  ends, the zygote reports how on the slot's result pipe and forks the next one in ~20 ms, unless the parent has
  closed the slot's request pipe (that is how the parent shuts the sandbox down).

Messages to the parent, one JSON object per line:
  on a slot's result pipe:
    {"event": "ready", "pid": N}                        a generation is waiting for a file
    {"event": "result", "file": ..., ...}               what one file produced (see `Loader.load`)
    {"event": "exited", "pid": N, "exitcode"|"signal"}  a generation ended (written by the zygote)
  on the zygote's stdout:
    {"event": "fatal", "error": ...}                    the zygote cannot start (e.g. Airflow fails to import)
    {"event": "fatal", "error": ..., "attach": true}    it cannot show the release it was named alone
Requests on a slot's request pipe: {"file": "relative/path.py"}, with "listed": true when the parent chose it by
Airflow's listing itself. On the zygote's stdin: {"kill": pid}, and for a
zygote started before its release existed, first {"attach": NAME} (see `Zygote`).

Only the standard library is imported at module level: Airflow is imported by `main()`, inside the sandbox.

Size: one module on purpose. It is the code that runs inside the sandbox: the bootstrap imports it by
path before anything else, so every module it pulls in is start-up time paid by each zygote and code the DAG
files could reach. Only what also runs outside the sandbox is split off (sandbox_isolation.py, sandbox_audit.py).
"""

from __future__ import annotations

import ast
import contextlib
import ctypes
import fcntl
import gc
import importlib
import json
import logging
import os
import resource
import select
import signal
import struct
import sys
import tempfile
import termios
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from airflow_dagops.validate.files import parse_view  # light: os, re and the report types
from airflow_dagops.validate.sandbox_audit import (
    SANDBOX_REFUSAL,
    Auditor,
    AuditState,
    SandboxViolation,
    trusted_prefixes,
)
from airflow_dagops.validate.sandbox_isolation import SCRATCH_MOUNT, kill_everything_else, show_only_release

PLACEHOLDER = "placeholder"
# Messages and tracebacks are shown to people; a DAG that raises with a 10 MB message must not flood the report.
MAX_MESSAGE_CHARS = 2000
MAX_TRACEBACK_FRAMES = 12
# A generation's stderr (Airflow's logs, the DAG's prints) goes to a log file that is truncated before each file;
# this bounds what a chatty DAG can write to it (writes beyond fail with EFBIG instead of filling the disk).
LOG_FILE_LIMIT = 64 * 2**20
# A generation that fails in our own code exits with this; a few in a row mean the sandbox is broken, not a DAG.
GENERATION_FAILED = 117
MAX_FAILED_GENERATIONS = 3
IMPORTER_LOGGER = "airflow.dag_processing.importers.python_importer"


# ---------------------------------------------------------------------------------------------------------------
# The protocol channel
# ---------------------------------------------------------------------------------------------------------------


class Channel:
    """Writes whole JSON lines to the parent on one pipe."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    @classmethod
    def from_stdout(cls) -> Channel:
        """A private copy of the original stdout; fd 1 itself is pointed at stderr, so anything that prints cannot
        corrupt the protocol. `os.dup` makes the copy non-inheritable: subprocesses do not get it."""
        channel = cls(os.dup(1))
        os.dup2(2, 1)
        sys.stdout = sys.stderr
        return channel

    def send(self, message: dict[str, Any]) -> None:
        data = (json.dumps(message, default=str) + "\n").encode()
        view = memoryview(data)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


# ---------------------------------------------------------------------------------------------------------------
# Where user code is: frames in files under the release root
# ---------------------------------------------------------------------------------------------------------------


class UserFrames:
    """Tells frames of the release's own files from Airflow's and libraries', and names them relative to root."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._relative: dict[str, str | None] = {}

    def relative(self, filename: str) -> str | None:
        if filename not in self._relative:
            real = os.path.realpath(filename) if filename and not filename.startswith("<") else ""
            inside = real.startswith(self.root + os.sep)
            self._relative[filename] = os.path.relpath(real, self.root).replace(os.sep, "/") if inside else None
        return self._relative[filename]

    def caller(self, current_file: str | None) -> tuple[str | None, int | None, int | None]:
        """Where user code called us: the innermost user frame (file, line), and the innermost line of the file
        being loaded (the line to report: findings belong to the loaded file, even when a helper module did it)."""
        site: tuple[str | None, int | None] = (None, None)
        frame: FrameType | None = sys._getframe(1)
        while frame is not None:
            relative = self.relative(frame.f_code.co_filename)
            if relative is not None and site[0] is None:
                site = (relative, frame.f_lineno)
            if relative is not None and relative == current_file:
                return site[0], site[1], frame.f_lineno
            frame = frame.f_back
        return site[0], site[1], None

    def trimmed_traceback(self, exc: BaseException, current_file: str) -> tuple[list[str], int | None]:
        """The traceback's user frames (formatted), and the innermost line of the file being loaded."""
        lines: list[str] = []
        own_line: int | None = None
        for summary in traceback.extract_tb(exc.__traceback__):
            relative = self.relative(summary.filename)
            if relative is None:
                continue
            if relative == current_file:
                own_line = summary.lineno
            lines.append(f'  File "{relative}", line {summary.lineno}, in {summary.name}')
            if summary.line:
                lines.append(f"    {summary.line.strip()}")
        if isinstance(exc, SyntaxError) and exc.filename and self.relative(exc.filename):
            # A syntax error in a user module has no frame of its own: its location is on the exception.
            if self.relative(exc.filename) == current_file:
                own_line = exc.lineno
            lines.append(f'  File "{self.relative(exc.filename)}", line {exc.lineno}')
        return lines[-2 * MAX_TRACEBACK_FRAMES :], own_line


# ---------------------------------------------------------------------------------------------------------------
# What happened during one file's import: placeholders, DAG definitions, exceptions Airflow caught
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class DagSite:
    line: int | None
    schedule_explicit: bool


@dataclass
class Capture:
    """Everything the instrumentation records while one file is processed (reset before each file)."""

    current_file: str | None = None  # relative path of the file being loaded
    variable_reads: list[dict[str, Any]] = field(default_factory=list)
    dag_sites: dict[int, tuple[Any, DagSite]] = field(default_factory=dict)
    exceptions: list[BaseException] = field(default_factory=list)  # the file's import failed with these
    bag_failures: list[tuple[Any, BaseException]] = field(default_factory=list)  # (dag, why Airflow refused it)

    def reset(self) -> None:
        self.variable_reads.clear()
        self.dag_sites.clear()
        self.exceptions.clear()
        self.bag_failures.clear()


class ExceptionCapture(logging.Handler):
    """Keeps the exception objects Airflow logs while it swallows them.

    `DagBag.process_file` catches every import failure (even SystemExit and MemoryError) and keeps only a string;
    it logs the exception with `log.exception` first, and that record carries the live exception object with its
    traceback, which is what the step needs to classify it and trim the traceback to the user's frames.
    """

    def __init__(self, capture: Capture) -> None:
        super().__init__(level=logging.ERROR)
        self.capture = capture

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            if all(seen is not exc for seen in self.capture.exceptions):
                self.capture.exceptions.append(exc)


def install_instrumentation(capture: Capture, frames: UserFrames) -> None:
    """Answer Variables and Connections with placeholders (as Astronomer's parse test does) and record DAG sites."""
    from airflow.models.connection import Connection as CoreConnection
    from airflow.models.variable import Variable as CoreVariable
    from airflow.sdk import DAG
    from airflow.sdk.definitions._internal.types import NOTSET
    from airflow.sdk.definitions.connection import Connection
    from airflow.sdk.definitions.variable import Variable

    def record_variable(key: str) -> None:
        site_file, site_line, line = frames.caller(capture.current_file)
        capture.variable_reads.append({"key": str(key), "line": line, "site_file": site_file, "site_line": site_line})

    def placeholder_value(default: Any, has_default: bool, deserialize_json: bool) -> Any:
        if has_default:
            return default
        return {} if deserialize_json else PLACEHOLDER

    def sdk_variable_get(cls, key, default=NOTSET, deserialize_json=False):
        record_variable(key)
        return placeholder_value(default, default is not NOTSET, deserialize_json)

    core_no_default = object()

    def core_variable_get(cls, key, default_var=core_no_default, deserialize_json=False, team_name=None):
        record_variable(key)
        return placeholder_value(default_var, default_var is not core_no_default, deserialize_json)

    def sdk_connection_get(cls, conn_id):
        return Connection(conn_id=conn_id, conn_type=PLACEHOLDER)

    def core_connection_get(cls, conn_id, team_name=None):
        return CoreConnection(conn_id=conn_id, conn_type=PLACEHOLDER)

    # BaseHook.get_connection (SDK) goes through Connection.get, so patching the classmethods covers hooks too.
    # Monkeypatching is the point (the sandbox answers instead of a metadata DB); mypy forbids replacing methods.
    Variable.get = classmethod(sdk_variable_get)  # type: ignore[method-assign, assignment]
    CoreVariable.get = classmethod(core_variable_get)  # type: ignore[method-assign, assignment]
    Connection.get = classmethod(sdk_connection_get)  # type: ignore[method-assign, assignment]
    CoreConnection.get_connection_from_secrets = classmethod(core_connection_get)  # type: ignore[method-assign, assignment]

    original_init = DAG.__init__

    def recording_init(self, *args, **kwargs):
        # Where the DAG is defined, and whether `schedule=` was passed (the object cannot tell: the default is None).
        original_init(self, *args, **kwargs)
        line = definition_line(frames, capture.current_file)
        capture.dag_sites[id(self)] = (self, DagSite(line, "schedule" in kwargs))

    # keeps inspect.signature(DAG) truthful; mypy does not model attributes set on functions
    recording_init.__wrapped__ = original_init  # type: ignore[attr-defined]
    DAG.__init__ = recording_init  # type: ignore[method-assign]  # records where each DAG is defined

    logger = logging.getLogger(IMPORTER_LOGGER)
    logger.disabled = False
    logger.addHandler(ExceptionCapture(capture))


def definition_line(frames: UserFrames, current_file: str | None) -> int | None:
    """The line of the loaded file that defines the DAG being built: the `@dag` decorator of a decorated function,
    else the innermost frame of that file (a `with DAG(...)`, or the call of a factory from a helper module)."""
    frame: FrameType | None = sys._getframe(2)
    while frame is not None and current_file is not None:
        if frames.relative(frame.f_code.co_filename) == current_file:
            return frame.f_lineno
        user_function = frame.f_locals.get("f") if frame.f_code.co_name == "factory" else None
        code = getattr(user_function, "__code__", None)
        if code is not None and frames.relative(code.co_filename) == current_file:
            return code.co_firstlineno  # the line of the first decorator of the @dag function
        frame = frame.f_back
    return None


# ---------------------------------------------------------------------------------------------------------------
# Loading one file
# ---------------------------------------------------------------------------------------------------------------


def exception_rule(exc: BaseException) -> str:
    from airflow.sdk.exceptions import AirflowDagCycleException, AirflowTaskTimeout

    if isinstance(exc, SystemExit):
        return "import-exit"
    if isinstance(exc, MemoryError):
        return "import-memory-limit"
    if isinstance(exc, AirflowTaskTimeout):
        return "import-timeout"
    if isinstance(exc, AirflowDagCycleException):
        return "dag-cycle"
    return "import-error"


def describe_exception(exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc, SystemExit):
        text = f"exit code {exc.code!r}"
    first = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return first[:MAX_MESSAGE_CHARS]


def describe_schedule(schedule: Any) -> str | None:
    if schedule is None:
        return None
    if isinstance(schedule, str):
        return schedule
    assets = schedule if isinstance(schedule, (list, tuple, set, frozenset)) else [schedule]
    if all(type(item).__name__ in ("Asset", "AssetAlias", "AssetRef", "Dataset") for item in assets):
        return "assets: " + ", ".join(str(getattr(item, "name", item)) for item in assets)
    return repr(schedule)[:200]


def dag_definitions(source: bytes) -> tuple[bool, list[str]]:
    """Whether the source builds DAGs (`DAG(...)`, `@dag`), and which @dag functions it never calls."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return b"DAG(" in source or b"@dag" in source, []

    def name_of(node: ast.AST) -> str | None:
        node = node.func if isinstance(node, ast.Call) else node
        if isinstance(node, ast.Name):
            return node.id
        return node.attr if isinstance(node, ast.Attribute) else None

    builds_dag = False
    decorated: list[str] = []
    called: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            builds_dag = builds_dag or name_of(node) == "DAG"
            if isinstance(node.func, ast.Name):
                called.add(node.func.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if any(name_of(decorator) == "dag" for decorator in node.decorator_list):
                builds_dag = True
                decorated.append(node.name)
    return builds_dag, [name for name in decorated if name not in called]


def recording_dagbag_class(capture: Capture) -> type:
    """Airflow's DagBag, remembering which DAG `bag_dag` refused and why (it keeps only a string per file)."""
    from airflow.dag_processing.dagbag import DagBag

    class RecordingDagBag(DagBag):
        def bag_dag(self, dag: Any) -> None:
            try:
                super().bag_dag(dag)
            except Exception as exc:
                capture.bag_failures.append((dag, exc))
                raise

    return RecordingDagBag


class Loader:
    """Loads one file with Airflow's DagBag and reports what it found, as plain data."""

    def __init__(self, config: dict[str, Any]) -> None:
        from airflow.configuration import conf
        from airflow.dag_processing.importers import get_importer_registry  # noqa: F401 - imported once, here
        from airflow.serialization.serialized_objects import DagSerialization

        self.root = os.path.realpath(config["root"])
        self.safe_mode = conf.getboolean("core", "DAG_DISCOVERY_SAFE_MODE")
        self.timeout = conf.getfloat("core", "dagbag_import_timeout")
        self.memory_limit = int(config["memory_limit"] or 0)
        self.frames = UserFrames(self.root)
        self.capture = Capture()
        install_instrumentation(self.capture, self.frames)
        # The release root is importable, as the bundle path is in production (BundleDagBag appends it too).
        if self.root not in sys.path:
            sys.path.append(self.root)
        # Production serializes every DAG it parses, and a DAG that cannot be serialized is an import error there
        # (an unregistered custom timetable, a param that is not JSON). `serialize_dag` is that step without the
        # JSON-schema validation of the result, which only catches Airflow's own bugs and costs as much again.
        self.serialize = DagSerialization.serialize_dag if config.get("serialize", True) else None
        self.bag = recording_dagbag_class(self.capture)(
            dag_folder=self.root, bundle_path=Path(self.root), collect_dags=False, load_op_links=False
        )
        self._considered: set[str] | None = None  # computed by each generation, see `considered`
        block_metadata_db()
        self.audit = AuditState(writable=tuple(config.get("writable", ())), private=tuple(config.get("private", ())))
        self.namespaces = False

    def considered(self) -> set[str]:
        """The files Airflow itself would parse: `.airflowignore` and the safe-mode heuristic, with Airflow's own
        code, less dbt models and vendored packages: `files.parse_view`, the pipeline's listing too. Listed once per
        generation, not in the zygote: a warm sandbox serves several validations of one folder, and an edit may
        change which files Airflow parses."""
        if self._considered is None:
            self._considered = parse_view(self.root).dag_files
        return self._considered

    def arm(self, *, namespaces: bool) -> None:
        """In a generation, before any DAG code: the audit hook (permanent for this process, by design)."""
        self.namespaces = namespaces
        scratch = os.getcwd().rstrip("/") + "/"
        self.audit.writable = (*self.audit.writable, scratch, tempfile.gettempdir().rstrip("/") + "/")
        Auditor(self.audit, self.frames.relative, trusted_prefixes()).install()

    def load(self, relative: str, *, listed: bool = False) -> dict[str, Any]:
        """`listed`: the parent chose the file with the same listing (`files.parse_view`) from the folder as it is
        now, so it is not listed again here (a tenth of a second on 500 files: most of a 1-file revalidation)."""
        result: dict[str, Any] = {"file": relative, "status": "ignored"}
        if not listed and relative not in self.considered():
            return result
        path = os.path.join(self.root, relative)
        self.capture.reset()
        self.capture.current_file = relative
        self.bag.import_errors.clear()
        self.bag.dags.clear()
        modules_before, threads_before = set(sys.modules), threading.active_count()
        start = time.perf_counter()
        escaped: BaseException | None = None
        self.audit.seen.clear()
        self.audit.current_file = relative
        try:
            with address_space_limit(self.memory_limit), cpu_time_limit(self.timeout):
                found = self.bag.process_file(path, only_if_updated=False, safe_mode=self.safe_mode)
        except BaseException as exc:  # noqa: BLE001 - user code may raise anything, KeyboardInterrupt included
            escaped, found = exc, []
        seconds = time.perf_counter() - start
        try:
            problems = self.problems(relative, escaped)
            dags = self.describe_dags(relative, found, problems)  # serializing may run DAG code too
        finally:
            self.audit.current_file = None
        problems += self.behaviour_problems(relative)
        left = self.end_leftover_processes(relative, problems)
        result.update(status="loaded", seconds=round(seconds, 6), dags=dags, problems=problems)
        result["variable_reads"] = list(self.capture.variable_reads)
        # A generation in a doubtful state, or with threads the file started still running (they could disturb or
        # even end the next file's load), retires; the zygote forks a fresh one in milliseconds.
        doubtful = any(p["rule"] in ("import-timeout", "import-memory-limit", "import-exit") for p in problems)
        result["retire"] = doubtful or left or threading.active_count() > threads_before
        if not dags and not problems:
            result["builds_dag"], result["uncalled_dag_functions"] = dag_definitions(_read(path))
        self.forget(path, modules_before)
        return result

    def behaviour_problems(self, relative: str) -> list[dict[str, Any]]:
        return [
            {"rule": seen.rule, "message": seen.message, "file": relative, "line": seen.line}
            for seen in self.audit.seen
        ]

    def end_leftover_processes(self, relative: str, problems: list[dict[str, Any]]) -> bool:
        """Kill what the file started and left running (before the answer is sent: nothing of it outlives the
        file). Only possible as process 1 of the generation's own PID namespace; in degraded mode the parent
        kills the generation's process group on timeout, and a process that left the group escapes."""
        if not self.namespaces:
            return False
        killed = kill_everything_else()
        if killed:
            message = f"{killed} process(es) started by the file were still running after it loaded; they were killed."
            problems.append({"rule": "sandbox-process-left", "message": message, "file": relative, "line": None})
        return bool(killed)

    def problems(self, relative: str, escaped: BaseException | None) -> list[dict[str, Any]]:
        problems = []
        failures = [(None, exc) for exc in self.capture.exceptions] + list(self.capture.bag_failures)
        if escaped is not None:
            failures.append((None, escaped))
        for dag, exc in failures:
            if refused_by_sandbox(exc) and self.audit.seen:
                continue  # the attempt is already a finding of its own; the refusal's traceback adds nothing
            rule = exception_rule(exc)
            user_frames, line = self.frames.trimmed_traceback(exc, relative)
            if dag is not None:
                line = self.site(dag).line
            message = describe_exception(exc)
            if rule == "import-timeout":  # Airflow's own text names an absolute path and a PID
                message = f"The file did not finish loading within {self.timeout:g} s (dagbag_import_timeout)."
            if user_frames:
                message += "\nTraceback (user code only):\n" + "\n".join(user_frames)
            problems.append({"rule": rule, "message": message, "file": relative, "line": line})
        if not problems:
            # Errors Airflow recorded without our seeing the exception (DAG validation, executor checks): its text.
            for text in self.bag.import_errors.values():
                if SANDBOX_REFUSAL in text and self.audit.seen:
                    continue
                last = text.strip().splitlines()[-1] if text.strip() else "unknown error"
                rule = "dag-cycle" if last.startswith("AirflowDagCycleException") else "import-error"
                problems.append({"rule": rule, "message": last[:MAX_MESSAGE_CHARS], "file": relative, "line": None})
        return problems

    def describe_dags(self, relative: str, found: list[Any], problems: list[dict[str, Any]]) -> list[dict[str, Any]]:
        described = []
        for dag in unique_dags(found):
            try:
                if self.serialize is not None:
                    self.serialize(dag)
            except Exception as exc:  # production serializes every DAG; a failure there is an import error too
                problems.append(
                    {
                        "rule": "import-error",
                        "message": f"DAG {dag.dag_id!r} cannot be serialized: {describe_exception(exc)}",
                        "file": relative,
                        "line": self.site(dag).line,
                    }
                )
                continue
            described.append(self.describe_dag(relative, dag))
        return described

    def site(self, dag: Any) -> DagSite:
        entry = self.capture.dag_sites.get(id(dag))
        if entry is not None and entry[0] is dag:
            return entry[1]
        return DagSite(line=None, schedule_explicit=dag.schedule is not None)

    def describe_dag(self, relative: str, dag: Any) -> dict[str, Any]:
        tasks = list(dag.tasks)
        # Effective retries: each task's own value already reflects default_args and [core] default_task_retries.
        task_retries = [task.retries for task in tasks if isinstance(task.retries, int)]
        default_retries = (dag.default_args or {}).get("retries")
        if not isinstance(default_retries, int):
            default_retries = None
        site = self.site(dag)
        return {
            "dag_id": dag.dag_id,
            "file": relative,
            "owners": sorted({str(task.owner) for task in tasks if task.owner}),
            "tags": sorted(str(tag) for tag in (dag.tags or ())),
            "retries": min(task_retries) if task_retries else default_retries,
            "schedule": describe_schedule(dag.schedule),
            "schedule_explicit": site.schedule_explicit or dag.schedule is not None,
            "task_count": len(tasks),
            "line": site.line,
            "task_ids": sorted(str(task.task_id) for task in tasks),
        }

    def forget(self, path: str, modules_before: set[str]) -> None:
        """Drop what the file imported from the release (its own module, helper modules) and its DAGs.

        Production parses every file in a fresh process, so each DAG file pays for (and may fail on) its helper
        modules itself; dropping them keeps that true here, and keeps one file's helper state out of the next.
        Third-party libraries stay imported: their first import is charged to the first file that needs them.
        """
        for name in sys.modules.keys() - modules_before:
            filename = getattr(sys.modules.get(name), "__file__", None) or ""
            if self.frames.relative(filename) is not None:
                sys.modules.pop(name, None)
        self.bag.dags.clear()
        self.capture.reset()


def block_metadata_db() -> None:
    """No metadata DB for DAG code, exactly as in production (in the zygote, so in every generation).

    Airflow 3's dag-processor parses each file in a process that calls the Task SDK's `block_orm_access` first:
    the ORM is switched off, and DAG code that reaches for the DB fails there. Doing the same here keeps the
    answer faithful (a file that needs the DB at import time fails, as it will in production) and the same on
    every run: there is no scratch database whose state one import could leave for the next, in this validation
    or in a later one served by the same warm sandbox, and no database path in any message.
    """
    try:
        from airflow.sdk.execution_time.supervisor import block_orm_access
    except ImportError:  # an Airflow without it: DAG code then meets an empty, unmigrated database
        return
    block_orm_access()
    # It also exports a fake DB URL for subprocesses. The sandbox's environment carries no AIRFLOW__DATABASE__*
    # setting at all (nothing a DAG could mistake for, or learn from, a database setting), and keeps it that way.
    for name in ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CORE__SQL_ALCHEMY_CONN"):
        os.environ.pop(name, None)


def unique_dags(found: list[Any]) -> list[Any]:
    """Each DAG object once, in the order Airflow found it.

    Airflow collects a file's DAGs in a set of (dag, module) built from the module's globals and the DAGs that
    `with DAG(...)` registered. A DAG's hash covers its task ids, and the registered entry keeps the hash of the
    moment the `with` block ended: tasks attached afterwards (`dag=dag`, very common) make the same object appear
    twice, and `process_file` returns it twice. One object is one DAG: only two *different* objects with one dag_id
    are a duplicate (Airflow then keeps the last one and silently drops the other).
    """
    seen: set[int] = set()
    unique = []
    for dag in found:
        if id(dag) not in seen:
            seen.add(id(dag))
            unique.append(dag)
    return unique


def refused_by_sandbox(exc: BaseException | None) -> bool:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, SandboxViolation) or SANDBOX_REFUSAL in str(exc):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return b""


# ---------------------------------------------------------------------------------------------------------------
# Limits
# ---------------------------------------------------------------------------------------------------------------


def address_space() -> int | None:
    """This process's virtual memory size in bytes (Linux), or None where /proc is not available."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


@contextlib.contextmanager
def address_space_limit(memory_limit: int) -> Iterator[None]:
    """RLIMIT_AS = what the process already maps + memory_limit, for the duration of one file.

    The limit is relative because importing Airflow alone maps hundreds of MiB of address space (shared libraries,
    arenas): an absolute 1 GiB would leave a DAG little or nothing. So each file gets `memory_limit` bytes of *new*
    address space. An allocation beyond it fails at once with MemoryError (nothing is touched, so a `bytearray(10 GiB)`
    costs no real memory). Only the soft limit is set (and lifted after the file): it guards against runaway DAGs,
    not against code that deliberately raises its own limit; that code runs in production anyway.
    """
    current = address_space() if memory_limit > 0 else None
    if current is None:
        yield
        return
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    soft = current + memory_limit
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (hard, hard))


@contextlib.contextmanager
def cpu_time_limit(timeout: float) -> Iterator[None]:
    """RLIMIT_CPU (soft) = CPU time used so far + a budget for this file: a backstop for code that spins in C with
    signals blocked. Twice the wall-clock timeout plus a margin, so the timeout (a clearer finding) comes first."""
    budget = int(max(timeout, 1.0) * 2 + 10)
    try:
        _, hard = resource.getrlimit(resource.RLIMIT_CPU)
        used = resource.getrusage(resource.RUSAGE_SELF)
        soft = int(used.ru_utime + used.ru_stime) + budget
        if hard != resource.RLIM_INFINITY:
            soft = min(soft, hard)
        resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
    except (ValueError, OSError):
        yield
        return
    try:
        yield
    finally:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_CPU, (hard, hard))


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies, so a killed validator leaves no orphans behind."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)


def limit_log_growth() -> None:
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_FSIZE, (LOG_FILE_LIMIT, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def truncate_log() -> None:
    with contextlib.suppress(OSError):
        os.ftruncate(2, 0)


# ---------------------------------------------------------------------------------------------------------------
# Zygote and generations
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class SlotPipes:
    """One worker slot: the pipe its generation reads requests from, and the one it answers on."""

    index: int
    requests: int
    results: int


@dataclass
class Isolation:
    """How generations are isolated: "namespaces" inside bwrap (see sandbox_isolation.py), or "none" (degraded)."""

    mode: str = "none"
    uid: int | None = None  # the unprivileged uid generations become (when the zygote is real root)
    workdir: str = ""

    @property
    def namespaces(self) -> bool:
        return self.mode == "namespaces"


def requests_closed(fd: int) -> bool:
    """True when the parent closed a request pipe (readable, nothing to read), without consuming any request."""
    readable, _, _ = select.select([fd], [], [], 0)
    if not readable:
        return False
    pending = struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]
    return pending == 0


def describe_status(status: int) -> dict[str, Any]:
    if os.WIFSIGNALED(status):
        return {"signal": os.WTERMSIG(status)}
    return {"exitcode": os.waitstatus_to_exitcode(status)}


def isolate_generation(slot: SlotPipes, slots: list[SlotPipes], zygote_channel: Channel, workdir: str) -> None:
    """Make a fresh fork a generation: own process group, log, and only its own slot's pipes."""
    os.setpgid(0, 0)  # the zygote kills the group on timeout, subprocesses included
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    for other in slots:
        if other is not slot:
            with contextlib.suppress(OSError):
                os.close(other.requests)
                os.close(other.results)
    zygote_channel.close()
    with contextlib.suppress(OSError):
        os.close(0)  # the zygote's control pipe: never for DAG code
    # stdout and stderr (Airflow's logs, the DAG's prints) go to the slot's own log, truncated before each file:
    # its tail tells the parent why a generation died (MemoryError, std::bad_alloc, ...).
    log_fd = os.open(os.path.join(workdir, f"slot-{slot.index}.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)


def enter_namespaces(isolation: Isolation) -> None:
    """Three processes make one generation in the sandbox; only the last one returns from here and loads files.

    * the first stays in the sandbox's PID namespace (the zygote knows and kills it by its pid), creates new PID
      and mount namespaces for its children, and ends the way the generation ended;
    * the second is process 1 of those namespaces: it mounts their /proc and /tmp, gives up every privilege and
      only reaps. When it ends, the kernel kills everything left in its namespace;
    * the third loads DAG files. It is not process 1 on purpose: the kernel ignores signals that process 1 sends
      itself, so `os.abort()` or `os.kill(os.getpid(), ...)` in a DAG would hang instead of ending it.
    """
    from airflow_dagops.validate import sandbox_isolation  # lazy: zygote only

    sandbox_isolation.new_pid_and_mount_namespace()
    alive_read, alive_write = os.pipe()
    status_read, status_write = os.pipe()
    init = os.fork()
    if init == 0:
        os.close(alive_write)
        os.close(status_read)
        sandbox_isolation.private_proc_and_tmp()
        sandbox_isolation.set_process_limits()
        sandbox_isolation.drop_privileges(isolation.uid)
        sandbox_isolation.die_with(alive_read)
        loader = os.fork()
        if loader == 0:
            os.close(status_write)
            return
        os._exit(reap_until(loader, status_write))
    os.close(alive_read)
    os.close(status_write)
    _, init_status = os.waitpid(init, 0)
    status = os.read(status_read, 64)
    exit_like(int(status) if status.strip() else init_status)  # no status: process 1 itself was killed


def reap_until(loader: int, status_write: int) -> int:
    """Process 1's loop: reap every orphan re-parented to it; when the loader ends, pass its status on."""
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            return GENERATION_FAILED
        if pid == loader:
            os.write(status_write, str(status).encode())
            return 0


def exit_like(status: int) -> None:
    """End this process as a child that ended with wait status `status` did (same signal, same exit code)."""
    if os.WIFSIGNALED(status):
        signal.signal(os.WTERMSIG(status), signal.SIG_DFL)
        os.kill(os.getpid(), os.WTERMSIG(status))
    os._exit(os.waitstatus_to_exitcode(status) & 0xFF)


def enter_scratch_folder(isolation: Isolation) -> None:
    """The working directory: the generation's private /tmp in the sandbox, a folder of its own otherwise."""
    cwd = SCRATCH_MOUNT if isolation.namespaces else os.path.join(isolation.workdir, f"generation-{os.getpid()}")
    os.makedirs(cwd, exist_ok=True)
    os.chdir(cwd)
    os.environ["PWD"] = cwd
    if isolation.namespaces:
        os.environ["TMPDIR"] = cwd


def run_generation(slot: SlotPipes, loader: Loader, generation_id: int) -> int:
    """Answer the slot's file requests until its request pipe closes or this generation should retire."""
    channel = Channel(slot.results)
    requests = os.fdopen(slot.requests, "rb")
    baseline = address_space()
    channel.send({"event": "ready", "pid": generation_id})
    while True:
        line = requests.readline()
        if not line:
            return 0
        truncate_log()
        request = json.loads(line)
        relative = request["file"]
        try:
            result = loader.load(relative, listed=request.get("listed") is True)
        except Exception as exc:  # an object the step cannot describe (or a bug here): report it, start afresh
            traceback.print_exc()
            message = f"The structure check could not inspect this file: {describe_exception(exc)}"
            problem = {"rule": "import-error", "message": message, "file": relative, "line": None}
            result = {"file": relative, "status": "loaded", "problems": [problem], "retire": True}
        if baseline is not None and loader.memory_limit > 0 and (address_space() or 0) > baseline + loader.memory_limit:
            result["retire"] = True
        channel.send({"event": "result", **result})
        if result.get("retire"):
            return 0


def fork_generation(
    slot: SlotPipes, slots: list[SlotPipes], loader: Loader, channel: Channel, isolation: Isolation, zygote_fds=()
) -> int:
    pid = os.fork()
    if pid:
        return pid
    code = GENERATION_FAILED
    try:
        signal.set_wakeup_fd(-1)  # the zygote's wake-up pipe and SIGCHLD handler are not the generation's
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for fd in zygote_fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        generation_id = os.getpid()  # as the zygote knows it: what "ready" names and what "kill" asks for
        isolate_generation(slot, slots, channel, isolation.workdir)
        if isolation.namespaces:
            enter_namespaces(isolation)
        enter_scratch_folder(isolation)
        loader.arm(namespaces=isolation.namespaces)
        code = run_generation(slot, loader, generation_id)
    except BaseException:  # noqa: BLE001 - report and end this generation; the zygote forks another
        traceback.print_exc()
    finally:
        sys.stderr.flush()
        os._exit(code)


class Zygote:
    """Keeps one generation per slot alive until the parent closes the slot's request pipe, and kills a
    generation when the parent asks (on stdin: {"kill": pid}), since only the zygote can see its processes.

    Started before its release existed (`release_to_come`: where the folder of releases is mounted), it forks no
    generation until the parent names the release (on stdin: {"attach": NAME}) and it shows itself that one alone."""

    def __init__(
        self,
        channel: Channel,
        loader: Loader,
        slots: list[SlotPipes],
        isolation: Isolation,
        release_to_come: str | None = None,
    ) -> None:
        self.channel, self.loader, self.slots, self.isolation = channel, loader, slots, isolation
        self.release_to_come = release_to_come
        self.generations: dict[int, SlotPipes] = {}
        self.failures = dict.fromkeys(range(len(slots)), 0)
        self.control = b""
        self.wake: tuple[int, int] = (-1, -1)

    def run(self) -> int:
        # Objects that exist now are shared with every generation; freezing them keeps the garbage collector from
        # touching (and so copying) their pages in each fork. The bootstrap switched the collector off for the
        # imports (structure.BOOTSTRAP), and generations run DAG code with it on: the gc module's own recipe for a
        # process that forks. No collection first: over Airflow's objects it costs a quarter of a second of CPU
        # before the first generation can start, to free a few thousand objects (kilobytes).
        gc.freeze()
        gc.enable()
        if self.release_to_come is not None and not self.attach_release(self.release_to_come):
            return 1
        wake_read, wake_write = self.wake = os.pipe()
        os.set_blocking(wake_write, False)
        signal.set_wakeup_fd(wake_write)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes the select below through the wakeup fd
        for slot in self.slots:
            self.spawn(slot)
        control_open = True
        while self.generations:
            watched = [wake_read, 0] if control_open else [wake_read]
            readable, _, _ = select.select(watched, [], [], 1.0)
            if wake_read in readable:
                os.read(wake_read, 512)
            if 0 in readable:
                control_open = self.read_control()
            if self.reap() is not None:
                return 1
        return 0

    def attach_release(self, releases: str) -> bool:
        """Wait for the parent to name the release, then bind it and unmount the other releases (before any
        generation exists, so none ever sees them). False: the parent gave up, or the release could not be shown
        alone (said on stdout; the parent then starts a sandbox the usual way)."""
        while (messages := self.control_messages()) is not None:
            for name in (message.get("attach") for message in messages):
                if not isinstance(name, str):
                    continue
                try:
                    show_only_release(releases, name, self.loader.root)
                except OSError as exc:
                    self.channel.send({"event": "fatal", "error": describe_exception(exc), "attach": True})
                    return False
                importlib.invalidate_caches()  # the release root is on sys.path: its listing changed under it
                return True
        return False

    def spawn(self, slot: SlotPipes) -> None:
        pid = fork_generation(slot, self.slots, self.loader, self.channel, self.isolation, self.wake)
        self.generations[pid] = slot

    def read_control(self) -> bool:
        messages = self.control_messages()
        for pid in (message.get("kill") for message in messages or ()):
            if isinstance(pid, int) and pid in self.generations:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
        return messages is not None

    def control_messages(self) -> list[dict[str, Any]] | None:
        """The whole JSON lines the parent wrote on stdin since the last read (one read; a partial line waits for
        the next); None once the parent closed it."""
        data = os.read(0, 4096)
        if not data:
            return None
        self.control += data
        *lines, self.control = self.control.split(b"\n")
        messages = (json.loads(line) for line in lines if line.strip())
        return [message for message in messages if isinstance(message, dict)]

    def reap(self) -> int | None:
        """Report every generation that ended and fork its successor; a non-None answer ends the zygote."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return None
            if pid == 0:
                return None
            slot = self.generations.pop(pid, None)
            if slot is None:
                continue
            # Written on the slot's own pipe: its generation is dead, so nothing else writes there now.
            Channel(slot.results).send({"event": "exited", "pid": pid, **describe_status(status)})
            failed = os.WIFEXITED(status) and os.WEXITSTATUS(status) == GENERATION_FAILED
            self.failures[slot.index] = self.failures[slot.index] + 1 if failed else 0
            if self.failures[slot.index] >= MAX_FAILED_GENERATIONS:
                print(f"slot {slot.index}: {MAX_FAILED_GENERATIONS} generations failed in a row", file=sys.stderr)
                return 1  # the parent sees the zygote's end and restarts the sandbox, or gives up
            if not requests_closed(slot.requests):
                self.spawn(slot)


def main(argv: list[str] | None = None) -> int:
    """Entry point: argv[1] is the JSON configuration (root, memory_limit, serialize, workdir, slots, isolation)."""
    argv = sys.argv if argv is None else argv
    config = json.loads(argv[1])
    channel = Channel.from_stdout()
    die_with_parent()
    limit_log_growth()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop (by closing the request pipes)
    isolation = Isolation(config.get("isolation", "none"), config.get("uid"), config["workdir"])
    try:
        loader = Loader(config)
    except BaseException as exc:  # noqa: BLE001 - tell the parent why the sandbox cannot start
        traceback.print_exc()
        channel.send({"event": "fatal", "error": describe_exception(exc)})
        return 1
    slots = [SlotPipes(index, requests, results) for index, (requests, results) in enumerate(config["slots"])]
    return Zygote(channel, loader, slots, isolation, config.get("release_to_come")).run()


if __name__ == "__main__":
    sys.exit(main())
