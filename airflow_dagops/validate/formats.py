"""Render a Report for people (text) and for tools (JSON, SARIF 2.1.0 for code scanning, JUnit XML for CI)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote
from xml.etree import ElementTree as ET

from airflow_dagops import __version__
from airflow_dagops.validate.report import Report
from airflow_dagops.validate.rules import Rule, all_rules, family
from airflow_dagops.validate.rules import catalogue as rules_catalogue
from airflow_dagops.wording import plural

FORMATS = ("text", "json", "sarif", "junit")
_SARIF_LEVEL = {"error": "error", "warning": "warning", "info": "note"}


def render(report: Report, fmt: str, *, root_label: str = ".") -> str:
    return {"text": to_text, "json": to_json, "sarif": to_sarif, "junit": to_junit}[fmt](report, root_label)


def to_text(report: Report, root_label: str) -> str:
    lines = []
    for f in report.findings:
        where = f.location() or root_label
        lines.append(f"{where}: {f.severity} [{f.rule}] {f.message}")
        if f.hint:
            lines.append(f"    hint: {f.hint}")
    summary = report.summary()
    verdict = "passed" if report.passed else "FAILED"
    lines.append(
        f"{verdict}: {plural(summary['errors'], 'error')}, {plural(summary['warnings'], 'warning')}, "
        f"{plural(summary['infos'], 'info')} in {plural(report.stats.get('files', 0), 'file')}, "
        f"{plural(len(report.dags), 'DAG')} ({report.stats.get('seconds', 0):.1f} s)"
    )
    return "\n".join(lines) + "\n"


def to_json(report: Report, root_label: str) -> str:
    data = {
        "root": root_label,
        "passed": report.passed,
        "summary": {k: v for k, v in report.summary().items() if k != "dags"},
        "findings": [f.to_dict() for f in report.findings],
        "dags": [{"dag_id": d.dag_id, "file": d.file} for d in report.dags],
        "stats": report.stats,
    }
    return json.dumps(data, indent=2) + "\n"


def to_sarif(report: Report, root_label: str) -> str:

    catalogue, entries = all_rules(), rules_catalogue()
    used = sorted({f.rule for f in report.findings})
    results = []
    for f in report.findings:
        result: dict[str, Any] = {
            "ruleId": f.rule,
            "level": _SARIF_LEVEL.get(f.severity, "note"),
            "message": {"text": f.message + (f" Hint: {f.hint}" if f.hint else "")},
        }
        if f.file:
            # A relative URI reference: spaces, "#", "%" and the like percent-encoded, "/" kept.
            uri = quote(f.file, safe="/")
            location: dict[str, Any] = {"artifactLocation": {"uri": uri, "uriBaseId": "SRCROOT"}}
            if f.line:
                location["region"] = {"startLine": f.line}
            result["locations"] = [{"physicalLocation": location}]
        results.append(result)
    sarif = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "dagops-validate",
                        "version": __version__,
                        "informationUri": "https://github.com/airflow-dagops/airflow-dagops",
                        "rules": [_sarif_rule(rule, catalogue.get(rule, rule), entries) for rule in used],
                    }
                },
                "originalUriBaseIds": {"SRCROOT": {"uri": root_label.rstrip("/") + "/"}},
                "results": results,
            }
        ],
    }
    return json.dumps(sarif, indent=2) + "\n"


def _sarif_rule(rule: str, why: str, entries: dict[str, Rule]) -> dict[str, Any]:
    """A rule's SARIF description: why it exists, its default level and how a repository silences it."""
    described: dict[str, Any] = {"id": rule, "shortDescription": {"text": why}}
    entry = entries.get(family(rule))
    if entry is not None:
        described["defaultConfiguration"] = {"level": _SARIF_LEVEL.get(entry.severity, "note")}
        described["help"] = {"text": entry.silence}
    return described


def to_junit(report: Report, root_label: str) -> str:
    """One test case per checked file; its errors are failures, so CI shows them per file."""
    by_file: dict[str, list] = {}
    for f in report.findings:
        by_file.setdefault(f.file or "(release)", []).append(f)
    errors = [f for f in report.findings if f.severity == "error"]
    suite = ET.Element(
        "testsuite",
        name="dagops-validate",
        tests=str(max(1, len(by_file))),
        failures=str(len({f.file for f in errors})),
        errors="0",
        time=f"{report.stats.get('seconds', 0):.3f}",
    )
    if not by_file:
        ET.SubElement(suite, "testcase", classname="dagops", name=root_label)
    for file, findings in sorted(by_file.items()):
        case = ET.SubElement(suite, "testcase", classname="dagops", name=file)
        file_errors = [f for f in findings if f.severity == "error"]
        if file_errors:
            failure = ET.SubElement(case, "failure", message=f"{len(file_errors)} error(s)", type="dagops")
            failure.text = "\n".join(f"{f.location()} [{f.rule}] {f.message}" for f in file_errors)
        others = [f for f in findings if f.severity != "error"]
        if others:
            out = ET.SubElement(case, "system-out")
            out.text = "\n".join(f"{f.location()} {f.severity} [{f.rule}] {f.message}" for f in others)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"
