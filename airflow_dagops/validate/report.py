"""Findings and reports: what a check found, where, and how to fix it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from airflow_dagops.wording import plural

SEVERITIES = ("error", "warning", "info")


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str
    message: str
    file: str | None = None
    line: int | None = None
    hint: str | None = None

    def location(self) -> str:
        if not self.file:
            return ""
        return f"{self.file}:{self.line}" if self.line else self.file

    def to_dict(self) -> dict:
        return asdict(self)


def dag_summary(dag) -> dict:
    """What a release's validation summary keeps of one DAG (enough for `airflow_dagops.releases.diff`)."""
    return {
        "dag_id": dag.dag_id,
        "file": dag.file,
        "owners": list(getattr(dag, "owners", None) or []),
        "tags": list(getattr(dag, "tags", None) or []),
        "retries": getattr(dag, "retries", None),
        "schedule": getattr(dag, "schedule", None),
        "task_ids": list(getattr(dag, "task_ids", None) or []),
    }


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    dags: list = field(default_factory=list)  # what the structure step loaded (structure.DagInfo)
    stats: dict = field(default_factory=dict)  # files, cache hits, seconds
    config: object | None = None  # the effective ValidationConfig
    structure: bool = False  # whether the structure step ran (so `dags` is what the release really defines)
    requirements: list[dict] = field(default_factory=list)  # declared requirements (DeclaredRequirement.to_dict)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def passed(self) -> bool:
        return not self.errors

    def summary(self) -> dict:
        return {
            "passed": self.passed,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "infos": len(self.findings) - len(self.errors) - len(self.warnings),
            "structure": self.structure,
            "dags": [dag_summary(d) for d in self.dags],
            "requirements": list(self.requirements),
        }

    def describe_errors(self, limit: int = 5) -> str:
        """One line for a sync run's error: 'Validation failed: 2 errors in 1 file: a.py:3 invalid syntax; ...'."""
        errors = self.errors
        files = {f.file for f in errors if f.file}
        shown = "; ".join(f"{f.location()} {f.message}".strip() for f in errors[:limit])
        more = f"; and {len(errors) - limit} more" if len(errors) > limit else ""
        return f"Validation failed: {plural(len(errors), 'error')} in {plural(len(files), 'file')}: {shown}{more}"
