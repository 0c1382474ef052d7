"""The validation gate: `validate(release_dir) -> Report`. A release with an error is never published."""

from __future__ import annotations

from airflow_dagops.validate.report import Finding, Report
from airflow_dagops.validate.syntax import check_syntax

__all__ = ["Finding", "Report", "validate"]


def validate(release_dir, *, extra_findings: list[Finding] | None = None) -> Report:
    """Run every check over an exported release folder and collect the findings."""
    report = Report(findings=list(extra_findings or []))
    report.findings.extend(check_syntax(release_dir))
    return report
