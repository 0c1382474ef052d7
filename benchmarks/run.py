"""`make bench`: run measurements (a)-(l) in one process and write BENCHMARKS.md.

    python -m benchmarks.run --output BENCHMARKS.md          # the full run (~3 min on 2 cores)
    python -m benchmarks.run --quick --only a,b              # a quick look while working on the engine
    python -m benchmarks.run --only j --merge --output BENCHMARKS.md   # refresh one section, keep the others

Airflow freezes AIRFLOW_HOME and the bundle storage path when it is imported, so the work dir and the
environment are set up first and the measurement modules (which import airflow) are imported after.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from benchmarks import env

WORK_ROOT = Path(__file__).resolve().parent / ".work"
ALL = ("a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l")
VALIDATION_REPS, QUICK_VALIDATION_REPS = 5, 2
# 21: this 2-core VM's I/O-bound timings vary 2-3x from run to run; more runs keep the medians steady.
REPS, QUICK_REPS = 21, 3
E2E_REPS, QUICK_E2E_REPS = 5, 3


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, help="write the markdown report here (default: print it)")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_REPS} repetitions instead of {REPS}")
    parser.add_argument("--only", default=",".join(ALL), help=f"comma-separated measurements to run ({','.join(ALL)})")
    parser.add_argument("--keep-work", action="store_true", help="keep the work dir under benchmarks/.work")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="with --output: replace only the measured sections (and their summary rows) of the existing file",
    )
    args = parser.parse_args(argv)
    args.only = {key.strip() for key in args.only.split(",") if key.strip()}
    if not args.only or args.only - set(ALL):
        parser.error(f"--only takes a comma-separated subset of {','.join(ALL)}")
    return args


def progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    WORK_ROOT.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="run-", dir=WORK_ROOT))
    env.prepare(work)  # before anything imports airflow
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    started, clock = datetime.now(timezone.utc), time.perf_counter()
    try:
        measurements = run_measurements(work, args)
    finally:
        _dispose(work, keep=args.keep_work)
    from benchmarks import report

    run = report.RunInfo(
        command=report.command_line(argv),
        started=started,
        seconds=time.perf_counter() - clock,
        reps=QUICK_REPS if args.quick else REPS,
        e2e_reps=QUICK_E2E_REPS if args.quick else E2E_REPS,
    )
    text = report.render(run, measurements)
    if args.merge and args.output and args.output.exists():
        text = report.merge(args.output.read_text(), run, measurements)
    if args.output:
        args.output.write_text(text)
        progress(f"wrote {args.output}")
    else:
        print(text)
    return 1 if any(m.error for m in measurements) else 0


def run_measurements(work: Path, args: argparse.Namespace) -> list:
    """(a)-(c) and (e)-(f) in process first, then (d), which starts its own Airflow processes."""
    from benchmarks.engine import measure_all
    from benchmarks.timing import Measurement

    reps = QUICK_REPS if args.quick else REPS
    measurements = measure_all(work, reps, args.only, progress)
    if args.only & {"e", "f"}:
        from benchmarks.validation import measure_validation

        validation = measure_validation(work, QUICK_VALIDATION_REPS if args.quick else VALIDATION_REPS, progress)
        measurements += [m for m in validation if m.key in args.only]
    if "h" in args.only:
        from benchmarks.testing_integrity import measure_integrity_tests

        reps_h = QUICK_VALIDATION_REPS if args.quick else VALIDATION_REPS
        measurements.append(measure_integrity_tests(work, reps_h, progress))
    if "i" in args.only:
        from benchmarks.venv_reuse import measure_venv_reuse

        measurements.append(measure_venv_reuse(work, QUICK_REPS if args.quick else VALIDATION_REPS, progress))
    if "d" in args.only:
        from benchmarks.airflow_e2e import measure_end_to_end

        try:
            measurements.append(measure_end_to_end(work, QUICK_E2E_REPS if args.quick else E2E_REPS, progress))
        except Exception as err:  # the report still shows (a)-(c) and says what went wrong with (d)
            logging.getLogger(__name__).exception("measurement (d) failed")
            measurements.append(Measurement("d", "(d) End to end in a running Airflow", "", error=f"{err}"))
    if "g" in args.only:
        from benchmarks.webhook_latency import measure_webhook_latency

        try:
            measurements.append(measure_webhook_latency(work, QUICK_E2E_REPS if args.quick else E2E_REPS, progress))
        except Exception as err:  # as for (d): the report says what went wrong
            logging.getLogger(__name__).exception("measurement (g) failed")
            measurements.append(Measurement("g", "(g) Webhook to release in a running Airflow", "", error=f"{err}"))
    if "j" in args.only:
        from benchmarks.cli_latency import measure_cli_latency

        try:
            measurements.append(measure_cli_latency(work, QUICK_E2E_REPS if args.quick else E2E_REPS, progress))
        except Exception as err:  # as for (d): the report says what went wrong
            logging.getLogger(__name__).exception("measurement (j) failed")
            measurements.append(Measurement("j", "(j) CLI latency", "", error=f"{err}"))
    if "k" in args.only:
        from benchmarks.startup import measure_startup

        try:
            measurements.append(measure_startup(work, args.quick, progress))
        except Exception as err:  # as for (d): the report says what went wrong
            logging.getLogger(__name__).exception("measurement (k) failed")
            measurements.append(Measurement("k", "(k) `make run` start-up", "", error=f"{err}"))
    if "l" in args.only:
        from benchmarks.bundle_mode import measure_bundle_mode

        try:
            measurements.append(measure_bundle_mode(work, reps, progress))
        except Exception as err:  # as for (d): the report says what went wrong
            logging.getLogger(__name__).exception("measurement (l) failed")
            measurements.append(Measurement("l", "(l) A 1-file change goes live in bundle mode", "", error=f"{err}"))
    for m in measurements:
        for goal in m.goals:
            progress(f"{m.title}: {goal.text}: {goal.measured} {'PASS' if goal.passed else 'MISS'}")
    return measurements


def _dispose(work: Path, *, keep: bool) -> None:
    """Close the state DBs and remove the work dir (release files are read-only, their folders are not)."""
    from airflow_dagops.store import db

    db.dispose_engines()
    if keep:
        progress(f"kept the work dir {work}")
        return
    shutil.rmtree(work, ignore_errors=True)
    if WORK_ROOT.is_dir() and not any(WORK_ROOT.iterdir()):
        WORK_ROOT.rmdir()


if __name__ == "__main__":
    sys.exit(main())
