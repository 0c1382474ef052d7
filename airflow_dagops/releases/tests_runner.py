"""Run a repository's own tests against a release, one test module per sandboxed pytest process.

A repository opts in from its `.dagops.yaml` with `tests: required` (a failing test blocks the release) or
`tests: optional` (failures are reported, the release still goes live). Test modules are the files under
`tests/` named `test_*.py` or `*_test.py`.

Each module runs in a copy of the release (a test that writes into its working folder must not touch the
published files, which are hard links shared between releases), with the validation sandbox's environment
(no metadata DB URL, no connections, no secrets; airflow_dagops/validate/structure.py), a time limit, and
`--junitxml`. The JUnit XML is kept with the release so the UI and CLI can say which test failed and why.
What the tests measured with the plugin's performance fixtures (parse and task run times) comes back through the
`DAGOPS_PERF_REPORT` file and is stored with the release too, for releases/perf.py to compare.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from defusedxml import ElementTree as ET  # the XML is written by the repository's own code

from airflow_dagops import tempdirs
from airflow_dagops.redaction import redact_text
from airflow_dagops.releases import perf as release_perf
from airflow_dagops.validate import sandbox_host
from airflow_dagops.validate.structure import sandbox_environment

# The dagops_sync system DAG updates this asset when a release waits for its tests; dagops_test is scheduled on it.
AWAITING_TESTS_ASSET = "x-dagops://releases/awaiting-tests"
TEST_DIR = "tests"
MODES = ("off", "optional", "required")
MAX_JUNIT_BYTES = 256 * 1024  # per module, stored with the release
MAX_MESSAGE = 2000
MAX_PERF_BYTES = 64 * 1024  # the perf report is written by the repository's process: read a bounded amount
PERF_REPORT = "perf.json"  # testing/perf.py REPORT_ENV names where the plugin writes it
DEFAULT_TIMEOUT = 600.0


@dataclass
class TestFailure:
    test: str  # module::Class::name
    message: str
    kind: str = "failure"  # failure / error


@dataclass
class ModuleResult:
    module: str
    outcome: str  # passed / failed / error (could not run: timeout, collection error, crash)
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    seconds: float = 0.0
    failures: list[TestFailure] = field(default_factory=list)
    junit_xml: str = ""
    output_tail: str = ""
    perf: dict = field(default_factory=dict)  # {"parse": {file: s}, "tasks": {"dag.task": s}} the tests measured

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModuleResult:
        failures = [TestFailure(**f) for f in data.get("failures") or []]
        return cls(**{**data, "failures": failures})


def test_modules(release_dir: Path) -> list[str]:
    """The release's test modules, relative to its root, sorted."""
    root = release_dir / TEST_DIR
    if not root.is_dir():
        return []
    found = [
        path.relative_to(release_dir).as_posix()
        for path in root.rglob("*.py")
        if (path.name.startswith("test_") or path.name.endswith("_test.py")) and path.is_file()
    ]
    return sorted(found)


def run_module(release_dir: Path, module: str, *, timeout: float = DEFAULT_TIMEOUT) -> ModuleResult:
    """Run one test module of a release in a sandboxed pytest process; never raises for a failing test.
    What the tests said is redacted here, before it is stored with the release or passed on as an XCom."""
    return _redacted(_run_module(release_dir, module, timeout=timeout))


def _redacted(result: ModuleResult) -> ModuleResult:
    result.failures = [TestFailure(redact_text(f.test), redact_text(f.message), f.kind) for f in result.failures]
    result.junit_xml = redact_text(result.junit_xml)
    result.output_tail = redact_text(result.output_tail)
    return result


def _run_module(release_dir: Path, module: str, *, timeout: float) -> ModuleResult:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=tempdirs.owned_prefix("dagops-test-")) as scratch:
        scratch_dir = Path(scratch)
        work = scratch_dir / "release"
        shutil.copytree(release_dir, work, symlinks=True)
        out = scratch_dir / "out"
        out.mkdir()
        junit = out / "junit.xml"
        home = scratch_dir / "home"
        home.mkdir()
        support = sandbox_host.require_sandbox()  # strict: SandboxUnavailable rather than tests run bare
        command, cwd, env = _pytest_command(support, work, out, home, module, timeout)
        try:
            done = subprocess.run(
                command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as err:
            tail = _tail(err.stdout)
            return ModuleResult(
                module,
                "error",
                errors=1,
                seconds=time.monotonic() - started,
                failures=[TestFailure(module, f"the tests did not finish within {timeout:g} s; killed", "error")],
                output_tail=tail,
            )
        xml = junit.read_text(errors="replace") if junit.is_file() else ""
        measured = read_perf_report(out / PERF_REPORT)
    result = parse_junit(module, xml)
    result.perf = measured
    result.seconds = time.monotonic() - started
    result.output_tail = _tail(done.stdout + done.stderr)
    if not xml or (done.returncode not in (0, 1) and not result.failures):
        # pytest itself failed (usage error, collection crash, no tests): say so rather than "passed"
        result.outcome = "error" if done.returncode not in (0, 5) else result.outcome
        if result.outcome == "error":
            result.failures.append(TestFailure(module, f"pytest exited with code {done.returncode}", "error"))
    return result


def _pytest_command(support, work: Path, out: Path, home: Path, module: str, timeout: float):
    """pytest over one module: inside the OS sandbox (the release read-only at its mount, JUnit XML written to
    the one writable bind), or, degraded, as a child process with a scrubbed environment in the copy."""
    env = sandbox_environment(home, timeout)
    if support is None:
        env["DAGOPS_PERF_REPORT"] = str(out / PERF_REPORT)
        env["PYTHONPATH"] = str(work)  # `import dags.helpers` as in the repository's own checkout
        return _pytest_argv(junit=out / "junit.xml", rootdir=str(work), module=module), work, env
    out.chmod(0o1777)  # written by the sandbox's unprivileged uid
    inside = {"HOME": "/tmp", "TMPDIR": "/tmp", "AIRFLOW_HOME": "/tmp/airflow"}  # noqa: S108 - the sandbox's /tmp
    # The sandbox's uid has no passwd entry, and Airflow's task runner (run_dag) refuses a user without a name;
    # getpass reads these first.
    inside.update({"USER": "dagops-tests", "LOGNAME": "dagops-tests"})
    env.update({**inside, "PYTHONPATH": sandbox_host.RELEASE_MOUNT})
    env["DAGOPS_PERF_REPORT"] = f"{sandbox_host.WORK_MOUNT}/{PERF_REPORT}"
    argv = _pytest_argv(
        junit=Path(sandbox_host.WORK_MOUNT) / "junit.xml", rootdir=sandbox_host.RELEASE_MOUNT, module=module
    )
    return sandbox_host.one_shot_command(support, root=work, workdir=out, argv=argv), out, env


def _pytest_argv(*, junit: Path, rootdir: str, module: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}"] + [
        "--rootdir",
        rootdir,
        module,
    ]


def read_perf_report(path: Path) -> dict:
    """The measurements a test module's pytest process wrote; anything unreadable counts as none measured."""
    try:
        if not path.is_file() or path.is_symlink() or path.stat().st_size > MAX_PERF_BYTES:
            return {}
        data = json.loads(path.read_text(errors="replace"))
    except (OSError, ValueError):
        return {}
    return release_perf.merge([data]) if isinstance(data, dict) else {}


def parse_junit(module: str, xml: str) -> ModuleResult:
    """Counts and failures from pytest's JUnit XML."""
    result = ModuleResult(module, "passed", junit_xml=xml[:MAX_JUNIT_BYTES])
    if not xml:
        return result
    try:
        root = ET.fromstring(xml)
    except (ET.ParseError, ValueError):  # defusedxml refuses entity tricks with a ValueError
        result.outcome = "error"
        result.failures.append(TestFailure(module, "the JUnit XML report could not be read", "error"))
        return result
    for case in root.iter("testcase"):
        name = "::".join(part for part in (case.get("classname", "").replace(".", "/"), case.get("name", "")) if part)
        problem = case.find("failure")
        kind = "failure"
        if problem is None:
            problem, kind = case.find("error"), "error"
        if problem is not None:
            message = (problem.get("message") or problem.text or "").strip()
            result.failures.append(TestFailure(name, message[:MAX_MESSAGE], kind))
            if kind == "failure":
                result.failed += 1
            else:
                result.errors += 1
        elif case.find("skipped") is not None:
            result.skipped += 1
        else:
            result.passed += 1
    if result.failed or result.errors:
        result.outcome = "failed"
    return result


def summarize(results: list[ModuleResult], mode: str) -> dict:
    """What is stored with the release (Release.tests) and shown by the UI and CLI."""
    failures = [{"module": r.module, **asdict(f)} for r in results for f in r.failures]
    totals = {key: sum(getattr(r, key) for r in results) for key in ("passed", "failed", "errors", "skipped")}
    outcome = "passed" if all(r.outcome == "passed" for r in results) else "failed"
    return {
        "mode": mode,
        "outcome": outcome,
        **totals,
        "seconds": round(sum(r.seconds for r in results), 2),
        "failures": failures,
        "perf": release_perf.merge([r.perf for r in results]),
        "modules": [r.to_dict() for r in results],
    }


def _tail(text: str | bytes | None, limit: int = 4000) -> str:
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return (text or "")[-limit:]
