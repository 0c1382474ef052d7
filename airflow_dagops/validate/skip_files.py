"""The per-repository gate: `on_invalid: block` (default) holds back the whole release on any error;
`on_invalid: skip_files` publishes it without the failing files, through `.airflowignore`, but only when
no file that would still be published imports one of them."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from airflow_dagops.release_manifest import forget_in_manifest
from airflow_dagops.validate.files import list_files
from airflow_dagops.validate.local_imports import local_dependencies, read_imports
from airflow_dagops.validate.report import Finding, Report
from airflow_dagops.wording import plural

RULES = {
    "files-skipped": "The release is published without files that failed validation (on_invalid: skip_files).",
    "skip-files-refused": "Failing files could not be skipped because published files import them.",
    "venv-build-failed": "The repository's isolated environment (isolated_env) could not be built.",
    "venv-ready": "The repository's isolated environment is ready (built or reused).",
    "test-failed": "A test of the repository's own tests/ failed (tests: required blocks the release).",
    "perf-regression": "A parse or mocked task run time the tests measured is slower than the live release's "
    "beyond [dagops] perf_regression_threshold and perf_regression_floor (tests: required blocks the release).",
}


def apply_gate(release_dir: Path, report: Report) -> Report:
    """Return the report the publish decision is made on (unchanged for `block` or a passing report)."""
    if report.passed or getattr(report.config, "on_invalid", "block") != "skip_files":
        return report
    failing: set[str] = set()
    for error in report.errors:
        if error.file is None or not error.file.endswith(".py"):
            return report  # an error about the release as a whole, or a config file: nothing to skip
        failing.add(error.file)

    python = [f for f in list_files(release_dir) if f.endswith(".py")]
    depends = local_dependencies(python, read_imports(release_dir, python))
    importers = sorted(f for f in python if f not in failing and depends.get(f, set()) & failing)
    if importers:
        refusal = Finding(
            "skip-files-refused",
            "error",
            f"cannot skip {', '.join(sorted(failing))}: imported by {', '.join(importers[:5])}",
            hint="Fix the failing files, or the files that import them.",
        )
        return replace(report, findings=[*report.findings, refusal])
    _ignore_files(release_dir, sorted(failing))
    findings = [
        replace(f, severity="warning", message=f"[skipped, not published] {f.message}") if f.file in failing else f
        for f in report.findings
    ]
    findings.append(
        Finding(
            "files-skipped",
            "info",
            f"published without {plural(len(failing), 'failing file')}: {', '.join(sorted(failing))}",
            hint="Fix them to publish them again.",
        )
    )
    return replace(report, findings=findings)


def _ignore_files(release_dir: Path, files: list[str]) -> None:
    """Append to the release's `.airflowignore`. The release is not published yet, but its files may be
    hard links shared with older releases: write a new file, never modify the linked one in place."""
    ignore = release_dir / ".airflowignore"
    existing = ignore.read_text() if ignore.exists() else ""
    missing = [f for f in files if f not in existing.splitlines()]
    if not missing:
        return
    lines = [existing.rstrip("\n")] if existing.strip() else []
    lines.append("# added by dagops: these files failed validation (on_invalid: skip_files)")
    lines.extend(missing)
    tmp = release_dir / ".airflowignore.dagops-tmp"
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, ignore)
    forget_in_manifest(release_dir, ".airflowignore")
