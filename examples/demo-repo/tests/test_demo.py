"""The demo repository's own tests. `pytest --dagops-integrity dags/ tests/` runs them with the integrity tests
(docs/testing.md); with `tests: required` in a `.dagops.yaml` they would gate every release."""

from pathlib import Path

DAGS = Path(__file__).resolve().parent.parent / "dags"


def test_each_file_defines_the_dag_it_is_named_after():
    files = sorted(DAGS.glob("*.py"))
    assert files
    for path in files:
        assert f'dag_id="{path.stem}"' in path.read_text(), path.name
