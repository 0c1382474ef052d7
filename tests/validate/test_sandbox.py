"""Hostile DAG files against the validation sandbox: every attempt is an error finding, nothing reaches the host.

Each file below is what an attacker with push rights to one repository would commit. The checks after each run
look at the host, not at what the sandbox says: no file written, no connection received, no process left, and no
secret value of the validator's environment in any finding.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from pathlib import Path

import pytest

from airflow_dagops.repositories.registry import add_repository
from airflow_dagops.sync.sync import sync_repository
from airflow_dagops.validate import sandbox_host
from airflow_dagops.validate.sandbox_host import SandboxSupport, SandboxUnavailable
from airflow_dagops.validate.structure import RULES, check_structure
from tests.conftest import SANDBOX

needs_sandbox = pytest.mark.skipif(not SANDBOX.available, reason=f"no OS sandbox here: {SANDBOX.reason}")

SECRET = "s3cr3t-" + uuid.uuid4().hex  # in the validator's environment, as a database URL or a key would be
HEADER = "# airflow dag file\nfrom airflow.sdk import DAG\n"
BEHAVIOUR_RULES = {rule for rule in RULES if rule.startswith("sandbox-")} - {"sandbox-degraded"}


@pytest.fixture
def hostile(tmp_path, monkeypatch):
    """A release folder, a marker in the validator's environment (inherited by anything the sandbox starts, so
    survivors can be found on the host) and the secret."""
    marker = "dagops-test-" + uuid.uuid4().hex
    monkeypatch.setenv("DAGOPS_SANDBOX_TEST_MARKER", marker)
    monkeypatch.setenv("WAREHOUSE_PASSWORD", SECRET)
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", f"postgresql://etl:{SECRET}@db/warehouse")
    root = tmp_path / "release"
    root.mkdir()
    return root, marker


def processes_with(marker: str) -> list[int]:
    """Host processes whose environment carries the marker (anything the sandbox started and left behind)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            environ = Path(f"/proc/{name}/environ").read_bytes()
        except OSError:
            continue
        if marker.encode() in environ:
            found.append(int(name))
    return found


def left_running(marker: str, within: float = 10.0) -> list[int]:
    """The processes carrying the marker still there after `within` seconds: a process SIGKILLed with its sandbox
    stays listed in /proc for a moment while the kernel tears it down, longer on a loaded machine."""
    deadline = time.monotonic() + within
    while (found := processes_with(marker)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return found


def _pythons(pids: list[int]) -> list[int]:
    """Of `pids`, the Python processes (bwrap execs one only once it has mounted everything; its own command line
    names the worker module too, so the program is what tells)."""
    found = []
    for pid in pids:
        try:
            if "python" in os.path.basename(os.readlink(f"/proc/{pid}/exe")):
                found.append(pid)
        except OSError:
            continue
    return found


def run(root: Path, files: dict[str, str], *, timeout: float = 10):
    for name, body in files.items():
        (root / name).write_text(HEADER + body)
    return check_structure(root, list(files), timeout=timeout, workers=2)


def rules_of(result, file: str) -> set[str]:
    return {f.rule for f in result.findings if f.file == file and f.severity == "error"}


def assert_no_secret(result) -> None:
    for finding in result.findings:
        assert SECRET not in finding.message and SECRET not in (finding.hint or "")


@needs_sandbox
def test_reading_the_parents_environment_and_airflows_files_is_an_error_and_finds_nothing(hostile):
    root, _ = hostile
    metadata_db = Path(os.environ["AIRFLOW_HOME"]) / "airflow.db"
    result = run(
        root,
        {
            "parent_env.py": "import os\nraise RuntimeError(open(f'/proc/{os.getppid()}/environ').read())\n",
            "every_env.py": (
                "import os\nseen = []\nfor pid in os.listdir('/proc'):\n"
                "    if pid.isdigit():\n"
                "        try:\n            seen.append(open(f'/proc/{pid}/environ').read())\n"
                "        except OSError as err:\n            seen.append(repr(err))\n"
                "raise RuntimeError(' '.join(seen))\n"
            ),
            "metadata_db.py": f"raise RuntimeError(open({str(metadata_db)!r}, 'rb').read()[:200])\n",
        },
    )
    assert "sandbox-private-read" in rules_of(result, "parent_env.py")
    assert rules_of(result, "every_env.py")  # an error either way: refused, or raised with what little it saw
    assert rules_of(result, "metadata_db.py") & {"sandbox-private-read", "import-error"}
    assert_no_secret(result)


@needs_sandbox
def test_writing_outside_connecting_out_and_spawning_are_errors_with_no_effect_on_the_host(hostile, tmp_path):
    root, marker = hostile
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    accepted: list[object] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                accepted.append(listener.accept())
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    outside = tmp_path / "pwned"
    home_target = Path.home() / f".dagops-test-{uuid.uuid4().hex}"
    try:
        result = run(
            root,
            {
                # Into the release itself (what gets published), and into the validator's home folder.
                "write.py": "import os\nopen(os.path.join(os.path.dirname(__file__), 'injected.py'), 'w').write('x')\n",
                "write_home.py": f"open({str(home_target)!r}, 'w').write('x')\n",
                "connect.py": f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)\n",
                "spawn_import.py": f"__import__('o' + 's').system('touch {outside}/a')\n",
                "spawn_exec.py": (
                    "import base64\n"
                    "exec(base64.b64decode("
                    + repr(
                        __import__("base64").b64encode(
                            f"import subprocess; subprocess.Popen(['touch', '{outside}/b'])".encode()
                        )
                    )
                    + ").decode())\n"
                ),
                "spawn_getattr.py": f"getattr(__import__('subprocess'), 'Po' + 'pen')(['touch', '{outside}/c'])\n",
            },
        )
    finally:
        stop.set()
        thread.join()
        listener.close()
    assert "sandbox-write" in rules_of(result, "write.py") and "sandbox-write" in rules_of(result, "write_home.py")
    assert not (root / "injected.py").exists() and not home_target.exists()
    assert "sandbox-network" in rules_of(result, "connect.py")
    assert "sandbox-process" in rules_of(result, "spawn_import.py")
    assert {"sandbox-process", "sandbox-dynamic-code"} <= rules_of(result, "spawn_exec.py")
    assert "sandbox-process" in rules_of(result, "spawn_getattr.py")
    assert not outside.exists() and accepted == [] and left_running(marker) == []
    line = next(f.line for f in result.findings if f.file == "spawn_import.py" and f.rule == "sandbox-process")
    assert line == 3  # the line of the file that did it
    assert_no_secret(result)


# Through ctypes, a fork bypasses Python's own audit event: only the OS boundary stops what follows.
DOUBLE_FORK = """import ctypes, os, time
libc = ctypes.CDLL(None)
if libc.fork() == 0:
    os.setsid()
    if libc.fork() == 0:
        time.sleep(120)
    os._exit(0)
time.sleep(0.5)
"""
FORK_LOOP = """import ctypes, time
libc = ctypes.CDLL(None)
for _ in range(200):
    if libc.fork() == 0:
        time.sleep(120)
time.sleep(0.5)
"""
OUTLIVE_TIMEOUT = """import ctypes, time
libc = ctypes.CDLL(None)
if libc.fork() == 0:
    time.sleep(120)
while True:
    try:
        time.sleep(60)
    except BaseException:
        pass
"""


@needs_sandbox
def test_no_process_a_dag_file_starts_outlives_its_validation(hostile):
    root, marker = hostile
    result = run(
        root,
        {"double_fork.py": DOUBLE_FORK, "fork_loop.py": FORK_LOOP, "outlive.py": OUTLIVE_TIMEOUT},
        timeout=2,
    )
    assert {"sandbox-native-code", "sandbox-process-left"} <= rules_of(result, "double_fork.py")
    assert "sandbox-native-code" in rules_of(result, "fork_loop.py")
    assert "import-timeout" in rules_of(result, "outlive.py")
    assert left_running(marker) == []


@needs_sandbox
def test_the_sandbox_sees_no_host_files_and_runs_unprivileged(hostile, tmp_path):
    root, _ = hostile
    (tmp_path / "host-secret.txt").write_text(SECRET)
    host_file, airflow_home = str(tmp_path / "host-secret.txt"), os.environ["AIRFLOW_HOME"]
    probe = f"""import json, os
seen = {{
    "uid": os.getuid(),
    "cap_eff": [l.split()[1] for l in open('/proc/self/status') if l.startswith('CapEff')][0],
    "processes": sorted(int(p) for p in os.listdir('/proc') if p.isdigit()),
    "root": sorted(os.listdir('/')),
    "host_file": os.path.exists({host_file!r}),
    "airflow_home": os.path.exists({airflow_home!r}),
}}
raise RuntimeError("SEEN " + json.dumps(seen))
"""
    result = run(root, {"probe.py": probe})
    message = next(f.message for f in result.findings if f.file == "probe.py")
    seen = __import__("json").loads(message.split("SEEN ", 1)[1].splitlines()[0])
    assert seen["cap_eff"] == "0000000000000000"
    if SANDBOX.as_root:
        assert seen["uid"] in sandbox_host.SANDBOX_UIDS
    assert len(seen["processes"]) <= 3  # its own PID namespace: process 1, the loader, nothing of the host
    assert not seen["host_file"] and not seen["airflow_home"]
    assert "root" not in seen["root"] or seen["root"].count("root") == 1  # only the Python install's parent


def test_strict_mode_refuses_to_import_without_a_sandbox(tmp_path, monkeypatch):
    (tmp_path / "a.py").write_text(HEADER + "x = 1\n")
    missing = SandboxSupport(None, None, os.geteuid() == 0, "bubblewrap (bwrap) is not installed")
    monkeypatch.setattr(sandbox_host, "sandbox_support", lambda: missing)
    monkeypatch.setenv("AIRFLOW__DAGOPS__SANDBOX", "strict")
    with pytest.raises(SandboxUnavailable, match="bwrap.*degraded"):
        check_structure(tmp_path, ["a.py"], timeout=5)
    assert "UNAVAILABLE" in sandbox_host.describe_support()


def test_degraded_mode_is_reported_on_every_run_and_still_catches_behaviour(tmp_path, monkeypatch, caplog):
    missing = SandboxSupport(None, None, os.geteuid() == 0, "bubblewrap (bwrap) is not installed")
    monkeypatch.setattr(sandbox_host, "sandbox_support", lambda: missing)
    monkeypatch.setenv("AIRFLOW__DAGOPS__SANDBOX", "degraded")
    outside = tmp_path / "outside"
    root = tmp_path / "release"
    root.mkdir()
    result = run(root, {"spawn.py": f"__import__('os').system('touch {outside}')\n"})
    degraded = [f for f in result.findings if f.rule == "sandbox-degraded"]
    assert degraded and degraded[0].severity == "warning" and "bwrap" in degraded[0].message
    assert "sandbox-process" in rules_of(result, "spawn.py") and not outside.exists()
    assert "WITHOUT an OS sandbox" in caplog.text
    assert "DEGRADED" in sandbox_host.describe_support()


def test_an_unknown_sandbox_setting_is_refused(monkeypatch):
    monkeypatch.setenv("AIRFLOW__DAGOPS__SANDBOX", "off")
    with pytest.raises(SandboxUnavailable, match="strict' or 'degraded"):
        sandbox_host.sandbox_setting()


def test_every_behaviour_rule_has_a_hint_and_is_an_error():
    from airflow_dagops.validate.structure import HINTS, finding

    for rule in BEHAVIOUR_RULES:
        made = finding(rule, "m", "f.py", 1)
        assert made.severity == "error" and made.hint == HINTS[rule]


def test_library_code_that_a_dag_only_imports_is_not_blamed(tmp_path):
    # dataclasses and namedtuple exec strings; platform and uuid may touch files: none of it is the DAG's doing.
    root = tmp_path / "release"
    root.mkdir()
    result = run(
        root,
        {
            "clean.py": (
                "import collections, dataclasses, json, tempfile\n"
                "Point = collections.namedtuple('Point', 'x y')\n"
                "@dataclasses.dataclass\nclass Row:\n    a: int\n"
                "with tempfile.NamedTemporaryFile('w') as scratch:\n    scratch.write('ok')\n"
                "import pendulum\n"
                "with DAG('clean', schedule=None, start_date=pendulum.datetime(2024, 1, 1)):\n    pass\n"
            )
        },
    )
    assert [f for f in result.findings if f.severity == "error"] == []
    assert [d.dag_id for d in result.dags] == ["clean"]


def test_a_warm_sandbox_serves_the_same_folder_again_with_fresh_generations(tmp_path, monkeypatch):
    """The next validation of the same folder skips Airflow's import, sees edits, and nothing a file did to its
    process carries over; a new top-level entry means a new sandbox."""
    from airflow_dagops.validate import structure

    monkeypatch.setenv("AIRFLOW__DAGOPS__SANDBOX_KEEP_WARM", "30")
    root = tmp_path / "release"
    root.mkdir()
    started = []
    real_start = structure.Sandbox.start
    monkeypatch.setattr(structure.Sandbox, "start", lambda self: (started.append(self), real_start(self))[1])
    poison = "import builtins\nbuiltins.POISONED = True\n"
    try:
        first = run(root, {"a.py": poison + "with DAG('a', schedule=None):\n    pass\n"})
        clean = "import builtins\nassert not hasattr(builtins, 'POISONED')\n"
        second = run(root, {"a.py": clean + "x = DAG(\n"})
        third = run(root, {"a.py": clean + "dag = DAG('a3', schedule=None)\n"})
        assert len(started) == 1  # the later runs reused the first one's sandbox
        assert [d.dag_id for d in first.dags] == ["a"] and second.dags == []
        assert rules_of(second, "a.py") == {"import-error"}  # the edit is seen
        assert [d.dag_id for d in third.dags] == ["a3"] and rules_of(third, "a.py") == set()  # the poison is not
        (root / "b.py").write_text(HEADER + "x = 1\n")
        check_structure(root, ["a.py", "b.py"], timeout=10)
        assert len(started) == 2  # a new entry in the folder: a new sandbox, bound anew
    finally:
        structure.stop_warm_sandboxes()


@needs_sandbox
def test_a_sandbox_started_ahead_shows_its_release_alone_and_answers_as_one_started_for_it(hostile, monkeypatch):
    """A sync starts the sandbox before it fetches (validate.sandbox_ahead), when the release does not exist yet: the
    validation of the release exported next takes it over. Its DAG code sees that release alone, never
    the other releases of the folder; its answers are those of a sandbox started for the release; a file that hangs
    is still killed; and one that no validation takes is stopped with everything it started."""
    from airflow_dagops.validate import structure

    _, marker = hostile
    monkeypatch.setenv("AIRFLOW__DAGOPS__SANDBOX_KEEP_WARM", "0")
    releases = hostile[0].parent / "releases"
    (releases / "older").mkdir(parents=True)
    (releases / "older" / "secret.txt").write_text(SECRET)
    started = []
    real_start = structure.Sandbox.start
    monkeypatch.setattr(structure.Sandbox, "start", lambda self: (started.append(self), real_start(self))[1])
    assert structure.start_ahead(releases, timeout=3, memory_limit=None)
    root = releases / "next"  # exported after the sandbox started, as a sync does
    root.mkdir()
    probe = """import json, os
seen = {
    "releases": os.listdir("/dagops/releases") if os.path.isdir("/dagops/releases") else [],
    "release": sorted(os.listdir("/dagops/release")),
    "older": [p for p in ("/dagops/releases/older/secret.txt", "/dagops/release/../releases/older/secret.txt")
              if os.path.exists(p)],
}
raise RuntimeError("SEEN " + json.dumps(seen))
"""
    files = {
        "probe.py": probe,
        "hang.py": "while True:\n    pass\n",
        "broken.py": "import json\njson.loads('{')\n",
        "fine.py": "with DAG('fine', schedule=None):\n    pass\n",
    }
    ahead = run(root, files, timeout=3)
    assert len(started) == 1  # the one started ahead served the release
    seen = __import__("json").loads(
        next(f for f in ahead.findings if f.file == "probe.py").message.split("SEEN ", 1)[1].splitlines()[0]
    )
    assert seen == {"releases": [], "release": sorted(files), "older": []}
    assert "import-timeout" in rules_of(ahead, "hang.py")
    usual = run(root, files, timeout=3)
    assert len(started) == 2  # a sandbox started for the release, the usual way
    facts = lambda result: sorted(  # noqa: E731
        (f.rule, f.severity, f.file, f.line, f.message) for f in result.findings if f.file != "probe.py"
    )
    assert facts(ahead) == facts(usual) and ahead.dags == usual.dags
    assert_no_secret(ahead)
    assert SECRET not in " ".join(f.message for f in ahead.findings)

    assert structure.start_ahead(releases, timeout=3, memory_limit=None)
    structure.stop_ahead(releases)  # nothing changed: no validation takes it
    assert left_running(marker) == []


@needs_sandbox
def test_a_sandbox_started_ahead_that_cannot_show_its_release_gives_way_to_one_started_for_it(hostile, monkeypatch):
    """The folder of releases was replaced after the sandbox started ahead (its zygote still has the old one
    mounted), so binding the release fails in the zygote: the validation is answered all the same, by a sandbox
    started the usual way, and nothing of the first one is left running."""
    from airflow_dagops.validate import structure

    _, marker = hostile
    monkeypatch.setenv("AIRFLOW__DAGOPS__SANDBOX_KEEP_WARM", "0")
    releases = hostile[0].parent / "releases"
    releases.mkdir()
    started = []
    real_start = structure.Sandbox.start
    monkeypatch.setattr(structure.Sandbox, "start", lambda self: (started.append(self), real_start(self))[1])
    assert structure.start_ahead(releases, timeout=3, memory_limit=None)
    deadline = time.monotonic() + 60
    while not _pythons(processes_with(marker)):  # its zygote runs: bwrap mounted the folder, as it was then
        assert time.monotonic() < deadline, "the sandbox started ahead never started"
        time.sleep(0.05)
    releases.rename(releases.with_name("releases-before"))
    root = releases / "next"
    root.mkdir(parents=True)
    files = {"fine.py": "with DAG('fine', schedule=None):\n    pass\n", "broken.py": "import json\njson.loads('{')\n"}
    result = run(root, files, timeout=3)
    assert [dag.dag_id for dag in result.dags] == ["fine"]
    assert rules_of(result, "broken.py") and not rules_of(result, "fine.py")
    assert len(started) == 2  # the one started ahead, then one started for the release
    assert left_running(marker) == []


def test_a_release_is_shown_whole_only_when_every_user_may_read_its_folder(tmp_path):
    """Started ahead, the sandbox binds the release folder itself; a private folder, or a link, goes to a sandbox
    started the usual way (which binds the entries under a folder of its own)."""
    from airflow_dagops.validate.structure import _whole_folder_ok

    shared, private = tmp_path / "shared", tmp_path / "private"
    shared.mkdir(mode=0o755)
    private.mkdir(mode=0o700)
    shared.chmod(0o755)  # whatever the umask
    (tmp_path / "link").symlink_to(shared)
    assert _whole_folder_ok(shared)
    assert not _whole_folder_ok(private) and not _whole_folder_ok(tmp_path / "link")


def test_a_hostile_repository_synced_leaves_no_secret_in_rows_events_logs_or_cli_output(
    dagops_env, git_remote, caplog, monkeypatch
):
    """Through the sync face: what the DAG code raised is stored as a finding, redacted; the release is blocked."""
    from sqlalchemy import text

    from airflow_dagops.events import feed as events
    from airflow_dagops.store.db import get_engine

    monkeypatch.setenv("AIRFLOW__DAGOPS__VALIDATION_SKIP", "security,compat,imports,policy")
    secret = SECRET
    monkeypatch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", secret)
    hostile_dag = (
        HEADER + "import os\n"
        "seen = [open(f'/proc/{p}/environ').read() for p in os.listdir('/proc') if p.isdigit()]\n"
        f"raise RuntimeError('leak ' + {secret!r} + ' ' + ' '.join(seen))\n"
    )
    remote = git_remote({"dags/leak.py": hostile_dag})
    add_repository("hostile", remote.url, verify=False)
    outcome = sync_repository("hostile")
    assert outcome.status != "published" and "leak.py" in outcome.message
    cli = __import__("subprocess").run(
        [str(Path(os.sys.executable).parent / "dagops"), "repos", "show", "hostile", "--json"],
        env=dagops_env.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    with get_engine().connect() as connection:
        rows = [
            str(row)
            for table in ("dagops_sync_run", "dagops_release", "dagops_finding", "dagops_event")
            for row in connection.execute(text(f"SELECT * FROM {table}"))  # noqa: S608 - fixed table names
        ]
    rows += [str(event) for event in events.list_events(limit=100)["events"]]
    haystack = "\n".join([outcome.message, cli.stdout, cli.stderr, caplog.text, *rows])
    assert "leak" in haystack  # the finding is there, redacted
    assert secret not in haystack
