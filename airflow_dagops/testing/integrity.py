"""`pytest --dagops-integrity PATH`: the validation pipeline as one test per DAG file.

The verdict is the one `dagops validate PATH` and a deploy give (same pipeline, same rules file, same
cache keyed by content), so a DAG that passes here is not refused at deploy time for a reason the
author never saw. The pipeline runs once, when the items are collected; each item reports its file's
errors (warnings are shown in its report section). Findings that belong to no file (an unusable
operator rules file, a missing tool) get an item of their own.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_dagops.errors import DagOpsError
from airflow_dagops.validate import validate
from airflow_dagops.validate.config import ConfigError
from airflow_dagops.validate.files import list_files
from airflow_dagops.validate.folder import user_cache_path
from airflow_dagops.validate.report import Finding

CONFIG_ITEM = "(repository)"


class IntegrityFailure(Exception):
    """Raised by an item whose file has validation errors; rendered as the list of findings."""

    def __init__(self, errors: list, warnings: list):
        super().__init__(f"{len(errors)} validation error(s)")
        self.errors = errors
        self.warnings = warnings


class IntegrityCollector(pytest.Collector):
    """Validates the folder once and yields an item per DAG file (and per file that has findings)."""

    def __init__(self, *, folder: Path, label: str, use_cache: bool, **kwargs):
        super().__init__(**kwargs)
        self.folder = folder
        self.label = label
        self.use_cache = use_cache

    def collect(self) -> Iterator[IntegrityItem]:
        try:
            report = self._validate()
        except (DagOpsError, ConfigError) as err:
            # The operator's rules file or a setting is unusable: nothing was validated, and one item says why.
            finding = Finding(rule="config-invalid", severity="error", message=str(err))
            yield self._item(CONFIG_ITEM, [finding])
            return
        by_file: dict[str | None, list] = {}
        for finding in report.findings:
            by_file.setdefault(finding.file, []).append(finding)
        files = sorted(_dag_files(self.folder) | {d.file for d in report.dags} | {f for f in by_file if f})
        for file in files:
            yield self._item(file, by_file.get(file, []))
        if None in by_file:
            yield self._item(CONFIG_ITEM, by_file[None])

    def _item(self, name: str, findings: list) -> IntegrityItem:
        # A node id like a test's, `dags/orders.py::integrity`, so the summary names the file plainly.
        prefix = "" if self.label == "." else f"{self.label}/"
        nodeid = f"{prefix}{name}::integrity" if name != CONFIG_ITEM else f"{self.label}::integrity"
        return IntegrityItem.from_parent(self, name=name, nodeid=nodeid, findings=findings)

    def _validate(self):

        with warnings.catch_warnings():
            # The checkers' own deprecation notices (bandit's plugin loader) are noise in a test report.
            warnings.simplefilter("ignore", DeprecationWarning)
            return validate(self.folder, use_cache=self.use_cache, cache_path=user_cache_path())


class IntegrityItem(pytest.Item):
    def __init__(self, *, findings: list, **kwargs):
        super().__init__(**kwargs)
        self.findings = findings
        self.add_marker("dagops_integrity")

    def runtest(self) -> None:
        errors = [f for f in self.findings if f.severity == "error"]
        warnings = [f for f in self.findings if f.severity == "warning"]
        if warnings:
            self.add_report_section("call", "dagops warnings", _render(warnings))
        if errors:
            raise IntegrityFailure(errors, warnings)

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, IntegrityFailure):
            return _render(excinfo.value.errors)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        return self.parent.folder / self.name, None, f"dagops integrity: {self.name}"


def _render(findings: list) -> str:
    lines = []
    for f in findings:
        where = f"{f.location()} " if f.location() else ""
        lines.append(f"{where}[{f.rule}] {f.severity}: {f.message}")
        if f.hint:
            lines.append(f"    hint: {f.hint}")
    return "\n".join(lines)


def _dag_files(folder: Path) -> set[str]:
    """Python files Airflow would parse for DAGs (its own heuristic: they mention 'airflow' and 'dag')."""

    found = set()
    for file in list_files(folder):
        path = folder / file
        if not file.endswith(".py") or path.is_symlink():
            continue
        try:
            content = path.read_bytes().lower()
        except OSError:
            continue
        if b"airflow" in content and (b"dag" in content or b"asset" in content):
            found.add(file)
    return found


def make_collectors(session: pytest.Session, folders: list[Path], *, use_cache: bool) -> list[IntegrityCollector]:
    collectors = []
    for folder in folders:
        label = _label(session, folder)
        collectors.append(
            IntegrityCollector.from_parent(
                session, name=f"dagops-integrity[{label}]", folder=folder, label=label, use_cache=use_cache
            )
        )
    return collectors


def _label(session: pytest.Session, folder: Path) -> str:
    try:
        return folder.relative_to(session.config.rootpath).as_posix() or "."
    except ValueError:
        return str(folder)
