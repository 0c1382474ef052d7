"""Syntax check: every Python file must parse, or Airflow would record an import error in production."""

from __future__ import annotations

import ast
import warnings
from pathlib import Path

from airflow_dagops.validate.report import Finding

RULES = {"syntax-error": "A Python file does not parse."}


def check_syntax(root: Path, files: list[str]) -> list[Finding]:
    findings = []
    for file in files:
        if not file.endswith(".py"):
            continue
        try:
            source = (Path(root) / file).read_bytes()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SyntaxWarning)
                ast.parse(source, filename=file)
        except SyntaxError as err:
            findings.append(
                Finding(
                    rule="syntax-error",
                    severity="error",
                    file=file,
                    line=err.lineno,
                    message=f"{err.msg}" + (f" (column {err.offset})" if err.offset else ""),
                    hint="Fix the syntax; run `python -m py_compile FILE` locally to check.",
                )
            )
        except (ValueError, OSError) as err:  # null bytes, unreadable file
            findings.append(Finding(rule="syntax-error", severity="error", file=file, message=str(err)))
    return findings
