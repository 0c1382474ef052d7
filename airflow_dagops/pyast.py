"""`ast.parse` made safe to call from several threads at once on the CPython releases where it is not.

CPython 3.11.0–3.11.7 and 3.12.0–3.12.1 keep the AST-to-object recursion counter in one per-interpreter
struct (gh-106905, fixed in 3.11.8 and 3.12.2): when two threads convert a parse tree at once and the GIL
changes hands in between (a garbage collection running a finalizer is enough), one of them fails with
`SystemError: AST constructor recursion depth mismatch`. Validation parses files in one thread while its
structure step runs in another, and Python 3.11's traceback formatting calls `ast.parse` too, so on those
releases every `ast.parse` of the process goes through one lock. Elsewhere nothing is changed.
"""

from __future__ import annotations

import ast
import functools
import os
import sys
import threading

_AFFECTED = (3, 11) <= sys.version_info[:3] < (3, 11, 8) or (3, 12) <= sys.version_info[:3] < (3, 12, 2)
# Re-entrant: a finalizer run by a collection inside a parse may itself format a traceback.
_LOCK = threading.RLock()


def _new_lock_in_child() -> None:
    """A process forked while another thread parsed would inherit the lock held by a thread it does not have, and
    hang at its first parse (Airflow's dag-processor and the sandbox's zygote fork): the child starts with a new one,
    as the logging module does for its own locks."""
    global _LOCK
    _LOCK = threading.RLock()


os.register_at_fork(after_in_child=_new_lock_in_child)


def needs_guard() -> bool:
    return _AFFECTED


def install() -> None:
    """Serializes `ast.parse` for the whole process when this interpreter has the bug; idempotent."""
    if not _AFFECTED or getattr(ast.parse, "__dagops_guarded__", False):
        return
    unguarded = ast.parse

    @functools.wraps(unguarded)
    def parse(*args, **kwargs):
        with _LOCK:
            return unguarded(*args, **kwargs)

    parse.__dagops_guarded__ = True  # type: ignore[attr-defined]
    ast.parse = parse
