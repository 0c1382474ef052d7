"""Imports check: every module a DAG file imports must be importable where the DAGs are parsed.

A module missing from the Airflow environment is the most common import error after a push, and the
fix is nearly always "install distribution X". So this check names X: the provider package for
`airflow.providers.*`, the Airflow 3 replacement for Airflow 2 paths, the PyPI name for well-known
libraries whose import name differs from their distribution name.

It never imports user code, and imports as little as possible of anything else:
- Top-level names are looked up with `importlib.util.find_spec`, which only searches `sys.path`.
- Deeper names are walked on disk, one package level at a time, with each path entry's finder
  (`pkgutil.get_importer(...).find_spec`), so `google.cloud.bigquery` is checked without running
  `google/__init__.py` or anything below it.
- A name the disk walk cannot find below a namespace package (`google.cloud.X`, `airflow.providers.X`)
  is missing for sure: nothing can add modules to a namespace package but the file system.
- A name missing below a regular package is uncertain: its `__init__` may create it (Airflow's own
  deprecation shims put `airflow.operators.python` in `sys.modules` that way, and `six.moves` does too).
  For `airflow.*` we settle it by importing the parent package, which is installed Airflow code that
  the dag-processor imports anyway, and asking `find_spec` again (it then sees the shims and any
  `pkgutil.extend_path` additions). For other libraries we do not import them (that could be slow or
  have side effects) and do not report: the structure check, which imports the DAGs in a sandbox,
  reports real import errors anyway.

Compatibility shims (`try: from airflow.sdk import DAG` / `except ImportError: from airflow import DAG`) are judged
as a whole (`settle_shims`): the handler's imports are not checked when the `try` body imports, a missing `try`
import whose fallback works is an info, and only a shim with both branches missing is an error (on the fallback).
`if TYPE_CHECKING:` imports are never checked.

Size: about a fifth of it is data (import name -> distribution, Airflow 2 -> 3 moves) that only this check
reads, and `ModuleResolver` is the one disk walk described above; the rest are small rules over its answers.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import logging
import os
import pkgutil
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from airflow_dagops.validate.report import Finding

log = logging.getLogger(__name__)

RULES = {
    "missing-module": (
        "A module imported when the DAG file is parsed is neither installed in the Airflow environment "
        "nor part of the release."
    ),
    "missing-module-runtime": (
        "A module imported inside a function (so only when a task runs) is not installed in the Airflow environment."
    ),
}

# Bigger files are not parsed here: the cost is not worth it for a file that is surely data, and the
# syntax and structure checks still look at it.
MAX_FILE_BYTES = 10 * 1024 * 1024

# Exceptions whose handler makes an import optional.
_IMPORT_GUARDS = frozenset({"ImportError", "ModuleNotFoundError", "Exception", "BaseException"})
# `@task.<kind>` decorators whose function body runs in another Python environment (a virtualenv, another
# interpreter, a container or a pod): its imports need not exist where the DAGs are parsed.
_OTHER_ENVIRONMENT_TASKS = frozenset(
    {
        "virtualenv",
        "branch_virtualenv",
        "external_python",
        "branch_external_python",
        "docker",
        "kubernetes",
        "kubernetes_cmd",
    }
)
# Operators whose `python_callable` runs in another environment (PythonVirtualenvOperator, ExternalPythonOperator
# and their Branch* variants).
_OTHER_ENVIRONMENT_OPERATOR_SUFFIXES = ("VirtualenvOperator", "ExternalPythonOperator")

# Provider namespaces two levels deep: `airflow.providers.microsoft.azure` is apache-airflow-providers-microsoft-azure.
_TWO_LEVEL_PROVIDER_NAMESPACES = frozenset({"apache", "atlassian", "cncf", "common", "dbt", "ibm", "microsoft"})

# Import name -> PyPI distribution, where they differ (or where the import name is a namespace that many
# distributions share). Matched on the longest dotted prefix.
IMPORT_DISTRIBUTIONS = {
    "airflow": "apache-airflow",
    "airflow.sdk": "apache-airflow-task-sdk",
    "attr": "attrs",
    "azure.core": "azure-core",
    "azure.cosmos": "azure-cosmos",
    "azure.identity": "azure-identity",
    "azure.kusto.data": "azure-kusto-data",
    "azure.servicebus": "azure-servicebus",
    "bs4": "beautifulsoup4",
    "Crypto": "pycryptodome",
    "Cryptodome": "pycryptodomex",
    "confluent_kafka": "confluent-kafka",
    "cosmos": "astronomer-cosmos",
    "cv2": "opencv-python",
    "cx_Oracle": "cx-Oracle",
    "databricks.sdk": "databricks-sdk",
    "databricks.sql": "databricks-sql-connector",
    "dateutil": "python-dateutil",
    "dbt": "dbt-core",
    "dns": "dnspython",
    "docx": "python-docx",
    "dotenv": "python-dotenv",
    "fitz": "PyMuPDF",
    "git": "GitPython",
    "google.api_core": "google-api-core",
    "google.auth": "google-auth",
    "google.oauth2": "google-auth",
    "google.protobuf": "protobuf",
    "googleapiclient": "google-api-python-client",
    "great_expectations": "great-expectations",
    "grpc": "grpcio",
    "jinja2": "Jinja2",
    "jose": "python-jose",
    "jwt": "PyJWT",
    "kafka": "kafka-python",
    "ldap": "python-ldap",
    "magic": "python-magic",
    "memcache": "python-memcached",
    "multipart": "python-multipart",
    "MySQLdb": "mysqlclient",
    "mysql.connector": "mysql-connector-python",
    "nacl": "PyNaCl",
    "OpenSSL": "pyOpenSSL",
    "PIL": "Pillow",
    "pkg_resources": "setuptools",
    "pptx": "python-pptx",
    "psycopg2": "psycopg2-binary",
    "pyhive": "PyHive",
    "pymysql": "PyMySQL",
    "ruamel": "ruamel.yaml",
    "sentry_sdk": "sentry-sdk",
    "serial": "pyserial",
    "skimage": "scikit-image",
    "sklearn": "scikit-learn",
    "slack": "slackclient",
    "slack_sdk": "slack-sdk",
    "slugify": "python-slugify",
    "smb": "pysmb",
    "snowflake.connector": "snowflake-connector-python",
    "snowflake.snowpark": "snowflake-snowpark-python",
    "snowflake.sqlalchemy": "snowflake-sqlalchemy",
    "socks": "PySocks",
    "telegram": "python-telegram-bot",
    "typing_extensions": "typing-extensions",
    "usb": "pyusb",
    "win32api": "pywin32",
    "xlsxwriter": "XlsxWriter",
    "yaml": "PyYAML",
    "zmq": "pyzmq",
}
# Namespaces whose third segment names the distribution: google.cloud.bigquery -> google-cloud-bigquery.
_SEGMENT_NAMED_DISTRIBUTIONS = {
    "google.cloud": "google-cloud-",
    "azure.mgmt": "azure-mgmt-",
    "azure.storage": "azure-storage-",
}

# Airflow 2 module paths that Airflow 3 no longer has -> where the same things live now. Matched on the longest
# dotted prefix. Paths that Airflow 3 still serves through deprecation shims (airflow.operators.python, ...) are
# not here: they still import (ruff's AIR311/AIR312 warn about them).
AIRFLOW2_MOVES = {
    "airflow.operators.bash_operator": "airflow.providers.standard.operators.bash",
    "airflow.operators.python_operator": "airflow.providers.standard.operators.python",
    "airflow.operators.dummy_operator": "airflow.providers.standard.operators.empty",
    "airflow.operators.dummy": "airflow.providers.standard.operators.empty",
    "airflow.operators.dagrun_operator": "airflow.providers.standard.operators.trigger_dagrun",
    "airflow.operators.branch_operator": "airflow.providers.standard.operators.branch",
    "airflow.operators.latest_only_operator": "airflow.providers.standard.operators.latest_only",
    "airflow.operators.email_operator": "airflow.providers.smtp.operators.smtp",
    "airflow.operators.http_operator": "airflow.providers.http.operators.http",
    "airflow.operators.docker_operator": "airflow.providers.docker.operators.docker",
    "airflow.operators.sql": "airflow.providers.common.sql.operators.sql",
    "airflow.operators.check_operator": "airflow.providers.common.sql.operators.sql",
    "airflow.operators.sql_branch_operator": "airflow.providers.common.sql.operators.sql",
    "airflow.operators.postgres_operator": "airflow.providers.common.sql.operators.sql",
    "airflow.operators.mysql_operator": "airflow.providers.common.sql.operators.sql",
    "airflow.operators.mssql_operator": "airflow.providers.common.sql.operators.sql",
    "airflow.operators.sqlite_operator": "airflow.providers.common.sql.operators.sql",
    "airflow.operators.oracle_operator": "airflow.providers.common.sql.operators.sql",
    "airflow.operators.jdbc_operator": "airflow.providers.common.sql.operators.sql",
    "airflow.sensors.external_task_sensor": "airflow.providers.standard.sensors.external_task",
    "airflow.sensors.time_delta_sensor": "airflow.providers.standard.sensors.time_delta",
    "airflow.sensors.date_time_sensor": "airflow.providers.standard.sensors.date_time",
    "airflow.sensors.http_sensor": "airflow.providers.http.sensors.http",
    "airflow.sensors.sql_sensor": "airflow.providers.common.sql.sensors.sql",
    "airflow.sensors.sql": "airflow.providers.common.sql.sensors.sql",
    "airflow.sensors.s3_key_sensor": "airflow.providers.amazon.aws.sensors.s3",
    "airflow.sensors.base_sensor_operator": "airflow.sdk",
    "airflow.hooks.base_hook": "airflow.sdk",
    "airflow.hooks.S3_hook": "airflow.providers.amazon.aws.hooks.s3",
    "airflow.hooks.postgres_hook": "airflow.providers.postgres.hooks.postgres",
    "airflow.hooks.mysql_hook": "airflow.providers.mysql.hooks.mysql",
    "airflow.hooks.http_hook": "airflow.providers.http.hooks.http",
    "airflow.hooks.sqlite_hook": "airflow.providers.sqlite.hooks.sqlite",
    "airflow.hooks.dbapi_hook": "airflow.providers.common.sql.hooks.sql",
    "airflow.hooks.dbapi": "airflow.providers.common.sql.hooks.sql",
    "airflow.kubernetes": "airflow.providers.cncf.kubernetes",
    "airflow.datasets": "airflow.sdk",
}
_SUBDAGS_REMOVED = "SubDAGs were removed in Airflow 3: use a TaskGroup (`from airflow.sdk import TaskGroup`)."
# Airflow 2 paths removed without a module-for-module replacement: what to do instead.
AIRFLOW2_REMOVALS = {
    "airflow.contrib": (
        "`airflow.contrib` was removed: its operators, hooks and sensors live in provider packages "
        "(`airflow.providers.<name>`, distribution `apache-airflow-providers-<name>`); import them from there."
    ),
    "airflow.operators.subdag": _SUBDAGS_REMOVED,
    "airflow.operators.subdag_operator": _SUBDAGS_REMOVED,
    "airflow.executors.debug_executor": "The DebugExecutor was removed in Airflow 3: run `dag.test()` instead.",
    "airflow.api.common.experimental": (
        "The experimental API was removed in Airflow 3: use the stable REST API or `airflow.sdk` from tasks."
    ),
}
UPGRADE_GUIDE = "https://airflow.apache.org/docs/apache-airflow/stable/installation/upgrading_to_airflow3.html"


@dataclass(frozen=True)
class ImportedModule:
    """One absolute import in a DAG file."""

    module: str
    line: int
    # Inside a function body: imported when a task runs, not when the dag-processor parses the file.
    runtime: bool = False
    # For `from module import a, b`: when `module` is a namespace package, a and b can only be submodules.
    names: tuple[str, ...] = ()
    # Part of a compatibility shim (`try: import A` / `except ImportError: import B`): the shim's number in the file,
    # and whether the import is in the handler (the fallback) or in the `try` body.
    shim: int | None = None
    fallback: bool = False
    # Set by `settle_shims` on a missing `try` body import whose fallback works: the handler's modules.
    fallback_modules: tuple[str, ...] = ()
    fallback_works: bool = False
    # Set by `settle_shims` on a handler import when the `try` body is missing too: the `try` body's missing modules.
    fallback_for: tuple[str, ...] = ()


# --- Which files --------------------------------------------------------------------------------------------------


def python_files_in_release(root: Path, files: list[str]) -> list[tuple[str, Path]]:
    """The given .py files that are regular files inside the release: never follow a symlink out of it."""
    root_real = Path(os.path.realpath(root))
    selected = []
    for relative in files:
        if not relative.endswith(".py"):
            continue
        path = root / relative
        real = Path(os.path.realpath(path))
        if not real.is_relative_to(root_real) or not real.is_file():
            log.debug("imports/compat: skipping %s (outside the release or not a file)", relative)
            continue
        selected.append((relative, path))
    return selected


def local_module_names(root: Path) -> set[str]:
    """Names a DAG can import from the release itself: every folder and module name on the path of a .py file.

    DAG repositories often keep helpers next to their DAGs (`dags/helpers.py`, `include/sql/`); which of those
    folders ends up on sys.path depends on the deployment, so any of them counts.
    """
    names: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root):  # followlinks=False: never leave the release
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and d != "__pycache__"]
        relative_dir = Path(dirpath).relative_to(root)
        modules = {name.split(".", 1)[0] for name in filenames if name.endswith((".py", ".so", ".pyd"))}
        if modules:
            names.update(modules)
            names.update(relative_dir.parts)
    return names


# --- What a file imports ------------------------------------------------------------------------------------------


def collect_imports(tree: ast.AST) -> list[ImportedModule]:
    """The absolute imports that must resolve in the Airflow environment (TYPE_CHECKING ones excluded).

    Imports in a `try` whose `except ImportError` handler does more than re-raise are marked with their shim:
    `settle_shims` decides which of them must resolve.
    """
    collector = _ImportCollector(tree)
    collector.visit(tree)
    return collector.found


def settle_shims(imports: list[ImportedModule], resolver: ModuleResolver) -> list[ImportedModule]:
    """The imports that must resolve, once compatibility shims (`try: import A` / `except ImportError: import B`)
    are settled:

    - plain imports: all of them;
    - a `try` body that imports: its handler's imports are never checked (they only run when the `try` fails);
    - a `try` body whose imports all resolve: nothing to check;
    - a `try` body with a missing import and no import in the handler: an optional import, nothing to check;
    - a `try` body with a missing import and a handler whose imports all resolve: the `try` body's imports, each
      with the handler's modules in `fallback_modules` and `fallback_works` set (a missing one is only an info);
    - a `try` body with a missing import and a handler with a missing import too: the handler's imports, as
      before shims were settled, each with the `try` body's missing modules in `fallback_for`;
    - a handler whose `try` body has no import statement (e.g. `importlib.import_module`): its imports are
      checked as plain imports.
    """
    shims: dict[int, list[ImportedModule]] = {}
    settled: list[ImportedModule] = []
    for imported in imports:
        if imported.shim is None:
            settled.append(imported)
        else:
            shims.setdefault(imported.shim, []).append(imported)
    for members in shims.values():
        body = [i for i in members if not i.fallback]
        handler = [i for i in members if i.fallback]
        if not body:
            settled.extend(replace(i, shim=None, fallback=False) for i in handler)
            continue
        body_missing = tuple(dict.fromkeys(m for i in body for m in _missing_modules(i, resolver)))
        if not handler or not body_missing:
            continue
        if not all(_resolves(i, resolver) for i in handler):
            settled.extend(replace(i, shim=None, fallback=False, fallback_for=body_missing) for i in handler)
            continue
        for imported in body:
            # Name the handler's imports that bind the same names (`PythonOperator` from its Airflow 2 path).
            same_names = [i.module for i in handler if set(i.names) & set(imported.names)]
            modules = tuple(dict.fromkeys(same_names or [i.module for i in handler]))
            settled.append(replace(imported, fallback_modules=modules, fallback_works=True))
    settled.sort(key=lambda i: i.line)
    return settled


def _missing_modules(imported: ImportedModule, resolver: ModuleResolver) -> list[str]:
    return [m for m in _modules_to_check(imported, resolver) if resolver.missing_part(m) is not None]


def _resolves(imported: ImportedModule, resolver: ModuleResolver) -> bool:
    return not _missing_modules(imported, resolver)


def import_fallback_line_ranges(tree: ast.AST) -> list[tuple[int, int]]:
    """First and last line of each `except ImportError`-style handler that does more than re-raise (the fallback
    branch of a compatibility shim, or the `else` of an optional import)."""
    ranges = []
    for node in ast.walk(tree):
        if isinstance(node, ast.stmt):  # only `try` and `try/except*` statements have handlers
            for handler in getattr(node, "handlers", ()):
                if _is_import_guard(handler):
                    ranges.append((handler.lineno, handler.end_lineno or handler.lineno))
    return ranges


class _ImportCollector(ast.NodeVisitor):
    def __init__(self, tree: ast.AST) -> None:
        self.found: list[ImportedModule] = []
        self._tree = tree
        self._callables_run_elsewhere: set[str] | None = None  # found on first need: a walk of the whole tree
        self._skipping = 0  # inside an import guard, a TYPE_CHECKING block or a function run in another environment
        self._functions: list[str] = []  # names of the enclosing functions
        self._shim: tuple[int, bool] | None = None  # inside a shim: its number, and whether in the handler
        self._shims = 0

    def visit_Import(self, node: ast.Import) -> None:
        if not self._skipping:
            for alias in node.names:
                self._add(alias.name, node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        # Relative imports (level > 0) are local to the release by definition.
        if not self._skipping and not node.level and node.module:
            self._add(node.module, node.lineno, tuple(a.name for a in node.names if a.name != "*"))

    def visit_Try(self, node: ast.Try) -> None:
        if not _handlers_make_imports_optional(node.handlers):
            for part in (node.body, node.handlers, node.orelse, node.finalbody):
                self._visit_body(part)
            return
        outer = self._shim
        self._shims += 1
        number = self._shims
        self._shim = (number, False)
        self._visit_body(node.body)
        for handler in node.handlers:
            self._shim = (number, True) if _is_import_guard(handler) else outer
            self.visit(handler)
        self._shim = outer
        for part in (node.orelse, node.finalbody):
            self._visit_body(part)

    visit_TryStar = visit_Try

    def visit_If(self, node: ast.If) -> None:
        # `if TYPE_CHECKING:` never runs; its `else:` does.
        self._visit_body(node.body, skip=_is_type_checking(node.test))
        self._visit_body(node.orelse)

    def visit_With(self, node: ast.With | ast.AsyncWith) -> None:
        # `with contextlib.suppress(ImportError): import x` is a guard too.
        self._visit_body(node.body, skip=any(_suppresses_import_error(item.context_expr) for item in node.items))

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self._functions.append(node.name)
        self._visit_body(node.body, skip=any(_decorator_runs_elsewhere(d) for d in node.decorator_list))
        self._functions.pop()

    visit_AsyncFunctionDef = visit_FunctionDef
    visit_AsyncWith = visit_With

    def generic_visit(self, node: ast.AST) -> None:
        # Imports are statements: descend only into statement bodies, never into expressions, so a generated
        # `"a" + "b" + ...` thousands of terms long can't exhaust the recursion limit.
        for field in ("body", "orelse", "finalbody", "handlers", "cases"):
            children = getattr(node, field, None)
            if isinstance(children, list):
                for child in children:
                    self.visit(child)

    def _visit_body(self, statements: Sequence[ast.AST], *, skip: bool = False) -> None:
        self._skipping += skip
        for statement in statements:
            self.visit(statement)
        self._skipping -= skip

    def _add(self, module: str, line: int, names: tuple[str, ...] = ()) -> None:
        if self._functions:
            if self._callables_run_elsewhere is None:
                self._callables_run_elsewhere = _callables_run_elsewhere(self._tree)
            if self._callables_run_elsewhere.intersection(self._functions):
                return
        shim, fallback = self._shim or (None, False)
        self.found.append(
            ImportedModule(
                module=module, line=line, runtime=bool(self._functions), names=names, shim=shim, fallback=fallback
            )
        )


def _exception_names(node: ast.expr | None) -> set[str]:
    if node is None:
        return {"BaseException"}  # bare `except:`
    if isinstance(node, ast.Tuple):
        return set().union(*(_exception_names(e) for e in node.elts))
    if isinstance(node, ast.Name):
        return {node.id}
    if isinstance(node, ast.Attribute):
        return {node.attr}
    return set()


def _handlers_make_imports_optional(handlers: list[ast.ExceptHandler]) -> bool:
    """True when some handler catches ImportError and does more than re-raise (a re-raise still fails the parse)."""
    return any(_is_import_guard(handler) for handler in handlers)


def _is_import_guard(handler: ast.ExceptHandler) -> bool:
    return bool(_exception_names(handler.type) & _IMPORT_GUARDS) and not all(
        isinstance(s, ast.Raise) for s in handler.body
    )


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _suppresses_import_error(expr: ast.expr) -> bool:
    if not isinstance(expr, ast.Call):
        return False
    func = expr.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    return name == "suppress" and any(_exception_names(arg) & _IMPORT_GUARDS for arg in expr.args)


def _decorator_runs_elsewhere(decorator: ast.expr) -> bool:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    return isinstance(target, ast.Attribute) and target.attr in _OTHER_ENVIRONMENT_TASKS


def _callables_run_elsewhere(tree: ast.AST) -> set[str]:
    """Functions passed as python_callable to an operator that runs them in another Python environment."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        operator = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if operator.endswith(_OTHER_ENVIRONMENT_OPERATOR_SUFFIXES):
            names.update(
                kw.value.id for kw in node.keywords if kw.arg == "python_callable" and isinstance(kw.value, ast.Name)
            )
    return names


# --- Where a module is --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Located:
    """Where a module was found on disk: a plain module has no locations; packages list their folders."""

    locations: tuple[str, ...] = ()
    namespace: bool = False

    @property
    def package(self) -> bool:
        return bool(self.locations)


_UNKNOWN = _Located(locations=("<unknown>",))  # found, but not walkable on disk (builtins, frozen, zip archives)


class ModuleResolver:
    """Answers "which part of this dotted name is missing?" for one check run; caches lookups for that run only."""

    def __init__(self, root: Path) -> None:
        self._root_real = os.path.realpath(root)
        self._local_names: set[str] | None = None
        self._root = root
        self._located: dict[str, _Located | None] = {}
        self._missing: dict[str, str | None] = {}

    @property
    def local_names(self) -> set[str]:
        if self._local_names is None:
            self._local_names = local_module_names(self._root)
        return self._local_names

    def missing_part(self, module: str) -> str | None:
        """The shortest prefix of `module` that is surely not importable, or None (importable, or can't tell)."""
        if module not in self._missing:
            self._missing[module] = self._find_missing_part(module)
        return self._missing[module]

    def is_namespace_package(self, module: str) -> bool:
        located = self._locate(module)
        return located is not None and located.namespace

    def located_folders(self, module: str) -> tuple[str, ...]:
        located = self._locate(module)
        return () if located is None or located is _UNKNOWN else located.locations

    def _find_missing_part(self, module: str) -> str | None:
        parts = module.split(".")
        if parts[0] in self.local_names:
            return None
        for depth in range(1, len(parts) + 1):
            prefix = ".".join(parts[:depth])
            if self._locate(prefix) is not None:
                continue
            if depth == 1:
                return prefix
            if parts[0] == "airflow":
                # Even below a namespace package: airflow/__init__ extends its __path__ (pkgutil.extend_path),
                # so providers installed in another site-packages folder are only seen once it has run.
                return self._missing_after_importing_parent(module)
            parent = self._locate(".".join(parts[: depth - 1]))  # found: the previous depth went on
            if parent is not None and parent.namespace:
                return prefix  # only the file system adds modules to a namespace package
            return None  # a regular package's __init__ may create it: can't tell without running it
        return None

    def _locate(self, name: str) -> _Located | None:
        if name not in self._located:
            self._located[name] = self._locate_uncached(name)
        return self._located[name]

    def _locate_uncached(self, name: str) -> _Located | None:
        parent_name, _, _ = name.rpartition(".")
        if not parent_name:
            return self._locate_top_level(name)
        parent = self._locate(parent_name)
        if parent is _UNKNOWN:
            return _UNKNOWN
        if parent is None or not parent.package:
            return None  # under a missing module, or under a plain module (os.path): not on disk
        return _find_on_disk(name, parent.locations)

    def _locate_top_level(self, name: str) -> _Located | None:
        loaded = sys.modules.get(name)
        if loaded is not None:
            # An imported package's __path__ includes what its __init__ added (pkgutil.extend_path).
            spec = getattr(loaded, "__spec__", None)
            return _UNKNOWN if spec is None else _located_from_spec(spec, getattr(loaded, "__path__", None))
        try:
            spec = importlib.util.find_spec(name)  # a top-level lookup searches sys.path; it runs no module code
        except Exception as err:  # noqa: BLE001 - an odd meta path finder must not stop the check
            log.debug("imports: find_spec(%r) failed: %s", name, err)
            return _UNKNOWN
        return None if spec is None else _located_from_spec(spec)

    def _missing_after_importing_parent(self, module: str) -> str | None:
        """Settle an `airflow.*` name the disk walk could not find: let Airflow's own packages run their __init__."""
        airflow = self._locate("airflow")
        folders = () if airflow is None else airflow.locations
        if airflow is None or any(os.path.realpath(f).startswith(self._root_real + os.sep) for f in folders):
            return None  # never import code that comes from the release itself
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Airflow's shims warn on use; that is ruff's AIR311/AIR312's job
                # Import the parent first: its __init__ may register the module itself (Airflow's virtual
                # deprecation modules), and find_spec only looks in sys.modules before importing the parent.
                importlib.import_module(module.rpartition(".")[0])
                if module in sys.modules:
                    return None
                spec = importlib.util.find_spec(module)
        except ModuleNotFoundError as err:
            if err.name and (module == err.name or module.startswith(err.name + ".")):
                return err.name
            # A dependency of an installed Airflow package is missing: the structure check reports that import
            # error with its traceback; naming a distribution here would be a guess.
            log.debug("imports: %s: a dependency of its parent package is missing: %s", module, err)
            return None
        except ValueError:
            return None  # in sys.modules without a spec: one of Airflow's virtual deprecation modules
        except Exception as err:  # noqa: BLE001 - a broken Airflow install is not this file's fault
            log.debug("imports: could not settle %s by importing its parents: %s", module, err)
            return None
        return None if spec is not None else module


def _located_from_spec(spec, folders=None) -> _Located:
    folders = spec.submodule_search_locations if folders is None else folders
    if folders is None:
        return _Located()
    try:
        locations = tuple(folders)
    except Exception:  # noqa: BLE001 - an exotic __path__ object: found, but not walkable
        return _UNKNOWN
    return _Located(locations=locations, namespace=spec.loader is None or spec.origin in (None, "namespace"))


def _find_on_disk(name: str, folders: tuple[str, ...]) -> _Located | None:
    """Find `name` in its parent's folders with each folder's path finder: the parent package is not imported."""
    portions: list[str] = []
    for folder in folders:
        finder = pkgutil.get_importer(folder)
        if finder is None or not hasattr(finder, "find_spec"):
            continue
        try:
            spec = finder.find_spec(name)
        except Exception as err:  # noqa: BLE001 - an odd path entry must not stop the check
            log.debug("imports: finder for %s failed on %s: %s", folder, name, err)
            continue
        if spec is None:
            continue
        if spec.loader is not None:
            return _located_from_spec(spec)
        portions.extend(spec.submodule_search_locations or ())  # a namespace package portion; keep looking
    return _Located(locations=tuple(portions), namespace=True) if portions else None


# --- What to install ----------------------------------------------------------------------------------------------


def likely_distribution(module: str) -> str:
    """The PyPI distribution that most likely provides `module` (a best guess: import and package names differ)."""
    parts = module.split(".")
    if parts[:2] == ["airflow", "providers"] and len(parts) > 2:
        return provider_distribution(module)
    for prefix, distribution_prefix in _SEGMENT_NAMED_DISTRIBUTIONS.items():
        if module.startswith(prefix + ".") and len(parts) > prefix.count(".") + 1:
            return distribution_prefix + parts[prefix.count(".") + 1].replace("_", "-")
    for depth in range(len(parts), 0, -1):
        distribution = IMPORT_DISTRIBUTIONS.get(".".join(parts[:depth]))
        if distribution:
            return distribution
    return parts[0]


def provider_id(module: str, resolver: ModuleResolver | None = None) -> str:
    """`airflow.providers.microsoft.azure.hooks.wasb` -> `microsoft.azure`.

    When the provider is installed its package folder holds `get_provider_info.py`, which settles it; otherwise
    the few two-level namespaces (apache.*, microsoft.*, cncf.*, ...) are known, and any other provider is one level.
    """
    parts = module.split(".")[2:]
    if resolver is not None:
        for depth in range(1, min(len(parts), 3) + 1):
            package = "airflow.providers." + ".".join(parts[:depth])
            if any(os.path.isfile(os.path.join(f, "get_provider_info.py")) for f in resolver.located_folders(package)):
                return ".".join(parts[:depth])
    depth = 2 if parts[0] in _TWO_LEVEL_PROVIDER_NAMESPACES and len(parts) > 1 else 1
    return ".".join(parts[:depth])


def provider_distribution(module: str, resolver: ModuleResolver | None = None) -> str:
    return "apache-airflow-providers-" + provider_id(module, resolver).replace(".", "-")


def _installed_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _airflow_version() -> str:
    return _installed_version("apache-airflow") or "3"


def _longest_prefix_match(module: str, table: dict[str, str]) -> tuple[str, str] | None:
    parts = module.split(".")
    for depth in range(len(parts), 0, -1):
        prefix = ".".join(parts[:depth])
        if prefix in table:
            return prefix, table[prefix]
    return None


def describe_missing(module: str, missing: str, resolver: ModuleResolver) -> tuple[str, str]:
    """(message, hint) for an import of `module` whose part `missing` cannot be found."""
    where = f"`{module}`" if missing == module else f"`{module}` (`{missing}` is missing)"
    parts = missing.split(".")
    if parts[0] == "airflow" and len(parts) > 1:
        if parts[1] == "providers" and len(parts) > 2:
            return _describe_missing_provider_module(module, missing, resolver)
        if parts[1] != "sdk":
            return _describe_missing_airflow_module(module, missing)
    distribution = likely_distribution(module)
    return (
        f"cannot import {where}: it is not installed in the Airflow environment and is not part of the repository",
        f"Install the distribution that provides it (most likely `{distribution}`: pip install {distribution}) into "
        "the Airflow environment that parses and runs the DAGs (the image or requirements of the dag-processor "
        "and workers), or add the module to the repository; if the import is optional, guard it with "
        "try/except ImportError.",
    )


def _describe_missing_provider_module(module: str, missing: str, resolver: ModuleResolver) -> tuple[str, str]:
    package = "airflow.providers." + provider_id(module, resolver)
    distribution = provider_distribution(module, resolver)
    version = _installed_version(distribution)
    if version and missing != package:
        return (
            f"cannot import `{module}`: the installed `{distribution}` {version} has no module `{missing}`",
            f"Check the module path in the provider's documentation, or upgrade `{distribution}` to a version "
            "that has it.",
        )
    return (
        f"cannot import `{module}`: the provider package `{package}` is not installed in the Airflow environment",
        f"Install `{distribution}` (pip install {distribution}) into the Airflow environment that parses and runs the "
        "DAGs (the image or requirements of the dag-processor and workers).",
    )


def _describe_missing_airflow_module(module: str, missing: str) -> tuple[str, str]:
    version = _airflow_version()
    removal = _longest_prefix_match(missing, AIRFLOW2_REMOVALS)
    if removal:
        return f"`{module}` does not exist in Airflow {version} (an Airflow 2 import path)", removal[1]
    move = _longest_prefix_match(missing, AIRFLOW2_MOVES)
    if move:
        old, new = move
        replacement = new + module[len(old) :] if module.startswith(old + ".") else new
        distribution = likely_distribution(replacement)
        origin = "" if distribution == "apache-airflow-task-sdk" else f" (distribution `{distribution}`)"
        return (
            f"`{module}` does not exist in Airflow {version} (an Airflow 2 import path)",
            f"Import from `{replacement}` instead{origin}; ruff's AIR301/AIR302 findings on the lines that use "
            f"it name each class's new home. See {UPGRADE_GUIDE}",
        )
    return (
        f"`{module}` does not exist in Airflow {version}",
        "Check the import path; if it worked on Airflow 2, see the ruff AIR30x findings for this file and the "
        f"Airflow 3 upgrade guide: {UPGRADE_GUIDE}",
    )


# --- The check ----------------------------------------------------------------------------------------------------


def parse_python_file(path: Path, relative: str) -> ast.AST | None:
    """The file's AST, or None when it can't be read or parsed (the syntax check reports those)."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            log.debug("imports: skipping %s (larger than %d bytes)", relative, MAX_FILE_BYTES)
            return None
        source = path.read_bytes()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)
            return ast.parse(source, filename=relative)
    except (SyntaxError, ValueError, OSError, RecursionError, MemoryError) as err:
        log.debug("imports: skipping %s: %s", relative, err)
        return None


def _modules_to_check(imported: ImportedModule, resolver: ModuleResolver) -> list[str]:
    # `from google.cloud import bigquery`: a namespace package has no attributes, so each name is a submodule.
    if imported.names and resolver.is_namespace_package(imported.module):
        return [f"{imported.module}.{name}" for name in imported.names]
    return [imported.module]


def check_imports(root: Path, files: list[str]) -> list[Finding]:
    root = Path(root)
    # Path finders cache directory listings; a distribution installed since the last run must be seen.
    importlib.invalidate_caches()
    resolver = ModuleResolver(root)
    findings = []
    for relative, path in python_files_in_release(root, files):
        tree = parse_python_file(path, relative)
        if tree is None:
            continue
        # One finding per missing module and file, at its first import (and one for its first unguarded import).
        reported: set[tuple[str, bool]] = set()
        for imported in settle_shims(collect_imports(tree), resolver):
            for module in _modules_to_check(imported, resolver):
                missing = resolver.missing_part(module)
                if missing is None or (module, imported.fallback_works) in reported:
                    continue
                reported.add((module, imported.fallback_works))
                findings.append(_finding(relative, imported, module, missing, resolver))
    return findings


def _finding(relative: str, imported: ImportedModule, module: str, missing: str, resolver: ModuleResolver) -> Finding:
    message, hint = describe_missing(module, missing, resolver)
    fallbacks = ", ".join(f"`{m}`" for m in imported.fallback_modules)
    if imported.fallback_works:
        return Finding(
            rule="missing-module",
            severity="info",
            file=relative,
            line=imported.line,
            message=f"{message}; the `except ImportError` handler falls back to {fallbacks}, which can be imported",
            hint="Nothing to do while the fallback works (a compatibility shim). " + hint,
        )
    if imported.fallback_for:
        # Both branches of a shim fail: reported on the fallback, as before shims were settled, naming both.
        tried = imported.fallback_for[0]
        message += f" (the `except ImportError` fallback of `{tried}`, which cannot be imported either)"
        hint += (
            " Or make the `try` branch work: "
            + describe_missing(tried, resolver.missing_part(tried) or tried, resolver)[1]
        )
    if imported.runtime:
        return Finding(
            rule="missing-module-runtime",
            severity="warning",
            file=relative,
            line=imported.line,
            message=f"{message} (imported inside a function: the task will fail when it runs)",
            hint=hint + " If this function runs in another environment (a virtualenv, container or pod), ignore this.",
        )
    return Finding(
        rule="missing-module", severity="error", file=relative, line=imported.line, message=message, hint=hint
    )
