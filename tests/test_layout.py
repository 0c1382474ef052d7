"""The package layout holds: lower layers never import upper ones, no import cycles (function-level imports
included), no function-level import that hides a dependency without saying why, and no module over 500 lines
without a reason at its top. docs/architecture.md draws the same layers.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "airflow_dagops"

# Lowest first. A package may import from its own package and from any package of a lower layer only.
LAYERS: list[set[str]] = [
    # errors, settings, paths, safety, redaction, tempdirs, statuses, release_manifest, metrics, __init__
    {"foundation"},
    {"store"},
    {"health"},  # reads only the store: the event feed measures through it, every face shows it
    {"airflow"},
    {"git"},
    {"alerts"},  # notifiers and release health: the event feed calls it after every sync, so it sits below events
    {"events"},
    {"validate"},
    {"deploy"},
    {"releases"},
    {"repositories"},
    {"sync"},
    {"bundle"},  # the dagops-releases DAG bundle: live sets over deploy/ and git/, read by Airflow and the faces
    {"credentials", "checks", "proposals", "marketplace", "webhooks", "discovery", "experiments"},
    {"assist"},  # what assistants need (DAG search, conventions, drafts, run results), over proposals/marketplace
    {"testing"},
    {"api", "www", "cli", "mcp"},
    {"plugin"},  # plugin.py mounts the faces into Airflow
]
# Same-layer dependencies that are part of the design (the webhook receiver runs pull-request checks).
SIDEWAYS = {("webhooks", "checks"), ("www", "api"), ("api", "www"), ("mcp", "api"), ("cli", "mcp")}
# mcp uses api/auth (the one permission check); `dagops mcp` serves the MCP server over stdio.
MAX_LINES = 500
# A function-level import of our own code must say why on its line (`# lazy: <reason>`): start-up time of the
# CLI or of the sandbox, or a module that must not load in the dag-processor. It may not dodge a cycle.
LAZY_MARK = "# lazy:"


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = _modules()


def _package_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "foundation"
    if len(parts) == 2 and (PACKAGE / f"{parts[1]}.py").exists():
        return "plugin" if parts[1] == "plugin" else "foundation"
    return parts[1]


def _rank(package: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if package in layer)


def _target(module: str, node: ast.ImportFrom | ast.Import, alias: ast.alias) -> str | None:
    if isinstance(node, ast.Import):
        name = alias.name
    else:
        if node.level:
            base = module.split(".")
            if not str(MODULES[module]).endswith("__init__.py"):
                base = base[:-1]
            base = base[: len(base) - (node.level - 1)]
            name = ".".join(base + ([node.module] if node.module else []))
        else:
            name = node.module or ""
        if f"{name}.{alias.name}" in MODULES:
            name = f"{name}.{alias.name}"
    return name if name in MODULES else None


def _imports() -> list[tuple[str, str, bool, str]]:
    """(importer, imported, at module level, source line) for every import of our own modules."""
    found = []
    for module, path in MODULES.items():
        source = path.read_text()
        lines = source.splitlines()
        tree = ast.parse(source)
        top = {id(node) for node in tree.body}
        for stmt in tree.body:  # imports under `if TYPE_CHECKING:` count as module level
            if isinstance(stmt, ast.If):
                top.update(id(node) for node in stmt.body)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for alias in node.names:
                    target = _target(module, node, alias)
                    if target and target != module:
                        found.append((module, target, id(node) in top, lines[node.lineno - 1]))
    return found


IMPORTS = _imports()


def test_every_package_has_a_layer():
    packages = {_package_of(m) for m in MODULES}
    unknown = sorted(p for p in packages if not any(p in layer for layer in LAYERS))
    assert not unknown, f"add these packages to LAYERS here and in docs/architecture.md: {unknown}"


def test_lower_layers_never_import_upper_ones():
    wrong = []
    for importer, imported, _top, line in IMPORTS:
        mine, theirs = _package_of(importer), _package_of(imported)
        if mine == theirs or (mine, theirs) in SIDEWAYS:
            continue
        if _rank(theirs) >= _rank(mine):
            wrong.append(f"{importer} ({mine}) imports {imported} ({theirs}): {line.strip()}")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles():
    graph = defaultdict(set)
    for importer, imported, _top, _line in IMPORTS:
        graph[importer].add(imported)
    cycles = []
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(
                    " -> ".join(trail[trail.index(nxt) :] + [node, nxt]) if nxt in trail else f"{node}->{nxt}"
                )
            elif nxt not in state:
                visit(nxt, trail + [node])
        state[node] = 2

    for module in sorted(MODULES):
        if module not in state:
            visit(module, [])
    assert not cycles, "\n".join(cycles)


def test_function_level_imports_say_why():
    silent = [
        f"{importer}: {line.strip()}" for importer, _imported, top, line in IMPORTS if not top and LAZY_MARK not in line
    ]
    assert not silent, "move these imports to the top of the module, or say why with `# lazy: <reason>`:\n" + (
        "\n".join(silent)
    )


@pytest.mark.parametrize("module", sorted(MODULES))
def test_long_modules_say_why(module):
    path = MODULES[module]
    lines = path.read_text().count("\n")
    if lines <= MAX_LINES:
        return
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    assert "Size:" in doc, (
        f"{path.relative_to(PACKAGE.parent)} has {lines} lines: split it by capability, or say at its top "
        "(a 'Size:' paragraph in the module docstring) why it is one module"
    )


def test_migrations_are_frozen_in_time():
    """A revision runs long after it was written, against code that has changed since: it imports nothing of the
    package and copies the little it needs (0011's `url_origin`). Only env.py, which is today's, uses the store."""
    reaching = []
    for path in sorted((PACKAGE / "store" / "migrations" / "versions").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            reaching += [f"{path.name}: {name}" for name in names if name.split(".")[0] == "airflow_dagops"]
    assert not reaching, "copy what these migrations import into them (with a comment why):\n" + "\n".join(reaching)
