"""`ast.parse` from several threads at once: no `SystemError` on the CPython releases that have gh-106905."""

from __future__ import annotations

import ast
import subprocess
import sys

import airflow_dagops  # noqa: F401  (installs the guard)
from airflow_dagops import pyast

# Four threads parse while finalizers that release the GIL run inside their collections: on an unguarded
# CPython 3.11.7 this fails within a few hundred parses (seen in CI, where validation's two threads did it).
STRESS = """
import ast, gc, sys, threading, time
import airflow_dagops
gc.set_threshold(50)
source = "\\n".join(f"def f{i}(a):\\n    return [x for x in (a, {{'k': [1, (2, 3)]}})]" for i in range(100))
errors = []
class Finalized:
    def __init__(self):
        self.cycle = self
    def __del__(self):
        time.sleep(0)
def parse_many():
    for _ in range(300):
        garbage = [Finalized() for _ in range(20)]
        del garbage
        try:
            ast.parse(source)
        except SystemError as error:
            errors.append(repr(error))
            return
threads = [threading.Thread(target=parse_many) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(errors)
sys.exit(1 if errors else 0)
"""


def test_the_guard_is_installed_exactly_where_the_bug_is():
    guarded = getattr(ast.parse, "__dagops_guarded__", False)
    assert guarded == pyast.needs_guard()
    pyast.install()  # a second install wraps nothing twice
    assert getattr(ast.parse, "__wrapped__", None) is None or not hasattr(ast.parse.__wrapped__, "__wrapped__")


def test_a_guarded_parse_still_parses_and_reports_syntax_errors():
    assert isinstance(ast.parse("x = 1", filename="f.py"), ast.Module)
    try:
        ast.parse("def (", filename="broken.py")
    except SyntaxError as error:
        assert error.filename == "broken.py"
    else:
        raise AssertionError("a syntax error was not raised")


def test_threads_parsing_at_once_never_see_the_recursion_depth_mismatch():
    done = subprocess.run([sys.executable, "-c", STRESS], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_child_forked_while_another_thread_parses_can_parse(tmp_path):
    # The guard's lock held by a thread at fork time must not hang the child's first parse.
    script = """
import ast, os, sys, threading, time
import airflow_dagops
from airflow_dagops import pyast
if not pyast.needs_guard():
    sys.exit(0)
holding = threading.Event()
def hold():
    with pyast._LOCK:
        holding.set()
        time.sleep(2)
threading.Thread(target=hold, daemon=True).start()
holding.wait()
pid = os.fork()
if pid == 0:
    ast.parse("x = 1")
    os._exit(0)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
