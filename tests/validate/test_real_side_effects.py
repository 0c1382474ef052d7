"""Import-time side effects reached through a same-file class (tests/fixtures/real/side_effects).

bad/: a client class's method called at module level (on a fresh instance, on an instance bound at module level, a
static method on the class), and classes whose `__init__` (delegating to `self._load()`) or dataclass `__post_init__`
reaches the network or writes a file when the module-level code builds one. good/: the same kind of client and a
custom operator, called only inside tasks (`execute`, a `@task` body): no finding, and the real sandbox imports it.
The reach is bounded: one call away from module level, plus one step through `self` inside a followed method.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from airflow_dagops.validate import validate
from airflow_dagops.validate.security import check_security

REAL = Path(__file__).resolve().parents[1] / "fixtures" / "real" / "side_effects"


def side_effects(root: Path, relative: str) -> dict[int, str]:
    effects = [f for f in check_security(root, [relative]) if f.rule == "import-time-side-effect"]
    assert all(f.severity == "error" for f in effects)
    return {f.line: f.message for f in effects}


def scanned(tmp_path: Path, source: str) -> dict[int, str]:
    (tmp_path / "dags").mkdir(exist_ok=True)
    (tmp_path / "dags" / "a.py").write_text(textwrap.dedent(source))
    return side_effects(tmp_path, "dags/a.py")


def test_a_method_called_at_module_level_is_followed() -> None:
    effects = side_effects(REAL / "bad", "client_method_dag.py")
    assert set(effects) == {26, 28, 29}  # not line 27: CatalogClient's __init__ only stores its argument
    assert effects[26].startswith("Through `CatalogClient(CATALOG_URL).tables()`, on line 19: `requests.get(...)`")
    assert effects[28].startswith("Through `client.tables()`, on line 19:") and "makes a network call" in effects[28]
    assert effects[29].startswith("Through `CatalogClient.release()`, on line 23:")
    assert "starts a process" in effects[29]


def test_an_instantiation_whose_init_does_it_is_followed() -> None:
    effects = side_effects(REAL / "bad", "config_init_dag.py")
    assert set(effects) == {32, 33}
    assert effects[32].startswith("Through `RemoteConfig()` then `self._load()`, on line 20: `urlopen(...)`")
    assert effects[33].startswith("Through `Manifest()`, on line 29: `Path(self.path).write_text(...)`")
    assert "writes or deletes files" in effects[33]


def test_methods_called_only_in_tasks_are_not_findings(tmp_path) -> None:
    assert side_effects(REAL / "good", "methods_in_tasks_dag.py") == {}
    report = validate(REAL / "good", cache_path=tmp_path / "cache.db")
    assert report.errors == [], [(f.rule, f.file, f.message) for f in report.errors]
    assert {d.dag_id for d in report.dags} == {"catalog_refresh"}


def test_the_reach_is_bounded(tmp_path) -> None:
    """One step through `self` and no further; recursion, base-class cycles and decorated methods end the walk."""
    effects = scanned(
        tmp_path,
        """\
        import functools
        from urllib.request import urlopen

        from airflow.sdk import task


        class Deep:
            def __init__(self):
                self._a()

            def _a(self):
                self._b()

            def _b(self):
                urlopen("https://example.com")


        class Loop:
            def __init__(self):
                self.__init__()


        class A(object):
            pass


        class B(A):
            @task
            def fetch(self):
                return urlopen("https://example.com")

            @functools.cache
            def cached(self):
                return urlopen("https://example.com")


        DEEP = Deep()  # __init__ -> _a -> _b: two steps through self, not followed
        LOOP = Loop()
        FETCH = B().fetch()  # decorated by @task: calling it does not run the body
        CACHED = B().cached()  # line 40: functools.cache still runs it


        class P(Q):
            pass


        class Q(P):
            pass


        PQ = Q()
        """,
    )
    assert list(effects) == [40]


def test_same_file_base_classes_lend_their_methods(tmp_path) -> None:
    effects = scanned(
        tmp_path,
        """\
        import subprocess


        class Base:
            def __init__(self):
                subprocess.run(["make"])


        class Child(Base):
            pass


        CHILD = Child()
        """,
    )
    assert list(effects) == [13] and effects[13].startswith("Through `Child()`, on line 6: `subprocess.run(...)`")
