"""Reliability 5 (poll): the load benchmark (benchmarks/load_poll.py) runs and every no-change cycle finds
every repository unchanged. Correctness only: its timings go to docs/reliability.md, not into assertions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def test_the_poll_benchmark_registers_repositories_and_finds_them_all_unchanged():
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.load_poll", "--repos", "4", "--dags", "10", "--runs", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "4 repositories x 10 DAGs (40 DAG files) registered" in result.stdout
    rows = [line for line in result.stdout.splitlines() if line.startswith("| `")]
    assert len(rows) == 2, result.stdout
