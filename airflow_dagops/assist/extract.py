"""What a DAG file says about its DAGs, read with `ast` only: never imported, so untrusted code never runs here.

Per DAG: its dag_id, its documentation (doc_md, description, the decorated function's or the module's
docstring), tags, schedule, owners, task ids, the operator classes its tasks use and the Airflow connections it
names (every `*conn_id=` keyword given a literal). A file with several DAGs gives each the tasks written inside
its `with DAG(...)` block or `@dag` function; tasks outside any (the `dag=dag` style) go to every DAG of the file.

Only literals and module-level names bound to literals are understood: a dag_id built at run time is not known
here (the validation summary has it; `search.index` uses both).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

MAX_DOC = 4000  # characters of documentation kept per DAG: enough to rank by, small enough to return
_DAG_SCHEDULE_KEYS = ("schedule", "schedule_interval", "timetable")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


@dataclass
class DagFacts:
    dag_id: str
    file: str
    doc: str = ""
    tags: list[str] = field(default_factory=list)
    schedule: str | None = None
    owners: list[str] = field(default_factory=list)
    task_ids: list[str] = field(default_factory=list)
    operators: list[str] = field(default_factory=list)
    connections: list[str] = field(default_factory=list)


def split_words(identifier: str) -> str:
    """`S3CreateObjectOperator` -> `S3 Create Object Operator`, `backup_to_s3` -> `backup to s3`: identifiers as
    words, so a plain-language query meets them."""
    return " ".join(_CAMEL.sub(" ", part) for part in re.split(r"[_\-.\s]+", identifier) if part)


def dags_in_source(source: str, file: str) -> list[DagFacts]:
    """The DAGs a Python file defines, as far as its syntax tells; [] for a file that does not parse."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    constants = _module_constants(tree)
    module_doc = ast.get_docstring(tree) or ""
    reader = _Reader(constants)
    found: list[tuple[DagFacts, ast.AST | None]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.With):
            for item in node.items:
                call = item.context_expr
                if isinstance(call, ast.Call) and _is_dag_constructor(call):
                    found.append((reader.dag_from_call(call, file), node))
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for decorator in node.decorator_list:
                if _callee_name(decorator) == "dag":
                    found.append((reader.dag_from_function(node, decorator, file), node))
        elif isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.Call):
            if _is_dag_constructor(node.value):
                found.append((reader.dag_from_call(node.value, file), None))
    facts = [dag for dag, _ in found if dag.dag_id]
    if not facts:
        return []
    scoped = [(dag, scope) for dag, scope in found if dag.dag_id and scope is not None]
    inside = {id(n) for _, scope in scoped for n in ast.walk(scope)}
    for dag, scope in scoped:
        reader.add_tasks(dag, ast.walk(scope))
        reader.add_connections(dag, ast.walk(scope))
    loose = [n for n in ast.walk(tree) if id(n) not in inside]
    for dag in facts:
        reader.add_tasks(dag, iter(loose))
        reader.add_connections(dag, iter(loose))
        if not dag.doc:
            dag.doc = module_doc[:MAX_DOC]
        dag.task_ids = list(dict.fromkeys(dag.task_ids))
        dag.operators = sorted(set(dag.operators))
        dag.connections = sorted(set(dag.connections))
    return _unique(facts)


def _unique(facts: list[DagFacts]) -> list[DagFacts]:
    """One entry per dag_id (a `DAG(...)` both assigned and used in `with` is found twice)."""
    by_id: dict[str, DagFacts] = {}
    for dag in facts:
        by_id.setdefault(dag.dag_id, dag)
    return list(by_id.values())


def _module_constants(tree: ast.Module) -> dict[str, ast.expr]:
    """Module-level `NAME = <expression>` bindings, to resolve `dag_id=DAG_ID`, `default_args=ARGS`, `doc_md=DOC`."""
    constants: dict[str, ast.expr] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            constants[stmt.targets[0].id] = stmt.value
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
            constants[stmt.target.id] = stmt.value
    return constants


def _callee_name(node: ast.AST) -> str:
    """`DAG` of `DAG(...)`, `models.DAG(...)`; `dag` of `@dag`, `@dag(...)`; `task.bash` of `@task.bash(...)`."""
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _callee_name(node.value)
        return f"{base}.{node.attr}" if base in ("task", "dag") else node.attr
    return ""


def _is_dag_constructor(call: ast.Call) -> bool:
    return _callee_name(call) == "DAG"


class _Reader:
    def __init__(self, constants: dict[str, ast.expr]):
        self.constants = constants

    # -- values ------------------------------------------------------------------------------------------------
    def value(self, node: ast.AST | None, depth: int = 0):
        """A literal's value (resolving module-level names once or twice), else None."""
        if node is None or depth > 3:
            return None
        if isinstance(node, ast.Name) and node.id in self.constants:
            return self.value(self.constants[node.id], depth + 1)
        if isinstance(node, ast.JoinedStr):  # f"{PREFIX}_daily": the literal parts, the names resolved when known
            parts = [self.value(v.value if isinstance(v, ast.FormattedValue) else v, depth + 1) for v in node.values]
            return "".join(str(p) for p in parts if p is not None) or None
        try:
            return ast.literal_eval(node)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return None

    def text(self, node: ast.AST | None) -> str | None:
        value = self.value(node)
        return value if isinstance(value, str) else None

    def strings(self, node: ast.AST | None) -> list[str]:
        value = self.value(node)
        if isinstance(value, list | tuple | set):
            return [item for item in value if isinstance(item, str)]
        return []

    def schedule(self, node: ast.AST | None) -> str | None:
        if node is None:
            return None
        value = self.value(node)
        if value is None and isinstance(node, ast.Constant):
            return "None"
        if isinstance(value, str):
            return value
        text = ast.unparse(node)
        return text[:200]

    def owners(self, node: ast.AST | None) -> list[str]:
        """`owner` of a default_args dict literal (or a module-level name bound to one)."""
        if isinstance(node, ast.Name) and node.id in self.constants:
            node = self.constants[node.id]
        if isinstance(node, ast.Call) and _callee_name(node) == "dict":
            owner = next((kw.value for kw in node.keywords if kw.arg == "owner"), None)
            text = self.text(owner)
            return [o.strip() for o in text.split(",") if o.strip()] if text else []
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=False):
                if key is not None and self.text(key) == "owner":
                    text = self.text(value)
                    return [o.strip() for o in text.split(",") if o.strip()] if text else []
        return []

    # -- DAGs --------------------------------------------------------------------------------------------------
    def dag_from_call(self, call: ast.Call, file: str) -> DagFacts:
        kwargs = {kw.arg: kw.value for kw in call.keywords if kw.arg}
        dag_id = self.text(kwargs.get("dag_id")) or (self.text(call.args[0]) if call.args else None) or ""
        return self._facts(dag_id, file, kwargs, docstring="")

    def dag_from_function(self, function: ast.FunctionDef | ast.AsyncFunctionDef, decorator, file: str) -> DagFacts:
        kwargs = {kw.arg: kw.value for kw in decorator.keywords if kw.arg} if isinstance(decorator, ast.Call) else {}
        dag_id = self.text(kwargs.get("dag_id")) or function.name
        return self._facts(dag_id, file, kwargs, docstring=ast.get_docstring(function) or "")

    def _facts(self, dag_id: str, file: str, kwargs: dict[str, ast.expr], *, docstring: str) -> DagFacts:
        parts = [self.text(kwargs.get("description")), self.text(kwargs.get("doc_md")), docstring]
        doc = "\n\n".join(dict.fromkeys(p.strip() for p in parts if p and p.strip()))
        schedule_node = next((kwargs[k] for k in _DAG_SCHEDULE_KEYS if k in kwargs), None)
        return DagFacts(
            dag_id=dag_id,
            file=file,
            doc=doc[:MAX_DOC],
            tags=self.strings(kwargs.get("tags")),
            schedule=self.schedule(schedule_node),
            owners=self.owners(kwargs.get("default_args")) or ([o] if (o := self.text(kwargs.get("owner"))) else []),
        )

    # -- tasks and connections ---------------------------------------------------------------------------------
    def add_tasks(self, dag: DagFacts, nodes) -> None:
        for node in nodes:
            if isinstance(node, ast.Call):
                name = _callee_name(node)
                task_id = self.text(next((kw.value for kw in node.keywords if kw.arg == "task_id"), None))
                if task_id and name and name[0].isupper():
                    dag.task_ids.append(task_id)
                    dag.operators.append(name)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                for decorator in node.decorator_list:
                    name = _callee_name(decorator)
                    if name == "task" or name.startswith("task."):
                        kwargs = decorator.keywords if isinstance(decorator, ast.Call) else []
                        task_id = self.text(next((kw.value for kw in kwargs if kw.arg == "task_id"), None))
                        dag.task_ids.append(task_id or node.name)
                        dag.operators.append(f"@{name}")

    def add_connections(self, dag: DagFacts, nodes) -> None:
        for node in nodes:
            if isinstance(node, ast.keyword) and node.arg and node.arg.endswith("conn_id"):
                conn_id = self.text(node.value)
                if conn_id:
                    dag.connections.append(conn_id)
