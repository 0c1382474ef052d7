"""Per-namespace virtual environments for repositories that opt in (`isolated_env: true`).

A repository's declared requirements (airflow_dagops/validate/dependencies.py) are installed with `uv` into
`<dagops_home>/venvs/<namespace>/<key>`, where the key hashes the requirements, the Python version and the
package source. An environment is reused for as long as that key stays the same, so a release that changes
no requirement costs one `stat`. Nothing is ever installed into Airflow's own environment.

DAGs run their heavy code there with `@task.external_python(python=namespace_python(__file__))` or
`ExternalPythonOperator`. When a release goes live, the namespace's meta (airflow/namespace_meta.py) records the
environment: the interpreter the publisher built and the requirements it was built from (`environment_meta`).
`namespace_python` turns that into this machine's interpreter, so it works at parse time in the dag-processor and
on a worker. A worker whose dagops_home is its own (publish_mode = bundle, no shared volume) has no such
environment until the dagops-releases bundle builds it there from the recorded requirements, when it initializes
a version (`ensure_recorded`, called from bundle/materialize.py): the same key, the same folder layout, so
`namespace_python` finds it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from airflow_dagops import settings
from airflow_dagops.airflow import namespace_meta
from airflow_dagops.deploy.locks import repository_lock
from airflow_dagops.errors import VenvBuildFailed
from airflow_dagops.validate.declarations import requirements_from_summary

log = logging.getLogger(__name__)

COMPLETE_MARKER = ".dagops-complete"  # written last: a folder without it is a build that did not finish
KEEP_PER_NAMESPACE = 3
OUTPUT_TAIL = 4000  # characters of the resolver's message kept for the finding
BUILD_HINT = (
    "Fix the declared requirements (PEP 723 block, Dependencies: docstring, requirements.txt or pyproject.toml), "
    "or add the missing wheels to [dagops] wheelhouse."
)


@dataclass
class VenvResult:
    path: Path
    python: Path
    reused: bool
    seconds: float = 0.0


def venv_key(requirements: list[str], *, wheelhouse: str | None) -> str:
    """Same requirements, same Python, same package source: same environment."""
    material = {
        "requirements": sorted({r.strip() for r in requirements if r.strip()}),
        "python": list(sys.version_info[:2]),
        "wheelhouse": wheelhouse or "",
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:16]


def venvs_dir(namespace: str) -> Path:
    return settings.dagops_home() / "venvs" / namespace


def requirements_of(summary: Mapping | None) -> list[str]:
    """The requirements an environment is built from: those a release's validation summary declares."""
    return [str(r.requirement) for r in requirements_from_summary(summary)]


def environment_meta(summary: Mapping | None) -> dict:
    """What a namespace's meta records of its release's isolated environment (nothing without one): the
    interpreter the publisher built, and the requirements it was built from, so that any machine can build the
    same environment (`ensure_recorded`) and find it (`namespace_python`)."""
    venv = (summary or {}).get("venv")
    if not venv:
        return {}
    return {"python": venv["python"], "venv_requirements": requirements_of(summary)}


def local_python(namespace: str, meta: Mapping) -> str | None:
    """This machine's interpreter of the environment `meta` records: the one its requirements key under this
    process's dagops_home (on the publisher, the path it recorded). Meta recorded before requirements were only
    has the publisher's path."""
    requirements = meta.get("venv_requirements")
    if requirements is None:
        return meta.get("python")
    key = venv_key(requirements, wheelhouse=settings.get("wheelhouse") or None)
    return str(_python_in(venvs_dir(namespace) / key))


def ensure_recorded(namespace: str, meta: Mapping) -> VenvResult | None:
    """The environment `meta` records, built on this machine when it has none (a worker with a dagops_home of its
    own); None when the namespace has no recorded environment. Raises VenvBuildFailed as `ensure_venv` does."""
    requirements = meta.get("venv_requirements")
    if requirements is None:
        return None
    return ensure_venv(namespace, list(requirements))


def ensure_venv(namespace: str, requirements: list[str], *, timeout: float | None = None) -> VenvResult:
    """The environment for these requirements, built if it does not exist yet. Raises VenvBuildFailed with
    the resolver's own message when uv cannot install them; nothing half-built is ever reused."""
    import time

    wheelhouse = settings.get("wheelhouse") or None
    key = venv_key(requirements, wheelhouse=wheelhouse)
    target = venvs_dir(namespace) / key
    if (target / COMPLETE_MARKER).is_file():
        return VenvResult(target, _python_in(target), reused=True)
    started = time.monotonic()
    with repository_lock(settings.dagops_home() / "locks", f"_venv-{namespace}", timeout=timeout or 600):
        if (target / COMPLETE_MARKER).is_file():  # built by another process while we waited
            return VenvResult(target, _python_in(target), reused=True)
        shutil.rmtree(target, ignore_errors=True)  # an unfinished earlier build
        try:
            _build(target, requirements, wheelhouse=wheelhouse, timeout=timeout or 600)
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise
        (target / COMPLETE_MARKER).write_text(json.dumps({"requirements": sorted(requirements)}))
    prune(namespace, keep={key})
    seconds = time.monotonic() - started
    log.info("built the %s environment %s in %.1fs (%d requirements)", namespace, key, seconds, len(requirements))
    return VenvResult(target, _python_in(target), reused=False, seconds=seconds)


def _build(target: Path, requirements: list[str], *, wheelhouse: str | None, timeout: float) -> None:
    uv = uv_command()
    target.parent.mkdir(parents=True, exist_ok=True)
    _run([*uv, "venv", "--quiet", "--python", sys.executable, str(target)], timeout=timeout)
    if not requirements:
        return
    requirements_file = target / "dagops-requirements.txt"
    requirements_file.write_text("\n".join(requirements) + "\n")
    # --no-build: a requirement comes from a repository's files, and building a source distribution runs its
    # setup code here, outside the validation sandbox; a wheel installs without running anything.
    python = str(_python_in(target))
    install = [*uv, "pip", "install", "--quiet", "--no-build", "--python", python, "-r", str(requirements_file)]
    if wheelhouse:
        # An offline wheelhouse: nothing is fetched from an index, so a missing wheel fails loudly.
        install += ["--offline", "--no-index", "--find-links", wheelhouse]
    try:
        _run(install, timeout=timeout)
    except VenvBuildFailed as err:
        raise VenvBuildFailed(
            f"{err}\nOnly wheels are installed (a source distribution would run its setup code outside the "
            "sandbox): publish a wheel of each requirement to your index or the wheelhouse."
        ) from err


def _run(command: list[str], *, timeout: float) -> None:
    env = uv_environment(os.environ)
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired as err:
        raise VenvBuildFailed(f"building the environment took longer than {timeout:.0f}s") from err
    if done.returncode != 0:
        message = (done.stderr or done.stdout or "").strip()[-OUTPUT_TAIL:]
        raise VenvBuildFailed(f"uv could not build the environment: {message}")


# What uv needs of this process' environment: the search path and locale, where its cache and config live, and how
# it reaches an index (proxies, certificates, its own UV_/PIP_ settings, which may hold an index's credentials: they
# are meant for uv). Nothing else (the state DB's URL, Airflow's secrets) reaches it or a package it installs.
_UV_NAMES = frozenset(
    {"PATH", "HOME", "LANG", "TZ", "TMPDIR", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "NETRC"}
)
_UV_PREFIXES = ("LC_", "UV_", "PIP_", "XDG_")
_PROXY_NAMES = frozenset({"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"})


def uv_environment(environ: dict[str, str] | os._Environ) -> dict[str, str]:
    """uv's environment, from an allow-list of `environ`. VIRTUAL_ENV is left out: uv must only ever touch the
    environment named by --python, not the one Airflow runs in."""
    kept = {
        name: value
        for name, value in environ.items()
        if name in _UV_NAMES or name.upper() in _PROXY_NAMES or name.startswith(_UV_PREFIXES)
    }
    return kept | {"UV_NO_PROGRESS": "1"}


def uv_command() -> list[str]:
    """uv as installed with this package (its wheel ships the binary), else the one on PATH."""
    try:
        from uv import find_uv_bin

        return [find_uv_bin()]
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if found:
            return [found]
    raise VenvBuildFailed("uv is not installed; install dagops with its dependencies (`pip install airflow-dagops`)")


def _python_in(venv: Path) -> Path:
    return venv / "bin" / "python"


def prune(namespace: str, *, keep: set[str]) -> list[str]:
    """Remove all but the newest few complete environments of a namespace (and any unfinished build);
    `keep` (the keys in use) are never removed."""
    folder = venvs_dir(namespace)
    if not folder.is_dir():
        return []
    complete = sorted(
        (p for p in folder.iterdir() if (p / COMPLETE_MARKER).is_file()),
        key=lambda p: (p / COMPLETE_MARKER).stat().st_mtime,
        reverse=True,
    )
    keep = keep | {p.name for p in complete[:KEEP_PER_NAMESPACE]}
    removed = []
    for path in folder.iterdir():
        if path.is_dir() and path.name not in keep and (path / COMPLETE_MARKER).is_file():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
    return removed


def namespace_python(dag_file: str) -> str:
    """The interpreter of the isolated environment of the namespace `dag_file` is published in, for
    `@task.external_python(python=namespace_python(__file__))`.

    It never raises, because it runs while the DAG file is parsed (by the dag-processor, and by dagops'
    validation sandbox, where the file sits in a release folder): without an environment it returns a path
    that does not exist and says why, so the task fails at run time with that reason in its name."""

    found = _namespace_of(Path(dag_file))
    if found is None:
        return f"/dagops-isolated-env/not-in-a-dagops-namespace/{Path(dag_file).name}"
    namespace, meta = found
    python = local_python(namespace, meta)
    return python or f"/dagops-isolated-env/{namespace}/isolated_env-is-not-enabled-for-this-repository"


def _namespace_of(path: Path) -> tuple[str, Mapping] | None:
    """(namespace, its meta) of a published file: the live meta for the dags folder and a release folder, the
    meta of the version for a folder of the dagops-releases bundle (a run keeps the environment it started on)."""
    try:
        relative = path.relative_to(settings.dags_folder())
        if len(relative.parts) < 2:
            return None
        return relative.parts[0], namespace_meta.read(relative.parts[0]) or {}
    except ValueError:
        pass
    # A folder of the dagops-releases bundle (publish_mode = bundle): its tracking folder or a version folder.
    from airflow_dagops.airflow.cluster_policy import namespace_settings  # lazy: loads Airflow, only at parse time

    published = namespace_settings(str(path))
    if published is not None:
        return published
    parts = path.parts  # a release folder: <dagops_home>/releases/<namespace>/<sha>/...
    for index in range(len(parts) - 3, -1, -1):
        if parts[index] == "releases":
            return parts[index + 1], namespace_meta.read(parts[index + 1]) or {}
    return None
