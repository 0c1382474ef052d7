"""Per-namespace virtual environments (isolated_env): built with uv from a local wheelhouse (no network),
reused while the requirements are unchanged, and a failed build blocks the release with uv's message."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from airflow_dagops.airflow import namespace_meta
from airflow_dagops.errors import DagOpsError
from airflow_dagops.releases import environments as venvs
from airflow_dagops.releases.rollback import get_release, live_dags
from airflow_dagops.repositories.info import get_repository
from airflow_dagops.repositories.registry import add_repository, update_repository
from airflow_dagops.sync.sync import sync_repository
from benchmarks.venv_reuse import write_wheel  # the benchmark builds its wheelhouse the same way
from tests.helpers.repos import dag_source


@pytest.fixture
def wheelhouse(dagops_env, tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "wheelhouse"
    folder.mkdir(parents=True)
    write_wheel(folder, "tinypkg", "1.0")
    monkeypatch.setenv("AIRFLOW__DAGOPS__WHEELHOUSE", str(folder))
    return folder


def _imports(python: Path, module: str) -> str:
    done = subprocess.run(
        [str(python), "-c", f"import {module}; print({module}.VERSION)"], capture_output=True, text=True
    )
    return done.stdout.strip() or done.stderr.strip()


def test_build_then_reuse_while_requirements_are_unchanged(wheelhouse):
    first = venvs.ensure_venv("team", ["tinypkg==1.0"])
    assert not first.reused and _imports(first.python, "tinypkg") == "1.0"
    marker = first.path / venvs.COMPLETE_MARKER
    built_at = marker.stat().st_mtime_ns
    second = venvs.ensure_venv("team", ["tinypkg==1.0"])
    assert second.reused and second.path == first.path
    assert marker.stat().st_mtime_ns == built_at  # nothing was rebuilt
    # Another namespace, or other requirements, get their own environment.
    assert venvs.ensure_venv("other", ["tinypkg==1.0"]).path != first.path
    assert venvs.ensure_venv("team", []).path != first.path


def test_a_failed_build_says_why_and_leaves_nothing_behind(wheelhouse):
    with pytest.raises(venvs.VenvBuildFailed) as caught:
        venvs.ensure_venv("team", ["tinypkg==2.0"])
    assert "tinypkg" in str(caught.value) and "uv could not build the environment" in str(caught.value)
    assert not any(p.is_dir() for p in venvs.venvs_dir("team").iterdir())  # no half-built environment


def test_only_the_newest_environments_are_kept(wheelhouse):
    keys = [venvs.ensure_venv("team", [f"tinypkg>=0.{n}"]).path.name for n in range(5)]
    left = {p.name for p in venvs.venvs_dir("team").iterdir() if p.is_dir()}
    assert keys[-1] in left and len(left) == venvs.KEEP_PER_NAMESPACE


def test_namespace_python_reads_the_meta_and_never_raises_at_parse_time(dagops_env):
    namespace_meta.write("team", {"repository": "team", "python": "/venvs/team/abc/bin/python"})
    assert (
        venvs.namespace_python(str(dagops_env.dags_folder / "team" / "dags" / "x.py")) == "/venvs/team/abc/bin/python"
    )
    release_file = dagops_env.dagops_home / "releases" / "team" / ("a" * 40) / "dags" / "x.py"
    assert venvs.namespace_python(str(release_file)) == "/venvs/team/abc/bin/python"  # in the validation sandbox
    assert "isolated_env-is-not-enabled" in venvs.namespace_python(str(dagops_env.dags_folder / "plain" / "x.py"))
    assert "not-in-a-dagops-namespace" in venvs.namespace_python("/somewhere/else.py")


ISOLATED_DAG = '''"""Uses its namespace's own environment.

Dependencies:
  - tinypkg==1.0
"""
import pendulum
from airflow.sdk import dag, task

from airflow_dagops.releases.environments import namespace_python


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False)
def isolated():
    @task.external_python(python=namespace_python(__file__))
    def version():
        import tinypkg

        return tinypkg.VERSION

    version()


isolated()
'''


def test_an_isolated_repository_publishes_with_its_environment(wheelhouse, git_remote, dagops_env, monkeypatch):
    # The sandboxed import runs too: namespace_python(__file__) must not break parsing in a release folder.
    monkeypatch.setenv("AIRFLOW__DAGOPS__VALIDATION_SKIP", "security,compat,imports,policy")
    remote = git_remote({"dags/isolated.py": ISOLATED_DAG, "dags/plain.py": dag_source("plain")})
    add_repository("team", remote.url, isolated_env=True)
    outcome = sync_repository("team")
    assert outcome.status == "published", outcome.message
    assert {d["dag_id"] for d in live_dags("team")[1]} == {"isolated", "plain"}
    ready = [f for f in outcome.findings if f["rule"] == "venv-ready"]
    assert ready and "built" in ready[0]["message"]
    python = namespace_meta.read("team")["python"]
    assert _imports(Path(python), "tinypkg") == "1.0"
    assert venvs.namespace_python(str(dagops_env.dags_folder / "team" / "dags" / "isolated.py")) == python

    # A new commit that changes no requirement reuses the environment.
    remote.commit("touch", {"dags/plain.py": dag_source("plain").replace("test", "touched")})
    outcome = sync_repository("team")
    assert outcome.status == "published"
    assert "reused" in next(f for f in outcome.findings if f["rule"] == "venv-ready")["message"]

    # A requirement the wheelhouse cannot satisfy blocks the release; the previous one stays live.
    live = get_repository("team").live_commit
    remote.commit("needs 2.0", {"dags/isolated.py": ISOLATED_DAG.replace("tinypkg==1.0", "tinypkg==2.0")})
    outcome = sync_repository("team")
    assert outcome.status == "failed"
    failed = next(f for f in outcome.findings if f["rule"] == "venv-build-failed")
    assert "tinypkg" in failed["message"]
    assert get_repository("team").live_commit == live


def test_isolated_env_is_a_boolean(dagops_env, git_remote):
    add_repository("team", git_remote().url)
    assert update_repository("team", isolated_env=True).isolated_env is True
    with pytest.raises(DagOpsError):
        update_repository("team", no_such_option=True)


def test_two_namespaces_pinning_different_versions_conflict_unless_isolated(dagops_env, git_remote, wheelhouse):
    from importlib.metadata import version

    installed = version("packaging")  # a library Airflow's own environment has
    first = git_remote({"requirements.txt": f"packaging=={installed}\n", "dags/a.py": dag_source("a")}, name="first")
    second = git_remote({"requirements.txt": "packaging==20.0\n", "dags/b.py": dag_source("b")}, name="second")
    add_repository("first", first.url)
    add_repository("second", second.url)
    assert sync_repository("first").status == "published"
    # The two pins cannot both hold in the one environment they share: the newcomer is held back...
    outcome = sync_repository("second")
    conflict = [f for f in outcome.findings if f["rule"] == "dependency-conflict"]
    assert outcome.status == "failed" and conflict
    assert f"packaging=={installed}" in conflict[0]["message"] and "first" in conflict[0]["message"]
    # ...and the other side hears about it on its live release.
    live = get_release(get_repository("first").live_release_id)
    told = [f for f in live["findings"] if f["rule"] == "dependency-conflict"]
    assert len(told) == 1 and "second" in told[0]["message"]

    # With its own environment the second repository shares nothing with the first: no conflict, and its
    # pin is checked by building that environment (20.0 is not in the wheelhouse, so the build says so).
    update_repository("second", isolated_env=True)
    second.commit("isolated now")
    outcome = sync_repository("second")
    rules = {f["rule"] for f in outcome.findings}
    assert "dependency-conflict" not in rules and "dependency-version" not in rules
    assert "venv-build-failed" in rules


def test_a_source_distribution_is_never_built_outside_the_sandbox(wheelhouse, tmp_path):
    """Building an sdist runs its setup code in the dagops process' machine, outside the validation sandbox: a
    requirement only a source distribution satisfies fails the build, and its setup code never ran."""
    ran = tmp_path / "setup-ran"
    source = tmp_path / "evilpkg-1.0"
    source.mkdir()
    (source / "setup.py").write_text(
        f"from pathlib import Path\nPath({str(ran)!r}).write_text('ran')\n"
        "from setuptools import setup\nsetup(name='evilpkg', version='1.0')\n"
    )
    (source / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: evilpkg\nVersion: 1.0\n")
    subprocess.run(
        ["tar", "-czf", str(wheelhouse / "evilpkg-1.0.tar.gz"), "-C", str(tmp_path), source.name], check=True
    )
    with pytest.raises(venvs.VenvBuildFailed) as caught:
        venvs.ensure_venv("team", ["evilpkg==1.0"])
    assert "evilpkg" in str(caught.value)
    assert not ran.exists()


def test_uv_gets_no_secret_of_the_dagops_process():
    environ = {
        "PATH": "/usr/bin",
        "HOME": "/home/airflow",
        "UV_INDEX_URL": "https://pypi.internal/simple",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql://airflow:pw@db/airflow",
        "AIRFLOW__DAGOPS__SQL_ALCHEMY_CONN": "postgresql://dagops:pw@db/dagops",
        "AWS_SECRET_ACCESS_KEY": "x",
        "VIRTUAL_ENV": "/opt/airflow/.venv",
        "https_proxy": "http://proxy:3128",
    }
    env = venvs.uv_environment(environ)
    assert set(env) == {"PATH", "HOME", "UV_INDEX_URL", "https_proxy", "UV_NO_PROGRESS"}
