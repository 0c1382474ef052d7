"""Dependencies check: what a release says it needs, and whether the Airflow environment has it.

What a release declares is read by declarations.py (PEP 723, docstrings, requirements.txt, pyproject.toml).

Checks against an `Environment` (by default the interpreter running this code, i.e. the one that parses the
DAGs; tests and a future venv builder pass their own):
- `dependency-missing`: the distribution is not installed at all;
- `dependency-version`: it is installed, at a version outside the specifier;
- `provider-missing`: a DAG file imports `airflow.providers.X` while `apache-airflow-providers-X` is not
  installed. The imports check reports the same import as `missing-module`; the pipeline keeps only this
  finding, which names the pip distribution (`without_duplicate_provider_findings`).
- `dependency-conflict` across namespaces (`dependency_conflicts`, `conflicts_for`): pure functions over the
  requirements that releases store in their validation summary (`summary["requirements"]`).

Requirements whose environment marker is false for the environment are kept (a venv with another Python
may need them) but not checked. Extras (`pkg[extra]`) are checked as the base distribution only.
"""

from __future__ import annotations

import importlib.metadata
import logging
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from packaging.markers import UndefinedComparison, UndefinedEnvironmentName, default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from airflow_dagops.validate.declarations import Declarations, DeclaredRequirement, read_declarations
from airflow_dagops.validate.imports import (
    ModuleResolver,
    collect_imports,
    parse_python_file,
    provider_distribution,
    python_files_in_release,
    settle_shims,
)
from airflow_dagops.validate.report import Finding

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10: the tomli backport; without it, TOML declarations are not read
    try:
        import tomli as tomllib
    except ModuleNotFoundError:
        tomllib = None  # type: ignore[assignment]  # _load_toml checks `tomllib is None` before any use

log = logging.getLogger(__name__)

RULES = {
    "dependency-invalid": (
        "A dependency declaration (PEP 723 block, docstring `Dependencies:` list, requirements.txt or "
        "pyproject.toml) cannot be parsed, or a requirements.txt include points outside the repository."
    ),
    "dependency-option-ignored": (
        "A requirements.txt line dagops cannot check (a pip option such as --index-url, an editable or a path/URL "
        "requirement); it is ignored."
    ),
    "dependency-missing": "A declared requirement's distribution is not installed in the Airflow environment.",
    "dependency-version": "A declared requirement's distribution is installed at a version outside its specifier.",
    "provider-missing": (
        "A DAG file imports `airflow.providers.X` but the provider distribution apache-airflow-providers-X is not "
        "installed in the Airflow environment."
    ),
    "dependency-conflict": "Two namespaces need incompatible versions of one library (reported on both).",
}


# --- The environment checked against ------------------------------------------------------------------------------


class Environment(Protocol):
    def version(self, distribution: str) -> str | None:
        """The installed version of a distribution, or None when it is not installed."""

    def markers(self) -> dict[str, str]:
        """Values for PEP 508 environment markers (python_version, sys_platform, ...)."""


class InstalledEnvironment:
    """The interpreter running this code: the Airflow environment that parses the DAGs."""

    def version(self, distribution: str) -> str | None:
        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            return None

    def markers(self) -> dict[str, str]:
        return {name: str(value) for name, value in default_environment().items()}  # a TypedDict of str


@dataclass(frozen=True)
class KnownEnvironment:
    """A fixed set of installed distributions (tests; later, what a per-namespace venv reports)."""

    installed: Mapping[str, str] = field(default_factory=dict)
    marker_values: Mapping[str, str] | None = None

    def version(self, distribution: str) -> str | None:
        wanted = canonicalize_name(distribution)
        return next((v for name, v in self.installed.items() if canonicalize_name(name) == wanted), None)

    def markers(self) -> dict[str, str]:
        return {**InstalledEnvironment().markers(), **(self.marker_values or {})}


def applies(requirement: Requirement, environment: Environment) -> bool:
    """False when the requirement's marker excludes this environment (`pkg; python_version < "3.9"`)."""
    if requirement.marker is None:
        return True
    try:
        return requirement.marker.evaluate({"extra": "", **environment.markers()})
    except (UndefinedComparison, UndefinedEnvironmentName, InvalidVersion):
        return True  # a marker that cannot be decided here: check the requirement rather than hide it


# PEP 723 ---------------------------------------------------------------------------------------------------------


# Docstring -------------------------------------------------------------------------------------------------------


# requirements.txt ------------------------------------------------------------------------------------------------


# pyproject.toml --------------------------------------------------------------------------------------------------


# --- Checking declarations ----------------------------------------------------------------------------------------


def check_requirements(requirements: Iterable[DeclaredRequirement], environment: Environment) -> list[Finding]:
    """`dependency-missing` / `dependency-version` for each requirement the environment does not satisfy."""
    findings = []
    for declared in requirements:
        if not applies(declared.requirement, environment):
            continue
        installed = environment.version(declared.requirement.name)
        finding = _check_one(declared, installed)
        if finding is not None:
            findings.append(finding)
    return findings


def _check_one(declared: DeclaredRequirement, installed: str | None) -> Finding | None:
    requirement = declared.requirement
    name = requirement.name
    if installed is None:
        return Finding(
            rule="dependency-missing",
            severity="error",
            file=declared.file,
            line=declared.line,
            message=f"`{requirement}` is declared but no distribution `{name}` is installed in the Airflow environment",
            hint=f"Install it (pip install '{requirement}') into the image or requirements of the dag-processor and "
            "workers, or remove the declaration if the DAGs no longer need it.",
        )
    if not requirement.specifier or _satisfies(requirement, installed):
        return None
    return Finding(
        rule="dependency-version",
        severity="error",
        file=declared.file,
        line=declared.line,
        message=f"`{requirement}` is declared but `{name}` {installed} is installed in the Airflow environment",
        hint=f"Install a matching version (pip install '{requirement}') into the Airflow environment, or change "
        f"the declaration to accept {installed} if the DAGs work with it.",
    )


def _satisfies(requirement: Requirement, installed: str) -> bool:
    try:
        version = Version(installed)
    except InvalidVersion:
        return False  # not a PEP 440 version: no specifier can be shown to hold
    return requirement.specifier.contains(version, prereleases=True)  # an installed pre-release counts as itself


# --- Providers ----------------------------------------------------------------------------------------------------


def check_providers(root: Path, files: list[str], environment: Environment | None = None) -> list[Finding]:
    """`provider-missing` for each `airflow.providers.X` module a DAG file imports at parse time whose provider
    distribution is not installed (one finding per module and file, at its first import, like `missing-module`)."""

    environment = environment or InstalledEnvironment()
    root = Path(root)
    resolver = ModuleResolver(root)
    findings = []
    for relative, path in python_files_in_release(root, files):
        if not _mentions_providers(path):
            continue
        tree = parse_python_file(path, relative)
        if tree is None:
            continue
        reported: set[str] = set()
        for imported in settle_shims(collect_imports(tree), resolver):
            if imported.runtime:
                continue  # the imports check warns about those (missing-module-runtime)
            if imported.fallback_works:
                continue  # a compatibility shim whose `except ImportError` fallback imports: the imports check's info
            for module in _provider_modules(imported):
                if module in reported:
                    continue
                reported.add(module)
                finding = _provider_finding(relative, imported.line, module, environment, resolver)
                if finding is not None:
                    findings.append(finding)
    return findings


def _mentions_providers(path: Path) -> bool:
    try:
        return b"airflow.providers" in path.read_bytes()
    except OSError:
        return False


def _provider_modules(imported) -> list[str]:
    if imported.module == "airflow.providers":  # `from airflow.providers import amazon`
        return [f"airflow.providers.{name}" for name in imported.names]
    return [imported.module] if imported.module.startswith("airflow.providers.") else []


def _provider_finding(relative: str, line: int, module: str, environment: Environment, resolver) -> Finding | None:

    distribution = provider_distribution(module, resolver)
    if environment.version(distribution) is not None:
        return None  # installed: a module missing inside it is the imports check's `missing-module`
    return Finding(
        rule="provider-missing",
        severity="error",
        file=relative,
        line=line,
        message=f"`{module}` is imported but the provider distribution `{distribution}` is not installed in the "
        "Airflow environment",
        hint=f"Install it (pip install {distribution}) into the image or requirements of the dag-processor and "
        f"workers, and declare it (requirements.txt: {distribution}) so dagops checks its version.",
    )


def without_duplicate_provider_findings(findings: list[Finding]) -> list[Finding]:
    """Drop the imports check's `missing-module` for an import `provider-missing` already reports (same file, line
    and module; both messages name the module first, in backticks): one finding per problem, the one naming the
    pip distribution."""
    covered = {(f.file, f.line, _first_quoted(f.message)) for f in findings if f.rule == "provider-missing"}
    return [
        f
        for f in findings
        if not (f.rule == "missing-module" and (f.file, f.line, _first_quoted(f.message)) in covered)
    ]


def _first_quoted(message: str) -> str | None:
    found = re.search(r"`([^`]+)`", message)
    return found.group(1) if found else None


# --- The step -----------------------------------------------------------------------------------------------------


def check_declarations(root: Path, files: list[str], environment: Environment | None = None) -> Declarations:
    """The pipeline's release-level half: read every declaration, then check the applicable ones."""
    declarations = read_declarations(root, files)
    environment = environment or InstalledEnvironment()
    declarations.findings += check_requirements(declarations.requirements, environment)
    return declarations


# --- Across namespaces --------------------------------------------------------------------------------------------


def dependency_conflicts(
    by_namespace: Mapping[str, Iterable[Requirement | DeclaredRequirement]],
    environment: Environment | None = None,
) -> dict[str, list[Finding]]:
    """`dependency-conflict` findings per namespace, for every pair of namespaces whose requirements of one library
    cannot both hold in the one Airflow environment they share.

    Incompatible means: both pin `==` different versions, or one pins a version the other's specifier excludes.
    (Deciding whether two ranges intersect on the versions that exist would need the package index.) Each
    conflict is reported on both sides, naming the other namespace and its requirement. Requirements whose marker
    excludes `environment` (default: this interpreter) are left out.
    """
    environment = environment or InstalledEnvironment()
    declared = {
        namespace: [_as_declared(r) for r in requirements if applies(_as_declared(r).requirement, environment)]
        for namespace, requirements in by_namespace.items()
    }
    findings: dict[str, list[Finding]] = {namespace: [] for namespace in declared}
    seen: set[tuple[str, str, str, str]] = set()
    namespaces = sorted(declared)
    for index, namespace in enumerate(namespaces):
        for other in namespaces[index + 1 :]:
            for mine in declared[namespace]:
                for theirs in declared[other]:
                    if mine.name != theirs.name or not _incompatible(mine.requirement, theirs.requirement):
                        continue
                    _add_conflict(findings, seen, namespace, mine, other, theirs)
                    _add_conflict(findings, seen, other, theirs, namespace, mine)
    return findings


def conflicts_for(
    namespace: str,
    requirements: Iterable[Requirement | DeclaredRequirement],
    others: Mapping[str, Iterable[Requirement | DeclaredRequirement]],
    environment: Environment | None = None,
) -> list[Finding]:
    """One namespace's side of `dependency_conflicts`: its candidate release against the other live releases."""
    others = {name: reqs for name, reqs in others.items() if name != namespace}
    return dependency_conflicts({**others, namespace: requirements}, environment)[namespace]


def _as_declared(requirement: Requirement | DeclaredRequirement) -> DeclaredRequirement:
    return requirement if isinstance(requirement, DeclaredRequirement) else DeclaredRequirement(requirement)


def _add_conflict(findings, seen, namespace, mine: DeclaredRequirement, other, theirs: DeclaredRequirement) -> None:
    key = (namespace, str(mine.requirement), other, str(theirs.requirement))
    if key in seen:
        return  # the same pair declared in several files: report it once, at the first declaration
    seen.add(key)
    findings[namespace].append(
        Finding(
            rule="dependency-conflict",
            severity="error",
            file=mine.file,
            line=mine.line,
            message=f"`{mine.requirement}` conflicts with `{theirs.requirement}` needed by namespace `{other}` "
            f"({theirs.location()}): both run in one Airflow environment",
            hint=f"Agree on one version of `{mine.requirement.name}` with the owners of `{other}`, or run one of "
            "them in its own environment.",
        )
    )


def _incompatible(first: Requirement, second: Requirement) -> bool:
    pinned_first, pinned_second = _pinned(first), _pinned(second)
    if pinned_first is not None and pinned_second is not None:
        return pinned_first != pinned_second
    if pinned_first is not None:
        return not second.specifier.contains(pinned_first, prereleases=True)
    if pinned_second is not None:
        return not first.specifier.contains(pinned_second, prereleases=True)
    return False


def _pinned(requirement: Requirement) -> Version | None:
    """The version an exact `==X` (no wildcard) or `===X` pin names; None for ranges and unparsable pins."""
    for specifier in requirement.specifier:
        if specifier.operator in ("==", "===") and not specifier.version.endswith(".*"):
            try:
                return Version(specifier.version)
            except InvalidVersion:
                return None
    return None
