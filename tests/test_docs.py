"""Docs that must stay true: README opens with the two commands, every option is documented."""

from __future__ import annotations

from pathlib import Path

from airflow_dagops.settings import OPTIONS

ROOT = Path(__file__).resolve().parent.parent


def test_readme_opens_with_make_run_and_make_test():
    head = "\n".join((ROOT / "README.md").read_text().splitlines()[:10])
    assert "make run" in head and "make test" in head


def test_every_option_is_documented():
    doc = (ROOT / "docs" / "configuration.md").read_text()
    missing = [name for name in OPTIONS if f"`{name}`" not in doc]
    assert missing == []
