"""The status enums (airflow_dagops/statuses.py) against what the code stores and what the API documents.

The DB columns are plain strings, so nothing but these tests stops a `release.status = "faild"` or a status the
docs never mention. The scan reads the package's source: every string written to, or compared with, a status
of a known kind must be a member of that kind's enum, and an enum member used there must be of the right enum.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from enum import Enum
from pathlib import Path

import pytest

import airflow_dagops
from airflow_dagops import statuses
from airflow_dagops.statuses import (
    CheckStatus,
    PromotionStatus,
    ReleaseStatus,
    RepositoryStatus,
    SyncOutcomeStatus,
    SyncRunStatus,
)
from airflow_dagops.store import models

PACKAGE = Path(airflow_dagops.__file__).parent
DOCS = Path(__file__).resolve().parent.parent / "docs" / "api.md"
ENUMS = {cls.__name__: cls for cls in (CheckStatus, PromotionStatus, ReleaseStatus, SyncOutcomeStatus, SyncRunStatus)}

# `<receiver>.status`: whose status it is, by model class (Release.status) or by the name the code gives the row.
RECEIVERS: dict[str, type[Enum]] = {
    "Release": ReleaseStatus,
    "release": ReleaseStatus,
    "live": ReleaseStatus,
    "adopted": ReleaseStatus,
    "previous": ReleaseStatus,
    "target": ReleaseStatus,
    "candidate": ReleaseStatus,
    "SyncRun": SyncRunStatus,
    "run": SyncRunStatus,
    "busy": SyncRunStatus,
    "last": SyncRunStatus,
    "CheckRun": CheckStatus,
    "check": CheckStatus,
    "Promotion": PromotionStatus,
    "promotion": PromotionStatus,
    "outcome": SyncOutcomeStatus,
}
# Calls that take a status: (function or class name, positional index) -> enum; `status=` keywords of the models.
POSITIONAL = {
    ("finish_run", 1): SyncRunStatus,
    ("record_run", 3): SyncRunStatus,
    ("SyncOutcome", 1): SyncOutcomeStatus,
}
CONSTRUCTORS = {
    "Release": ReleaseStatus,
    "SyncRun": SyncRunStatus,
    "CheckRun": CheckStatus,
    "Promotion": PromotionStatus,
}
# Module-level helpers whose second argument is a status, by module.
MODULE_POSITIONAL = {("checks/service.py", "_finish", 1): CheckStatus}


def _receiver(node: ast.expr) -> type[Enum] | None:
    """The enum of `x.status` (or `x.status.in_`) for a receiver `x` we know."""
    if isinstance(node, ast.Attribute) and node.attr == "status":
        base = node.value
        name = base.id if isinstance(base, ast.Name) else base.attr if isinstance(base, ast.Attribute) else None
        return RECEIVERS.get(name) if name else None
    return None


class _Scan(ast.NodeVisitor):
    def __init__(self, relative: str, constants: dict[str, ast.expr]) -> None:
        self.relative = relative
        self.constants = constants  # module-level NAME = (...) the code compares with (promotion.OPEN)
        self.found: list[tuple[type[Enum], str, str]] = []  # (enum, value or "Enum.MEMBER", where)

    def values(self, enum: type[Enum], node: ast.expr | None, line: int) -> None:
        """Record the status values an expression stands for: literals, enum members, tuples, ternaries."""
        where = f"{self.relative}:{line}"
        if node is None:
            return
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            self.found.append((enum, node.value, where))
        elif isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            for item in node.elts:
                self.values(enum, item, line)
        elif isinstance(node, ast.IfExp):
            self.values(enum, node.body, line)
            self.values(enum, node.orelse, line)
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in ENUMS:
            self.found.append((enum, f"{node.value.id}.{node.attr}", where))
        elif isinstance(node, ast.Name) and node.id in self.constants:
            self.values(enum, self.constants[node.id], line)

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                # run.status, run.ended_at = "failed", now (a starred target may make them differ in length)
                pairs = list(zip(target.elts, node.value.elts, strict=False))
            else:
                pairs = [(target, node.value)]
            for left, right in pairs:
                enum = _receiver(left)
                if enum is not None:
                    self.values(enum, right, node.lineno)
        self.generic_visit(node)

    def visit_Compare(self, node: ast.Compare) -> None:
        sides = [node.left, *node.comparators]
        for index, side in enumerate(sides):
            enum = _receiver(side)
            if enum is not None:
                for other in sides[:index] + sides[index + 1 :]:
                    self.values(enum, other, node.lineno)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
        if isinstance(func, ast.Attribute) and func.attr == "in_":  # Release.status.in_(("validated", "live"))
            enum = _receiver(func.value)
            if enum is not None and node.args:
                self.values(enum, node.args[0], node.lineno)
        for (called, index), enum in POSITIONAL.items():
            if name == called and len(node.args) > index:
                self.values(enum, node.args[index], node.lineno)
        for (module, called, index), enum in MODULE_POSITIONAL.items():
            if self.relative == module and name == called and len(node.args) > index:
                self.values(enum, node.args[index], node.lineno)
        if name in CONSTRUCTORS:
            for keyword in node.keywords:
                if keyword.arg == "status":
                    self.values(CONSTRUCTORS[name], keyword.value, node.lineno)
        self.generic_visit(node)


def _scan_package() -> list[tuple[type[Enum], str, str]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative.startswith("store/migrations/"):
            continue  # history: a migration keeps the values of its time
        tree = ast.parse(path.read_text(), filename=str(path))
        constants = {
            target.id: statement.value
            for statement in tree.body
            if isinstance(statement, ast.Assign) and isinstance(statement.value, (ast.Tuple, ast.List))
            for target in statement.targets
            if isinstance(target, ast.Name)
        }
        scan = _Scan(relative, constants)
        scan.visit(tree)
        found += scan.found
    return found


FOUND = _scan_package()


def test_the_scan_sees_every_kind_of_status():
    """Guards the test itself: a refactoring that hid the statuses from the scan must not make it pass empty."""
    kinds = defaultdict(set)
    for enum, value, _ in FOUND:
        kinds[enum].add(value)
    for enum in ENUMS.values():
        assert len(kinds[enum]) >= 2, f"the scan found almost no {enum.__name__} values: {sorted(kinds[enum])}"


@pytest.mark.parametrize("enum", ENUMS.values(), ids=ENUMS)
def test_every_status_the_code_uses_is_a_member_of_its_enum(enum):
    values = {member.value for member in enum}
    members = {f"{enum.__name__}.{member.name}" for member in enum}
    wrong = sorted(
        f"{where}: {value!r}"
        for kind, value, where in FOUND
        if kind is enum and value not in values and value not in members
    )
    assert wrong == [], f"not {enum.__name__} values (a typo, another kind's status, or a new status to add)"


def test_status_columns_name_their_enum():
    """Every `status` column of the state DB says which enum it holds, and a stored default is a member."""
    columns = {
        mapper.class_.__name__: mapper.columns["status"]
        for mapper in models.Base.registry.mappers
        if "status" in mapper.columns
    }
    expected = {
        "Release": ReleaseStatus,
        "SyncRun": SyncRunStatus,
        "CheckRun": CheckStatus,
        "Promotion": PromotionStatus,
    }
    for model, enum in expected.items():
        assert columns[model].info.get("enum") is enum, model
    default = columns["SyncRun"].default
    assert default is not None and SyncRunStatus(default.arg) is SyncRunStatus.RUNNING


def test_members_are_their_strings():
    """What keeps the DB and the API unchanged: a member is equal to, hashes like and prints as its value."""
    for enum in (*ENUMS.values(), RepositoryStatus):
        assert issubclass(enum, str) and issubclass(enum, statuses.StrEnum)
        for member in enum:
            assert member == member.value and hash(member) == hash(member.value)
            assert str(member) == f"{member}" == member.value
            assert enum(member.value) is member


# -- docs/api.md and the OpenAPI document list the same values ---------------------------------------------------
def _documented(section: str) -> set[str]:
    """The backticked words of the `status`: paragraph after the **Section** heading of docs/api.md."""
    text = DOCS.read_text()
    heading = re.search(rf"^\*\*{section}\*\*$", text, re.M)
    assert heading, f"docs/api.md: no **{section}** heading"
    found = re.search(r"^`status`:(.*?)(?:\n\n|\n\*\*)", text[heading.end() :], re.S | re.M)
    assert found, f"docs/api.md: no `status`: paragraph after **{section}**"
    return set(re.findall(r"`([a-z_]+)`(?: \(|,|\.|$| or)", found.group(1), re.M))


def test_docs_list_the_sync_run_statuses():
    assert _documented("SyncRun") == {status.value for status in SyncRunStatus}


def test_docs_list_the_release_statuses():
    assert _documented("Release") == {status.value for status in ReleaseStatus}


def test_docs_list_the_repository_statuses():
    text = DOCS.read_text()
    block = text[text.index("`status` is one of:") :].split("\n\n", 1)[0]
    assert set(re.findall(r"^- `([a-z_]+)`:", block, re.M)) == {status.value for status in RepositoryStatus}


def _openapi_status_enums() -> dict[str, set[str]]:
    from airflow_dagops.api import promotion, webhooks  # noqa: F401 - they register their schemas
    from airflow_dagops.api.openapi import document

    schemas = document()["components"]["schemas"]
    return {
        name: set(schema["properties"]["status"]["enum"])
        for name, schema in schemas.items()
        if "enum" in schema.get("properties", {}).get("status", {})
    }


@pytest.mark.parametrize(
    ("schema", "enum"),
    [
        ("SyncRun", SyncRunStatus),
        ("Repository", RepositoryStatus),
        ("CheckRun", CheckStatus),
        ("PromotionRecord", PromotionStatus),
        ("Release", ReleaseStatus),
    ],
)
def test_openapi_lists_the_same_statuses(schema, enum):
    assert _openapi_status_enums()[schema] == {status.value for status in enum}
