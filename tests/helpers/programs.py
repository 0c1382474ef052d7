"""Programs from outside Python that some tests need (sshd, chromium, jq, git's daemon ...), and how those tests
skip, with the reason and the package to install, on a machine that lacks one: a fresh machine running `make test`
sees skips that say what to install, never errors.

- `requires_program("sshd", "ssh")` is a `skipif` mark for a test or a module;
- `skip_unless_program("sshd")` skips from inside a fixture or a helper (a session fixture that skips skips every
  test using it) and returns the program's path.

`DAGOPS_TEST_MISSING_PROGRAMS=sshd,chromium` makes those programs look missing: how the skip paths are checked on a
machine that has them (a restricted PATH cannot hide sshd, which is looked up in the sbin folders too).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

import pytest

MISSING_ENV = "DAGOPS_TEST_MISSING_PROGRAMS"

# Debian/Ubuntu packages, for the skip reason.
PACKAGES = {
    "sshd": "openssh-server",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "chromium": "chromium",
    "jq": "jq",
    "curl": "curl",
    "bwrap": "bubblewrap",
    "docker-compose": "docker-compose",
    "redis-server": "redis-server",
    "psql": "postgresql-client",
    "git": "git",
    "git-daemon": "git",
    "git-http-backend": "git",
}

# A normal user's PATH on Debian has no sbin folder, yet sshd lives there and runs fine unprivileged.
SBIN = ("/usr/local/sbin", "/usr/sbin", "/sbin")


def _pretended_missing() -> set[str]:
    return {name.strip() for name in os.environ.get(MISSING_ENV, "").split(",") if name.strip()}


@functools.cache
def _git_exec_path() -> Path | None:
    git = shutil.which("git")
    if git is None:
        return None
    done = subprocess.run([git, "--exec-path"], capture_output=True, text=True, check=False)
    return Path(done.stdout.strip()) if done.returncode == 0 else None


def find_program(name: str, *candidates: str | Path) -> str | None:
    """The program's path: `DAGOPS_TEST_<NAME>` (e.g. DAGOPS_TEST_CHROMIUM=/opt/chromium/chrome), on PATH, in the
    sbin folders, git's own commands (`git-daemon`) in git's exec-path, or one of `candidates` (absolute paths);
    None when it is missing (or pretended missing)."""
    if name in _pretended_missing():
        return None
    override = os.environ.get("DAGOPS_TEST_" + name.upper().replace("-", "_"))
    found = shutil.which(override) if override else None
    found = found or shutil.which(name) or shutil.which(name, path=os.pathsep.join(SBIN))
    if found is None and name.startswith("git-"):
        exec_path = _git_exec_path()
        if exec_path is not None and os.access(exec_path / name, os.X_OK):
            found = str(exec_path / name)
    for candidate in candidates:
        if found is None and os.access(candidate, os.X_OK) and Path(candidate).is_file():
            found = str(candidate)
    return found


def missing_reason(*names: str) -> str | None:
    """ "needs sshd (apt-get install openssh-server)" for the first missing program, or None."""
    for name in names:
        if find_program(name) is None:
            package = PACKAGES.get(name, name)
            return f"needs {name} (apt-get install {package}), which this machine lacks"
    return None


def requires_program(*names: str) -> pytest.MarkDecorator:
    """A skipif mark: the test skips, with the reason, where one of the programs is missing."""
    reason = missing_reason(*names)
    return pytest.mark.skipif(reason is not None, reason=reason or "")


def skip_unless_program(name: str, *more: str) -> str:
    """Skip the running test (or every test of a session fixture) unless the programs are there; the first
    one's path otherwise."""
    reason = missing_reason(name, *more)
    if reason is not None:
        pytest.skip(reason)
    found = find_program(name)
    assert found is not None
    return found
