"""What imported DAG code attempts, seen through Python's audit hooks (PEP 578), whatever its spelling.

The AST rules of the security step see `os.system(...)`; they do not see `__import__("o" + "s").system`,
`getattr(os, name)(...)` or code decoded and passed to `exec`. The interpreter raises an audit event for each of
those operations however they were reached, so a hook installed before any DAG code runs records them: on the
file being loaded, at its line that led there (a helper module's line is named in the message), and refuses
them (PermissionError) where refusing protects something. Inside the bubblewrap sandbox the operations would
fail or touch nothing of the host anyway; the hook's job there is to make the attempt a finding instead of a
confusing error, and, where the sandbox is degraded, to be the only barrier left.

Who attempted it: an event counts when an *untrusted* frame caused it, that is a frame whose code is not in the
Python install, the virtual environment or dagops itself (the release's files, code exec'd from strings, files
written to /tmp and imported from there). Library code that a DAG merely imports runs under an import frame:
an event raised while a trusted module is being imported is that library's business, not the DAG's.

Standard library only: this module is loaded inside the sandbox before Airflow.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

RULES: dict[str, str] = {
    "sandbox-process": "A DAG file starts a process, forks or signals another process while Airflow imports it.",
    "sandbox-network": "A DAG file opens a network connection or looks up a host while Airflow imports it.",
    "sandbox-write": "A DAG file writes, moves or deletes files outside a temporary folder while Airflow imports it.",
    "sandbox-private-read": "A DAG file reads another process's /proc entries or dagops/Airflow's private files.",
    "sandbox-dynamic-code": "A DAG file runs code built at run time (exec, eval, compile) while Airflow imports it.",
    "sandbox-native-code": "A DAG file calls native code through ctypes while Airflow imports it.",
    "sandbox-process-left": "Processes a DAG file started were still running when it finished loading.",
}
HINTS: dict[str, str] = {
    "sandbox-process": "Start processes inside tasks (BashOperator, @task.bash, SubprocessHook), never at import.",
    "sandbox-network": "Call services inside tasks (hooks, operators); the scheduler imports DAG files every few "
    "seconds, on machines that should not reach your services.",
    "sandbox-write": "Write files inside tasks; DAG files are read-only code. Use tempfile for scratch data.",
    "sandbox-private-read": "DAG files must not read other processes or Airflow's own files; use Connections and "
    "Variables inside tasks.",
    "sandbox-dynamic-code": "Write the code in the file (or a module of the repository) instead of building it at "
    "run time; generated DAGs can loop over configuration without exec/eval.",
    "sandbox-native-code": "Load native libraries inside tasks, not at import time.",
    "sandbox-process-left": "Do not start background processes from DAG files.",
}
SANDBOX_REFUSAL = "refused by the dagops validation sandbox"
MAX_RECORDED = 20  # per file: a loop that tries 10,000 connections makes one finding, not 10,000

_PROCESS_EVENTS = {
    "os.system",
    "os.exec",
    "os.posix_spawn",
    "os.spawn",
    "os.fork",
    "os.forkpty",
    "subprocess.Popen",
    "os.kill",
    "os.killpg",
    "pty.spawn",
}
_NETWORK_EVENTS = {
    "socket.connect",
    "socket.bind",
    "socket.sendto",
    "socket.sendmsg",
    "socket.getaddrinfo",
    "socket.gethostbyname",
    "socket.gethostbyaddr",
    "urllib.Request",
    "http.client.connect",
    "ftplib.connect",
    "smtplib.connect",
    "poplib.connect",
    "imaplib.open",
    "nntplib.connect",
    "telnetlib.Telnet.open",
}
_WRITE_EVENTS = {  # event -> index of the path argument(s)
    "os.remove": (0,),
    "os.rmdir": (0,),
    "os.mkdir": (0,),
    "os.rename": (0, 1),
    "os.link": (0, 1),
    "os.symlink": (1,),
    "os.truncate": (0,),
    "os.chmod": (0,),
    "os.chown": (0,),
    "os.utime": (0,),
    "shutil.rmtree": (0,),
    "shutil.copyfile": (1,),
    "shutil.move": (1,),
}
_NATIVE_EVENTS = {"ctypes.dlopen", "ctypes.dlsym", "ctypes.dlsym/handle", "ctypes.call_function", "ctypes.cdata"}
_DYNAMIC_EVENTS = {"exec", "compile"}
WATCHED = _PROCESS_EVENTS | _NETWORK_EVENTS | set(_WRITE_EVENTS) | _NATIVE_EVENTS | _DYNAMIC_EVENTS | {"open"}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
_PROC_ENTRY = re.compile(r"^/proc/(\d+)(/|$)")


class SandboxViolation(PermissionError):
    """Raised into DAG code that attempts what the sandbox refuses; the attempt itself is the finding."""


@dataclass
class Behaviour:
    rule: str
    message: str
    line: int | None


@dataclass
class AuditState:
    """What the hook knows: the file being loaded, where writes are allowed, and what it saw."""

    current_file: str | None = None
    writable: tuple[str, ...] = ("/tmp/",)  # noqa: S108 - the sandbox's private /tmp (the host's in degraded mode)
    private: tuple[str, ...] = ()  # host paths whose reading is an attempt at secrets (AIRFLOW_HOME, ...)
    seen: list[Behaviour] = field(default_factory=list)

    def reset(self) -> None:
        self.current_file = None
        self.seen.clear()


class Auditor:
    """The audit hook: classify, attribute, record, refuse."""

    def __init__(self, state: AuditState, relative: Callable[[str], str | None], trusted: tuple[str, ...]) -> None:
        self.state = state
        self.relative = relative  # file name -> path relative to the release root, or None
        self.trusted = trusted
        self._trust: dict[str, bool] = {}
        self._local = threading.local()  # per thread: the hook's own work (realpath, ...) raises events too

    def install(self) -> None:
        sys.addaudithook(self.hook)

    # -- the hook ------------------------------------------------------------------------------------------------

    def hook(self, event: str, args: tuple[Any, ...]) -> None:
        if event not in WATCHED or self.state.current_file is None or getattr(self._local, "busy", False):
            return
        self._local.busy = True
        try:
            verdict = self.classify(event, args)
            if verdict is None:
                return
            rule, what, refuse = verdict
            origin = self.origin(direct=rule == "sandbox-dynamic-code")
        finally:
            self._local.busy = False
        if origin is None:
            return
        self.record(rule, what, origin)
        if refuse:
            raise SandboxViolation(f"{SANDBOX_REFUSAL}: {what}")

    def classify(self, event: str, args: tuple[Any, ...]) -> tuple[str, str, bool] | None:
        """(rule, description, refuse?) for an event worth a finding, else None."""
        if event in _PROCESS_EVENTS:
            if event in ("os.kill", "os.killpg") and args and args[0] in (0, os.getpid()):
                return None
            return "sandbox-process", f"{event}{_short(args)}", True
        if event in _NETWORK_EVENTS:
            return "sandbox-network", f"{event}{_short(args)}", True
        if event in _NATIVE_EVENTS:
            return "sandbox-native-code", f"{event}{_short(args[:1])}", False
        if event in _DYNAMIC_EVENTS:
            return "sandbox-dynamic-code", "exec/eval/compile of code built at run time", False
        if event == "open":
            return self.classify_open(args)
        paths = [args[i] for i in _WRITE_EVENTS[event] if i < len(args)]
        outside = [p for p in (_path(a) for a in paths) if p is not None and not self.is_writable(p)]
        if outside:
            return "sandbox-write", f"{event} {outside[0]!r}", True
        return None

    def classify_open(self, args: tuple[Any, ...]) -> tuple[str, str, bool] | None:
        path = _path(args[0]) if args else None
        if path is None:
            return None
        mode = args[1] if len(args) > 1 and isinstance(args[1], str) else ""
        flags = args[2] if len(args) > 2 and isinstance(args[2], int) else 0
        writes = any(c in mode for c in "wax+") or bool(flags & _WRITE_FLAGS)
        absolute = os.path.abspath(path)
        if writes and not self.is_writable(absolute):
            return "sandbox-write", f"open {path!r} for writing", True
        proc = _PROC_ENTRY.match(absolute)
        if proc and int(proc.group(1)) != os.getpid():
            return "sandbox-private-read", f"open {path!r} (another process)", True
        if any(absolute == p or absolute.startswith(p.rstrip("/") + "/") for p in self.state.private):
            return "sandbox-private-read", f"open {path!r}", True
        return None

    def is_writable(self, path: str) -> bool:
        absolute = os.path.abspath(path)
        return absolute == "/dev/null" or any(
            absolute.startswith(prefix) or absolute == prefix.rstrip("/") for prefix in self.state.writable
        )

    # -- who did it ----------------------------------------------------------------------------------------------

    def origin(self, *, direct: bool) -> tuple[int | None, str | None] | None:
        """(line in the loaded file, "helper.py:12" when another untrusted file did it), or None if trusted code
        did it on its own. `direct`: the innermost frame itself must be untrusted (exec/compile called by library
        code, like dataclasses or namedtuple, are the library's)."""
        frame = sys._getframe(2)  # 0: here, 1: the hook, 2: the Python code that raised the event
        if direct:
            return None if frame is None or self.is_trusted(frame.f_code.co_filename) else self.attribution(frame)
        frame = self.first_untrusted(frame)
        if frame is None:
            return None
        return self.attribution(frame)

    def first_untrusted(self, frame: Any) -> Any:
        """Walk out to the innermost untrusted frame; None if an import of trusted code comes first."""
        while frame is not None:
            filename = frame.f_code.co_filename
            if filename.startswith("<frozen importlib"):
                return None  # a library runs its module code while it is imported: not the DAG's doing
            if not self.is_trusted(filename):
                return frame
            frame = frame.f_back
        return None

    def attribution(self, frame: Any) -> tuple[int | None, str | None]:
        site = None
        current = self.state.current_file
        probe = frame
        while probe is not None:
            relative = self.relative(probe.f_code.co_filename)
            if relative == current:
                return probe.f_lineno, site
            if site is None and relative is not None:
                site = f"{relative}:{probe.f_lineno}"
            probe = probe.f_back
        return None, site

    def is_trusted(self, filename: str) -> bool:
        trusted = self._trust.get(filename)
        if trusted is None:
            if filename.startswith("<frozen"):
                trusted = True
            elif filename.startswith("<"):
                trusted = False  # <string>, <stdin>: code built at run time
            else:
                real = os.path.realpath(filename)
                trusted = self.relative(filename) is None and any(real.startswith(p) for p in self.trusted)
            self._trust[filename] = trusted
        return trusted

    # -- recording -----------------------------------------------------------------------------------------------

    def record(self, rule: str, what: str, origin: tuple[int | None, str | None]) -> None:
        line, site = origin
        if len(self.state.seen) >= MAX_RECORDED:
            return
        if any(b.rule == rule and b.line == line for b in self.state.seen):
            return
        where = f" (in {site})" if site else ""
        message = f"{RULES[rule].split(' while ')[0].rstrip('.')}: {what}{where}."
        self.state.seen.append(Behaviour(rule, message[:500], line))


def trusted_prefixes(extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Where trusted code lives: the interpreter's install, the venv, dagops itself."""
    import sysconfig

    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, *extra}
    paths.update(v for v in sysconfig.get_paths().values() if v)
    package = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
    paths.add(package)
    return tuple(sorted({os.path.realpath(p).rstrip("/") + "/" for p in paths}))


def _path(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, str):
        return value
    if hasattr(value, "__fspath__"):
        return _path(value.__fspath__())
    return None  # a file descriptor: opened earlier, judged then


def _short(args: tuple[Any, ...]) -> str:
    shown = []
    for arg in args[:2]:
        text = repr(arg)
        shown.append(text if len(text) <= 80 else text[:77] + "...")
    return "(" + ", ".join(shown) + ")"
