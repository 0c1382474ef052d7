"""Options, hooks and fixtures of the pytest plugin. Loaded into every pytest run of an environment where
airflow-dagops is installed, so it only registers options and markers until a fixture or option is used:
no Airflow import, no file read, no environment change before then."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from airflow_dagops.errors import DagOpsError, InvalidInput
from airflow_dagops.testing import mocks, perf
from airflow_dagops.testing.environment import (
    DagRunEnvironment,
    airflow_env_vars,
    connect_metadata_db,
    default_dags_folder,
    disconnect_metadata_db,
    load_environment_file,
)

MARKER = "dagops_dag"
BUDGET_MARKER = "dagops_budget"


class DagOpsTestState:
    """Per-session state behind the fixtures: the DAG folder, the env file, the DagBag and the metadata DB."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.dags_folder = _dags_folder(config)
        self.env_file = _path_option(config, "dagops_env")
        self._environment: DagRunEnvironment | None = None
        self._dagbag = None
        self._db_ready = False
        self._patch = pytest.MonkeyPatch()
        self.perf = perf.PerfRecord()
        self._parsed: dict[Path, perf.ParseTiming] = {}

    def environment(self) -> DagRunEnvironment:
        """Connections and Variables from the env file, exported as AIRFLOW_CONN_*/AIRFLOW_VAR_* once."""
        if self._environment is None:
            self._environment = load_environment_file(self.env_file)
            for key, value in self._environment.env_vars().items():
                self._patch.setenv(key, value)
        return self._environment

    def dagbag(self):
        if self._dagbag is None:
            if not self.dags_folder.is_dir():
                raise pytest.UsageError(f"dagops: the DAG folder {self.dags_folder} does not exist (--dagops-dags)")
            self.environment()
            from airflow.dag_processing.dagbag import DagBag

            self._dagbag = DagBag(dag_folder=str(self.dags_folder))
        return self._dagbag

    def metadata_db(self, make_home: Callable[[], Path]) -> None:
        if self._db_ready:
            return
        self.environment()
        home = make_home()
        self._patch.setenv("AIRFLOW_HOME", str(home))
        for key, value in airflow_env_vars(home, self.dags_folder).items():
            self._patch.setenv(key, value)
        self._patch.delenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC", raising=False)
        connect_metadata_db()
        self._db_ready = True

    def parse_timing(self, file: Path) -> perf.ParseTiming:
        """The file's parse time, measured once per session in a fresh process (testing/perf.py) and recorded."""
        file = file.resolve()
        if file not in self._parsed:
            self.environment()  # the env file's Connections/Variables, as a DAG file parsed in Airflow sees them
            env = dict(os.environ)
            # The dags folder is on sys.path in the dag-processor, so `import helpers` from a DAG file works there.
            env["PYTHONPATH"] = os.pathsep.join(p for p in (str(self.dags_folder), env.get("PYTHONPATH", "")) if p)
            measured = perf.measure_parse(file, env=env)
            if measured["errors"]:
                problems = "; ".join(f"{Path(f).name}: {e}" for f, e in measured["errors"].items())
                raise InvalidInput(f"{file.name} cannot be parsed, so its parse time says nothing: {problems}")
            name = _recorded_name(self.config.rootpath, file)
            self._parsed[file] = perf.ParseTiming(name, measured["seconds"], measured["dag_ids"])
            self.perf.add_parse(name, measured["seconds"])
        return self._parsed[file]

    def report_path(self) -> Path | None:
        return _path_option(self.config, "dagops_perf_report") or (
            Path(os.environ[perf.REPORT_ENV]) if os.environ.get(perf.REPORT_ENV) else None
        )

    def close(self) -> None:
        self._patch.undo()
        if self._db_ready:
            disconnect_metadata_db()


STATE_KEY = pytest.StashKey[DagOpsTestState]()


def state(config: pytest.Config) -> DagOpsTestState:
    if STATE_KEY not in config.stash:
        config.stash[STATE_KEY] = DagOpsTestState(config)
    return config.stash[STATE_KEY]


# --- options and hooks ---------------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("dagops", "airflow-dagops: test a DAG repository")
    group.addoption(
        "--dagops-dags",
        metavar="PATH",
        help="folder of the repository's DAG files for the dagbag/dag/run_dag fixtures "
        "(default: ini dagops_dags, else <rootdir>/dags if it exists, else <rootdir>)",
    )
    group.addoption(
        "--dagops-env",
        metavar="FILE",
        help="YAML/JSON file of {connections: {id: uri-or-mapping}, variables: {key: value}} for DAG runs",
    )
    group.addoption(
        "--dagops-integrity",
        metavar="PATH",
        action="append",
        default=[],
        help="validate the DAG files under PATH with the dagops pipeline, one test per file (repeatable); "
        "without test paths on the command line, only these tests run",
    )
    group.addoption(
        "--dagops-no-cache",
        action="store_true",
        help="integrity mode: do not use or fill the validation cache",
    )
    group.addoption(
        "--dagops-perf-report",
        metavar="FILE",
        help="write the parse and task run times the tests measured to FILE as JSON "
        f"(default: ${perf.REPORT_ENV}, set by dagops when it runs a release's tests)",
    )
    parser.addini("dagops_dags", "folder of the repository's DAG files, relative to the ini file")
    parser.addini("dagops_env", "Connections/Variables file for DAG runs, relative to the ini file")
    parser.addini("dagops_perf_report", "where to write the measured parse and run times, relative to the ini file")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(*dag_ids): run the test once per DAG id with the `dag` fixture set to that DAG "
        "(no ids: every DAG of the DAG folder)",
    )
    config.addinivalue_line("markers", "dagops_integrity: a dagops integrity test of one DAG file")
    config.addinivalue_line(
        "markers",
        f"{BUDGET_MARKER}(parse_seconds=N): after the test, fail it when the file of its `dag` takes longer "
        "than N seconds to parse (measured as the dag-processor parses it)",
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """A `dagops_budget` marker is checked after the test body passed, on the DAG its `dag` fixture gave."""
    outcome = yield
    marker = item.get_closest_marker(BUDGET_MARKER)
    if marker is not None:
        _check_budget_marker(item, marker)
    return outcome


def _check_budget_marker(item: pytest.Item, marker: pytest.Mark) -> None:
    unknown = set(marker.kwargs) - {"parse_seconds"}
    if marker.args or unknown or "parse_seconds" not in marker.kwargs:
        pytest.fail(f"@pytest.mark.{BUDGET_MARKER} takes parse_seconds=N only", pytrace=False)
    target = getattr(item, "funcargs", {}).get("dag")
    if target is None:
        pytest.fail(
            f"@pytest.mark.{BUDGET_MARKER} needs the test to use the `dag` fixture "
            f"(with @pytest.mark.{MARKER}('my_dag')); or call assert_parse_within('my_dag', N)",
            pytrace=False,
        )
    budget = _dagops_fail(perf.check_budget, marker.kwargs["parse_seconds"], "parse_seconds")
    _assert_parse(state(item.config), Path(target.fileloc), budget)


def pytest_sessionfinish(session: pytest.Session) -> None:
    if STATE_KEY not in session.config.stash:
        return
    test_state = session.config.stash[STATE_KEY]
    path = test_state.report_path()
    if path is not None:
        test_state.perf.write(path)


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    if STATE_KEY in config.stash and config.stash[STATE_KEY].perf:
        terminalreporter.write_sep("-", "dagops: measured parse and run times")
        for line in config.stash[STATE_KEY].perf.lines():
            terminalreporter.write_line(line)


def pytest_unconfigure(config: pytest.Config) -> None:
    if STATE_KEY in config.stash:
        config.stash[STATE_KEY].close()


def pytest_ignore_collect(collection_path: Path, config: pytest.Config):
    """`pytest --dagops-integrity dags/` alone runs the integrity tests only, not the tests under the rootdir."""
    if _integrity_only(config):
        return True
    return None


@pytest.hookimpl(tryfirst=True)  # before -k/-m deselection, so those select integrity items too
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    folders = config.getoption("dagops_integrity")
    if not folders:
        return
    from airflow_dagops.testing.integrity import make_collectors  # lazy: loads in every pytest run

    resolved = [_resolve(config.invocation_params.dir, folder) for folder in folders]
    for folder in resolved:
        if not folder.is_dir():
            raise pytest.UsageError(f"--dagops-integrity: {folder} is not a folder")
    for collector in make_collectors(session, resolved, use_cache=not config.getoption("dagops_no_cache")):
        collected = list(collector.collect())
        items.extend(collected)
        # Tell the reporters, so "collected N items" and --collect-only count these too.
        config.hook.pytest_collectreport(report=pytest.CollectReport(collector.nodeid, "passed", None, [*collected]))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker(MARKER)
    if marker is None or "dag" not in metafunc.fixturenames:
        return
    dag_ids = list(marker.args) or _all_dag_ids(metafunc.config)
    metafunc.parametrize("dag", dag_ids, indirect=True, ids=[str(dag_id) for dag_id in dag_ids])


def _all_dag_ids(config: pytest.Config) -> list[str]:
    bag = _dagops_call(state(config).dagbag)
    return sorted(bag.dag_ids)


def _integrity_only(config: pytest.Config) -> bool:
    if not config.getoption("dagops_integrity"):
        return False
    explicit = pytest.Config.ArgsSource.ARGS if hasattr(pytest.Config, "ArgsSource") else None
    return getattr(config, "args_source", explicit) != explicit


def _dags_folder(config: pytest.Config) -> Path:
    return _path_option(config, "dagops_dags") or default_dags_folder(config.rootpath)


def _path_option(config: pytest.Config, name: str) -> Path | None:
    """The command-line option (relative to where pytest was started), else the ini value (to the ini file)."""
    value = config.getoption(name)
    if value:
        return _resolve(config.invocation_params.dir, value)
    value = config.getini(name)
    if value:
        return _resolve(config.inipath.parent if config.inipath else config.rootpath, value)
    return None


def _resolve(base: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return (path if path.is_absolute() else Path(base) / path).resolve()


def _recorded_name(rootpath: Path, file: Path) -> str:
    """A file as the report names it: relative to the rootdir (a release's root when dagops runs the tests)."""
    try:
        return file.relative_to(Path(rootpath).resolve()).as_posix()
    except ValueError:
        return file.as_posix()


def _dagops_fail(function, *args, **kwargs):
    """Our errors inside a test (a bad budget, a file that does not parse) as a plain test failure."""
    try:
        return function(*args, **kwargs)
    except DagOpsError as err:
        pytest.fail(f"dagops: {err}", pytrace=False)


def _dagops_call(function, *args, **kwargs):
    """Our errors (a bad env file, an unknown task id) as a plain pytest failure, not a traceback into us."""
    try:
        return function(*args, **kwargs)
    except DagOpsError as err:
        raise pytest.UsageError(f"dagops: {err}") from None


# --- fixtures ------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def dagbag(pytestconfig):
    """Airflow's DagBag of the repository's DAG folder, parsed once per session (see `import_errors`)."""
    return _dagops_call(state(pytestconfig).dagbag)


@pytest.fixture
def get_dag(dagbag):
    """Factory: `get_dag("my_dag")` returns that DAG from the DagBag; mocks made during the test are undone."""

    def get(dag_id: str):
        # `dagbag.dags`, not `get_dag()`: that one asks the metadata DB whether to re-parse, and a test that
        # only inspects a DAG should need no DB.
        found = dagbag.dags.get(dag_id)
        if found is None:
            pytest.fail(_not_found_message(dagbag, dag_id), pytrace=False)
        return found

    yield get
    mocks.undo_all()


@pytest.fixture
def dag(request, get_dag):
    """The DAG named by `@pytest.mark.dagops_dag("id", ...)` or by indirect parametrization."""
    dag_id = getattr(request, "param", None)
    if dag_id is None:
        pytest.fail(
            f"the `dag` fixture needs a DAG id: mark the test with @pytest.mark.{MARKER}('my_dag') "
            "(or use the get_dag('my_dag') factory)",
            pytrace=False,
        )
    return get_dag(dag_id)


@pytest.fixture
def run_dag(pytestconfig, tmp_path_factory, get_dag):
    """Factory: `run_dag("my_dag", conf={...}, mocks={"task_id": value_or_callable})` runs the DAG in
    process with `dag.test()` on a throwaway SQLite metadata DB and returns a DagRunResult."""
    test_state = state(pytestconfig)
    _dagops_call(test_state.metadata_db, lambda: tmp_path_factory.mktemp("dagops-airflow-home"))

    def run(dag_or_id, *, conf: dict | None = None, mocks: dict | None = None, logical_date=None, timed=()):
        from airflow_dagops.testing.runner import run_dag as run_once  # lazy: loads in every pytest run

        # Inside the test, our errors (an unknown task id to mock) stay InvalidInput: `pytest.raises` can catch them.
        target = get_dag(dag_or_id) if isinstance(dag_or_id, str) else dag_or_id
        return run_once(target, conf=conf, mocks_by_target=mocks, logical_date=logical_date, timed=timed)

    return run


def _not_found_message(dagbag, dag_id: str) -> str:
    known = ", ".join(sorted(dagbag.dag_ids)) or "none"
    message = f"no DAG {dag_id!r} in {dagbag.dag_folder} (DAGs: {known})"
    if dagbag.import_errors:
        failed = "\n".join(
            f"  {path}: {error.strip().splitlines()[-1]}" for path, error in dagbag.import_errors.items()
        )
        message += f"\nfiles that failed to import:\n{failed}"
    return message


# --- performance budgets (testing/perf.py) -------------------------------------------------------------


def _parse_file(request: pytest.FixtureRequest, target) -> Path:
    """A DAG file from a path (relative to the DAG folder or the rootdir), a DAG object, or a dag_id."""
    fileloc = getattr(target, "fileloc", None)
    if fileloc:
        return Path(fileloc)
    if isinstance(target, Path) or (isinstance(target, str) and target.endswith(".py")):
        test_state = state(request.config)
        path = Path(target)
        candidates = [path] if path.is_absolute() else [test_state.dags_folder / path, request.config.rootpath / path]
        for candidate in candidates:
            if candidate.is_file():
                return candidate
        pytest.fail(f"no DAG file {target} (looked in {', '.join(str(c.parent) for c in candidates)})", pytrace=False)
    if isinstance(target, str):
        bag = request.getfixturevalue("dagbag")
        found = bag.dags.get(target)
        if found is None:
            pytest.fail(_not_found_message(bag, target), pytrace=False)
        return Path(found.fileloc)
    pytest.fail(f"a DAG file is named by a dag_id, a path or a DAG, not {target!r}", pytrace=False)


def _assert_parse(test_state: DagOpsTestState, file: Path, budget: float) -> float:
    timing = _dagops_fail(test_state.parse_timing, file)
    problem = perf.over_budget(f"parsing {timing.file}", timing.seconds, budget)
    if problem:
        pytest.fail(problem, pytrace=False)
    return timing.seconds


@pytest.fixture
def dag_parse_time(request):
    """Factory: `dag_parse_time("my_dag")` (or a file path, or a DAG) is the seconds its file takes to parse,
    measured as the dag-processor parses it: a fresh process with Airflow loaded. Recorded for the perf report."""

    def measure(target) -> float:
        return _dagops_fail(state(request.config).parse_timing, _parse_file(request, target)).seconds

    return measure


@pytest.fixture
def assert_parse_within(request):
    """Factory: `assert_parse_within("my_dag", 1.0)` fails the test, with the numbers, when the file of that DAG
    (or that file) takes longer than 1.0 s to parse; returns the seconds measured."""

    def check(target, seconds) -> float:
        budget = _dagops_fail(perf.check_budget, seconds, "the parse budget")
        return _assert_parse(state(request.config), _parse_file(request, target), budget)

    return check


@pytest.fixture
def task_run_time(pytestconfig, run_dag):
    """Factory: `task_run_time("my_dag", "my_task", mocks={...}, conf={...})` runs the DAG once with `run_dag` and
    returns the seconds that task's `execute` took (a mapped task: its instances' durations added up). Recorded."""

    def measure(dag_id, task_id: str, *, mocks: dict | None = None, conf: dict | None = None) -> float:
        result = run_dag(dag_id, mocks=mocks, conf=conf, timed=[task_id])
        seconds = _dagops_fail(perf.task_seconds, result, task_id)
        state(pytestconfig).perf.add_task(result.dag_id, task_id, seconds)
        return seconds

    return measure


@pytest.fixture
def assert_task_within(task_run_time):
    """Factory: `assert_task_within("my_dag", "my_task", 2.0, mocks={...})` fails the test, with the numbers, when
    the task runs longer than 2.0 s; returns the seconds measured."""

    def check(dag_id, task_id: str, seconds, *, mocks: dict | None = None, conf: dict | None = None) -> float:
        budget = _dagops_fail(perf.check_budget, seconds, "the run budget")
        measured = task_run_time(dag_id, task_id, mocks=mocks, conf=conf)
        name = dag_id if isinstance(dag_id, str) else dag_id.dag_id
        problem = perf.over_budget(f"task {name}.{task_id}", measured, budget)
        if problem:
            pytest.fail(problem, pytrace=False)
        return measured

    return check
