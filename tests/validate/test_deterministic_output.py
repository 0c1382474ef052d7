"""The same tree gives the same report, byte for byte: cold, from the validation cache, and cold again.

What may differ between runs is kept out of findings: no timings, no run-dependent paths or ids. Each sandboxed
import sees the same state: there is no scratch metadata DB that one import (in this validation, or in an earlier
one served by the same warm sandbox) could leave something in for the next; the ORM is blocked as in Airflow 3's
dag-processor. The report's `stats` are measurements of the
run itself (seconds, cache hits) and are left out of the comparison.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from airflow_dagops.validate import validate
from airflow_dagops.validate.formats import render
from airflow_dagops.validate.report import Finding, Report
from tests.helpers.repos import dag_source

# Counts the rows earlier imports left in a scratch DB, if there were one: there is none, as in Airflow 3's
# dag-processor, so every import of it fails the same way (the count would differ if imports shared a database).
DB_TOUCHER = '''"""A DAG file that (wrongly) talks to the metadata DB at import time."""
from airflow import settings
from airflow.sdk import DAG
from sqlalchemy import text

with settings.Session() as session:
    session.execute(text("CREATE TABLE IF NOT EXISTS dagops_seen (n INTEGER)"))
    session.execute(text("INSERT INTO dagops_seen VALUES (1)"))
    seen = session.execute(text("SELECT count(*) FROM dagops_seen")).scalar()
    session.commit()
raise RuntimeError(f"the scratch DB holds {seen} row(s)")
'''

FILES = {
    "dags/good.py": None,  # filled with dag_source below
    "dags/broken.py": 'from airflow.sdk import DAG\n\n\ndef build():\n    raise ValueError("no such region")\n\n\n'
    "build()\n",
    "dags/reads_variable.py": "from airflow.sdk import DAG, Variable\n\nREGION = Variable.get('region')\n",
    "dags/db_a.py": DB_TOUCHER,
    "dags/db_b.py": DB_TOUCHER,
}


def write_tree(root: Path) -> Path:
    for name, content in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dag_source("good_one") if content is None else content)
    return root


def as_json(report: Report) -> str:
    report.stats = {}  # seconds and cache hits: measurements of this run, not answers about the tree
    return render(report, "json")


def test_the_same_tree_gives_the_same_json_cold_cached_and_cold_again(tmp_path):
    root = write_tree(tmp_path / "release")
    cold = as_json(validate(root, cache_path=tmp_path / "cache.db"))
    cached = as_json(validate(root, cache_path=tmp_path / "cache.db"))
    again = as_json(validate(root, cache_path=tmp_path / "fresh-cache.db"))
    assert cached == cold
    assert again == cold
    findings = json.loads(cold)["findings"]
    by_file = {(f["file"], f["rule"]): f["message"] for f in findings}
    # No metadata DB for DAG code, as in production: both files fail the same way, and not on a database file.
    db_a, db_b = by_file[("dags/db_a.py", "import-error")], by_file[("dags/db_b.py", "import-error")]
    assert db_a == db_b.replace("db_b.py", "db_a.py")
    assert db_a.startswith("RuntimeError: Direct database access via the ORM is not allowed"), db_a
    assert "row(s)" not in db_a and "database file" not in db_a
    assert "no such region" in by_file[("dags/broken.py", "import-error")]
    for f in findings:
        assert str(tmp_path) not in f["message"] and str(tmp_path) not in (f["hint"] or "")


REAL = Path(__file__).resolve().parents[1] / "fixtures" / "real"
# Whether a file crosses the import-time budget is a measurement of this machine at that moment (a busy CI runner),
# not an answer about the tree: switched off so the comparison is about answers only.
NO_BUDGET = "# import times are measurements: see test_deterministic_output.py\ndisable: [import-time-budget]\n"


def real_tree(root: Path) -> Path:
    """Every realistic fixture (tests/fixtures/real/*) side by side in one repository: duplicates, shims, files
    Airflow never parses, secrets, side effects, vendored code."""
    for fixture in sorted(REAL.iterdir()):
        shutil.copytree(fixture, root / fixture.name)
    (root / ".dagops.yaml").write_text(NO_BUDGET)
    return root


def outputs(report: Report) -> tuple[str, str]:
    report.stats = {}  # measurements of this run, not answers about the tree
    return render(report, "json"), render(report, "sarif")


def test_a_realistic_tree_gives_the_same_json_and_sarif_cold_cached_and_cold_again(tmp_path):
    root = real_tree(tmp_path / "release")
    cold = outputs(validate(root, cache_path=tmp_path / "cache.db"))
    cached = outputs(validate(root, cache_path=tmp_path / "cache.db"))
    again = outputs(validate(root, cache_path=tmp_path / "fresh-cache.db"))
    assert cached == cold
    assert again == cold
    findings = json.loads(cold[0])["findings"]
    rules = {f["rule"] for f in findings}
    # The tree is realistic enough to exercise every part: imports, duplicates, secrets, side effects, syntax.
    assert {"duplicate-dag-id", "import-time-side-effect", "syntax-error", "hardcoded-secret-password"} <= rules
    assert str(tmp_path) not in cold[0] and str(tmp_path) not in cold[1]


def test_sarif_uris_are_percent_encoded_relative_references():
    report = Report(
        findings=[Finding("import-error", "error", "boom", file="dags/my dag #2 100%.py", line=3)],
    )
    sarif = json.loads(render(report, "sarif"))
    location = sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": "dags/my%20dag%20%232%20100%25.py", "uriBaseId": "SRCROOT"}
    assert location["region"] == {"startLine": 3}
