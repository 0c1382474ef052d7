"""Per-namespace virtual environments for repositories that opt in (`isolated_env: true`).

A repository's declared requirements (airflow_dagops/validate/dependencies.py) are installed with `uv` into
`<dagops_home>/venvs/<namespace>/<key>`, where the key hashes the requirements, the Python version and the
package source. An environment is reused for as long as that key stays the same, so a release that changes
no requirement costs one `stat`. Nothing is ever installed into Airflow's own environment.

DAGs run their heavy code there with `@task.external_python(python=namespace_python(__file__))` or
`ExternalPythonOperator`; `namespace_python` reads the path from the namespace's meta file (written by
services when a release goes live), so it works at parse time in the dag-processor and in the worker.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from airflow_dagops import settings
from airflow_dagops.airflow import namespace_meta
from airflow_dagops.deploy.locks import repository_lock
from airflow_dagops.errors import VenvBuildFailed

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

    namespace = _namespace_of(Path(dag_file))
    if namespace is None:
        return f"/dagops-isolated-env/not-in-a-dagops-namespace/{Path(dag_file).name}"
    python = (namespace_meta.read(namespace) or {}).get("python")
    return python or f"/dagops-isolated-env/{namespace}/isolated_env-is-not-enabled-for-this-repository"


def _namespace_of(path: Path) -> str | None:
    try:
        relative = path.relative_to(settings.dags_folder())
        return relative.parts[0] if len(relative.parts) >= 2 else None
    except ValueError:
        pass
    # A folder of the dagops-releases bundle (publish_mode = bundle): its tracking folder or a version folder.
    from airflow_dagops.airflow.cluster_policy import published_by  # lazy: loads Airflow, only at DAG parse time

    published = published_by(str(path))
    if published is not None:
        return published[0]
    parts = path.parts  # a release folder: <dagops_home>/releases/<namespace>/<sha>/...
    for index in range(len(parts) - 3, -1, -1):
        if parts[index] == "releases":
            return parts[index + 1]
    return None
