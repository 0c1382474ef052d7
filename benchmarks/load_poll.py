"""Reliability 5 (load): a no-change poll cycle over 100 repositories x 50 DAGs, measured.

    python -m benchmarks.load_poll                      # 100 x 50, 5 cycles; prints a markdown table
    python -m benchmarks.load_poll --repos 10 --runs 1  # a quick look

Each repository is its own git repository (unique dag_ids, so no clashes), registered and published once
(validation replaced by an accepting validator: validating 5,000 DAGs is not what a poll costs). Then two
no-change cycles are timed: `sensing.sense()` over all (what the dagops_sync DAG's first task runs on
every schedule tick; [dagops] sense_concurrency parallel `git ls-remote`s), and, for comparison, a
`sync_repository(trigger="schedule")` of every repository one after another (what a sync of unchanged
repositories costs when each is asked directly). The issue's bound: the cycle finishes in <= 60 s on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from airflow_dagops.repositories.registry import add_repository
from airflow_dagops.sync import sense as sensing
from airflow_dagops.sync.sync import sync_repository
from benchmarks import env

WORK_ROOT = Path(__file__).resolve().parent / ".work"
BOUND_SECONDS = 60


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load_poll", description=__doc__.splitlines()[0])
    parser.add_argument("--repos", type=int, default=100)
    parser.add_argument("--dags", type=int, default=50, help="DAG files per repository")
    parser.add_argument("--runs", type=int, default=5, help="timed cycles of each kind")
    return parser.parse_args(argv)


def register(work: Path, repos: int, dags: int) -> list[str]:
    from benchmarks.engine import noop_validator
    from benchmarks.repos import make_dag_repo

    names = []
    for index in range(repos):
        name = f"load{index:03d}"
        source = make_dag_repo(work / "sources" / name, dags, prefix=name)
        add_repository(name, source.url, verify=False)
        outcome = sync_repository(name, validator=noop_validator)
        if outcome.status != "published":
            raise RuntimeError(f"{name}: {outcome.message}")
        names.append(name)
    return names


def timed(action, runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return samples


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    WORK_ROOT.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="load-poll-", dir=WORK_ROOT))
    env.prepare(work)  # before anything imports airflow
    try:
        env.use_installation(work / "engine")
        from airflow_dagops import settings

        started = time.perf_counter()
        names = register(work, args.repos, args.dags)
        setup = time.perf_counter() - started

        def sense_all():
            results = sensing.sense(respect_poll_interval=False)
            changed = [r.repository for r in results if r.changed]
            if len(results) != len(names) or changed:
                raise RuntimeError(f"expected {len(names)} unchanged repositories; changed: {changed}")

        def sync_all():
            for name in names:
                status = sync_repository(name, trigger="schedule").status
                if status != "unchanged":
                    raise RuntimeError(f"{name}: {status}")

        sense = timed(sense_all, args.runs)
        sync = timed(sync_all, args.runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def row(label: str, samples: list[float]) -> str:
        median = statistics.median(samples)
        verdict = "PASS" if max(samples) <= BOUND_SECONDS else "FAIL"
        return f"| {label} | {median:.2f} | {min(samples):.2f} | {max(samples):.2f} | {len(samples)} | {verdict} |"

    concurrency = settings.get_int("sense_concurrency")
    print(
        f"{args.repos} repositories x {args.dags} DAGs ({args.repos * args.dags} DAG files) registered and "
        f"published in {setup:.0f} s; {os.cpu_count()} CPUs; sense_concurrency={concurrency}\n"
    )
    print(f"| no-change poll cycle | median s | min s | max s | runs | <= {BOUND_SECONDS} s |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    print(row("`sensing.sense()` over all (the dagops_sync DAG's poll)", sense))
    print(row("`sync_repository(trigger='schedule')` of each, one after another", sync))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
