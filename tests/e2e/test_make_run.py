"""`make run`'s script, run for real in a tmp folder: it serves the demo DAGs at the README's address, listens on
the loopback interface only (its login is admin / admin), and `scripts/make_run.py stop` (what `make stop` runs)
ends every process it started.

Not timed: how long start-up takes is measured by `make bench` (BENCHMARKS.md, section (k)). The wait below only
keeps a hung start-up from blocking the suite.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest
import requests

from tests.e2e.test_first_hour import ROOT, MakeRun, processes_of, start_make_run
from tests.helpers.airflow import BIN
from tests.helpers.servers import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]
DEMO_DAGS = {"demo_etl", "demo_fanout", "demo_report"}
HUNG = 900  # seconds: far beyond any start-up; only a hang gets here
LISTEN = "0A"  # the TCP state LISTEN in /proc/net/tcp*
LOOPBACK = {"0100007F", "00000000000000000000000001000000"}  # 127.0.0.1 and ::1, as /proc/net/tcp* spell them


def _listed_dags(url: str) -> set[str]:
    try:
        token = requests.post(f"{url}/auth/token", json={"username": "admin", "password": "admin"}, timeout=5).json()
        response = requests.get(
            f"{url}/api/v2/dags", headers={"Authorization": f"Bearer {token['access_token']}"}, timeout=5
        )
        return {dag["dag_id"] for dag in response.json()["dags"]}
    except (requests.RequestException, KeyError, ValueError):
        return set()


def _listening_addresses(port: int) -> set[str]:
    """The local addresses (hex, as the kernel prints them) of the sockets listening on `port`, IPv4 and IPv6."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, _remote, state = line.split()[1:4]
            address, hex_port = local.rsplit(":", 1)
            if state == LISTEN and int(hex_port, 16) == port:
                found.add(address)
    return found


def _stop(run: MakeRun) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "python"), "scripts/make_run.py", "stop", str(run.home)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_make_run_serves_the_demo_dags_on_loopback_only_and_stops_cleanly(tmp_path):
    run = start_make_run(tmp_path)
    readme_url = f"http://localhost:{run.port}"  # the address README.md and run.sh print
    try:
        listed = wait_for(
            lambda: (found := _listed_dags(readme_url)) >= DEMO_DAGS and found, timeout=HUNG, interval=2, what="demo"
        )
        assert {"dagops_sync"} | DEMO_DAGS <= listed
        addresses = _listening_addresses(run.port)
        assert addresses and addresses <= LOOPBACK, f"the api-server listens on {addresses}, not loopback only"
        assert f"http://localhost:{run.port}" in run.output() and "admin / admin" in run.output()
        link = run.home / "dags" / "demo"
        assert link.is_symlink() and (link / "dags" / "demo_etl.py").is_file()

        stopped = _stop(run)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert f"stopped the `make run` of {run.home}" in stopped.stdout
        run.process.wait(timeout=60)
        assert processes_of(run) == []
        assert not (run.home / "run.pid").exists()
        assert _listening_addresses(run.port) == set()
    except BaseException:
        print(run.output()[-5000:])
        raise
    finally:
        if run.process.poll() is None:
            _stop(run)
        for line in processes_of(run):  # leave nothing behind, whatever failed
            os.kill(int(line.split(":")[0]), signal.SIGKILL)
