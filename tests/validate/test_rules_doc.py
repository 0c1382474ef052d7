"""Every rule the pipeline can report is in docs/validation.md's "Rules" table, with its default severity.

Two sources of rule ids, so that a new rule without docs fails here: the catalogue (`validate.rules`, built from
each check's `RULES` table) and a scan of the source for rule ids the code reports (`Finding("id", ...)`,
`{"rule": "id"}`, `rule = "id"`, functions that return a rule id). A scanned id must be catalogued, and a severity
written next to it in the code must be its default or one the catalogue says it takes otherwise.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from airflow_dagops.validate.rules import catalogue, family

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "validation.md"
# Reported by a marketplace badge check, not by the pipeline: no repository ever sees it in a release report.
NOT_PIPELINE_RULES = {"package-export-failed"}
SEVERITIES = ("error", "warning", "info")


def rules_table() -> dict[str, list[str]]:
    """rule id -> its row's cells, from the "Rules" section of docs/validation.md."""
    text = DOC.read_text()
    section = text.split("\n## Rules\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) == 5:
            rows[cells[0].strip("`")] = cells
    return rows


def reported_in_source() -> dict[str, set[str]]:
    """Rule id (or family) -> severities written next to it, for every rule id the code reports literally."""
    found: dict[str, set[str]] = {}

    def add(rule: ast.expr | None, severity: ast.expr | None = None) -> None:
        if isinstance(rule, ast.IfExp):  # "symlink-outside-tree" if ... else "file-not-exported"
            add(rule.body, severity)
            add(rule.orelse, severity)
            return
        if isinstance(rule, ast.JoinedStr) and rule.values and isinstance(rule.values[0], ast.Constant):
            rule = ast.Constant(f"{rule.values[0].value}*")  # f"bandit-{test_id}"
        if isinstance(rule, ast.Constant) and isinstance(rule.value, str):
            rule_id = "bandit-*" if rule.value == "bandit-*" else family(rule.value)
            severities = found.setdefault(rule_id, set())
            if isinstance(severity, ast.Constant) and severity.value in SEVERITIES:
                severities.add(severity.value)

    for path in sorted((ROOT / "airflow_dagops").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            name = ast.unparse(node.func).split(".")[-1] if isinstance(node, ast.Call) else ""
            if isinstance(node, ast.Call) and (name.endswith("Finding") or name == "finding"):
                keywords = {k.arg: k.value for k in node.keywords}
                rule = node.args[0] if node.args else keywords.get("rule")
                severity = node.args[1] if len(node.args) > 1 else keywords.get("severity")
                add(rule, severity)
            elif isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    if isinstance(key, ast.Constant) and key.value == "rule":
                        add(value)
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name) and target.id == "rule":
                        add(node.value)
                    elif isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                        if isinstance(target.elts[0], ast.Name) and target.elts[0].id == "rule":
                            add(node.value.elts[0])
            elif isinstance(node, ast.FunctionDef) and node.name.endswith("_rule"):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.Return):
                        add(inner.value)
    return {rule: severities for rule, severities in found.items() if rule not in NOT_PIPELINE_RULES}


def test_every_catalogued_rule_is_documented_with_its_severity():
    table = rules_table()
    rules = catalogue()
    assert "bandit-*" in rules and "syntax-error" in rules and "sandbox-network" in rules
    for rule in rules.values():
        assert rule.id in table, f"docs/validation.md's Rules table has no row for {rule.id}"
        _, step, severity, why, silence = table[rule.id]
        assert severity.split(" ", 1)[0] == rule.severity, (rule.id, severity)
        assert step == rule.step and why and silence, rule.id
    assert set(table) == set(rules), "rows for rules the code no longer has"


def test_every_rule_the_code_reports_is_catalogued_with_the_severities_it_uses():
    rules = catalogue()
    reported = reported_in_source()
    assert {"import-exit", "dag-cycle", "venv-build-failed", "file-not-exported", "bandit-*"} <= set(reported)
    for rule_id, severities in sorted(reported.items()):
        assert rule_id in rules, f"{rule_id} is reported by the code but not in validate/rules.py"
        rule = rules[rule_id]
        for severity in severities - {rule.severity}:
            assert re.search(rf"\b{severity}\b", rule.otherwise), f"{rule_id} is also {severity}: say when"
