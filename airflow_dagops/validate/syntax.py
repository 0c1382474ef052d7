"""Syntax check: every Python file must parse, or Airflow would record an import error in production."""

from __future__ import annotations

import ast
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

from airflow_dagops.validate.report import Finding


def python_files(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__pycache__")
        for filename in sorted(filenames):
            if filename.endswith(".py"):
                yield Path(dirpath) / filename


def check_syntax(root) -> list[Finding]:
    root = Path(root)
    findings = []
    for path in python_files(root):
        relative = str(path.relative_to(root))
        try:
            source = path.read_bytes()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SyntaxWarning)
                ast.parse(source, filename=relative)
        except SyntaxError as err:
            findings.append(
                Finding(
                    rule="syntax-error",
                    severity="error",
                    file=relative,
                    line=err.lineno,
                    message=f"{err.msg}" + (f" (column {err.offset})" if err.offset else ""),
                    hint="Fix the syntax; run `python -m py_compile FILE` locally to check.",
                )
            )
        except (ValueError, OSError) as err:  # null bytes, unreadable file
            findings.append(Finding(rule="syntax-error", severity="error", file=relative, message=str(err)))
    return findings
