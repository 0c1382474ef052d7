"""(i) An isolated_env virtual environment when a release changes no requirement: reuse vs a fresh build.

The subject is what a sync does for a repository with `isolated_env: true` whose requirements did not change
(`venvs.ensure_venv`, which finds the complete environment by its key); the baseline is building that
environment from scratch with uv from a local wheelhouse (what every sync would pay without reuse).
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

from benchmarks.timing import Measurement, Samples, limit_goal, timed

N_PACKAGES = 5


def write_wheel(folder: Path, name: str, version: str = "1.0") -> None:
    """A minimal pure-Python wheel written by hand (no build backend, no network)."""
    dist = f"{name}-{version}"
    files = {
        f"{name}/__init__.py": f"VERSION = {version!r}\n",
        f"{dist}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = [
        f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(body.encode()).digest()).rstrip(b'=').decode()},"
        f"{len(body.encode())}"
        for path, body in files.items()
    ]
    with zipfile.ZipFile(folder / f"{dist}-py3-none-any.whl", "w") as archive:
        for path, body in files.items():
            archive.writestr(path, body)
        archive.writestr(f"{dist}.dist-info/RECORD", "\n".join([*record, f"{dist}.dist-info/RECORD,,"]) + "\n")


def measure_venv_reuse(work: Path, reps: int, progress: Callable[[str], None]) -> Measurement:
    from airflow_dagops.releases import environments as venvs

    wheelhouse = work / "wheelhouse"
    wheelhouse.mkdir(parents=True, exist_ok=True)
    requirements = []
    for index in range(N_PACKAGES):
        write_wheel(wheelhouse, f"benchpkg{index}")
        requirements.append(f"benchpkg{index}==1.0")
    os.environ["AIRFLOW__DAGOPS__WHEELHOUSE"] = str(wheelhouse)
    reuse = Samples(f"`ensure_venv` with unchanged requirements ({N_PACKAGES} packages): reused", role="subject")
    build = Samples(f"building the same environment with uv from the local wheelhouse ({N_PACKAGES} packages)")
    venvs.ensure_venv("bench", requirements)  # the environment a previous release built
    for rep in range(reps):
        progress(f"(i) {rep + 1}/{reps}: isolated environment reuse vs rebuild")
        ms, result = timed(lambda: venvs.ensure_venv("bench", requirements))
        assert result.reused
        reuse.ms.append(ms)
        shutil.rmtree(venvs.venvs_dir("fresh"), ignore_errors=True)
        ms, _ = timed(lambda: venvs.ensure_venv("fresh", requirements))
        build.ms.append(ms)
    return Measurement(
        "i",
        "(i) isolated_env: a release with unchanged requirements",
        "A sync of a repository with `isolated_env: true` whose requirements did not change finds its environment "
        "by the key of its requirements (`venvs.ensure_venv`); the baseline builds it afresh with uv from a "
        "local wheelhouse; interleaved.",
        [reuse, build],
        [limit_goal("unchanged requirements: environment ready in ≤ 1 s", reuse, 1000.0)],
        ["Reuse costs a `stat` of the environment's completion marker; the build cost grows with the packages."],
    )
