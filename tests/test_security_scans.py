"""Security gates over our own code (issue 9): bandit finds no high-severity issue in airflow_dagops/.
(`make audit` runs pip-audit over the resolved dependencies; see docs/security.md.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BANDIT = Path(sys.executable).parent / "bandit"


def test_bandit_finds_no_high_severity_issue_in_our_code():
    result = subprocess.run(
        [str(BANDIT), "-q", "-r", "airflow_dagops", "-f", "json", "--severity-level", "high"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = json.loads(result.stdout)
    assert not report["errors"], report["errors"]
    high = [
        f"{r['filename']}:{r['line_number']} {r['test_id']} {r['issue_text']}"
        for r in report["results"]
        if r["issue_severity"] == "HIGH"
    ]
    assert high == [], "fix each, or justify it with `# nosec <id>` and a reason on that line"
    assert report["metrics"]["_totals"]["loc"] > 10_000  # it really scanned the package
