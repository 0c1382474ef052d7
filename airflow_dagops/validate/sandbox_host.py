"""The OS boundary around untrusted code: bubblewrap (`bwrap`), and what the sandbox sees.

Every process that imports a repository's DAG code runs inside one `bwrap` sandbox per validation:

* its own PID, network, IPC and UTS namespaces (no view of the host's processes, no network: only a loopback
  device nobody listens on), a new session (no terminal to inject into), killed with its parent;
* a file system built from nothing: read-only binds of the Python install, the virtual environment's
  site-packages, the `airflow_dagops` package and the release (at `/dagops/release`; a sandbox started before its
  release exists binds the namespace's releases, of which its zygote keeps that one alone before any DAG code runs),
  a few harmless files of `/etc`, a fresh `/dev` and `/proc`, a private `/tmp`; no `AIRFLOW_HOME`, no
  `dagops_home`, no airflow.cfg, no metadata DB, no home folder;
* a clean environment built from an allow-list (nothing inherited by accident).

Inside, the zygote keeps just the capabilities it needs to give every *generation* (the process that loads DAG
files) its own PID and mount namespaces, its own `/proc` and `/tmp`; the generation then drops every capability
and, when dagops runs as root, becomes an unprivileged uid of its own (see `sandbox_isolation.py`).

Two ways to get there, chosen by who we are:
* as root: bwrap creates the namespaces directly (no user namespace), so the generation's uid is a real,
  unprivileged host uid, subject to RLIMIT_NPROC;
* as any other user: bwrap creates a user namespace too (unprivileged user namespaces must be allowed:
  Debian/Ubuntu allow them by default; some container runtimes' seccomp profiles forbid them).

Where neither works, `[dagops] sandbox = strict` (the default) refuses to import DAG files at all;
`degraded` runs them as plain child processes with a scrubbed environment, and says so on every run.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import airflow_dagops
from airflow_dagops import settings
from airflow_dagops.errors import SandboxUnavailable

log = logging.getLogger(__name__)

RELEASE_MOUNT = "/dagops/release"
# A sandbox started before its release is exported binds the folder of the namespace's releases here; the zygote
# binds the one release onto RELEASE_MOUNT and unmounts this before any generation exists (sandbox_isolation.py).
RELEASES_MOUNT = "/dagops/releases"
WORK_MOUNT = "/dagops/work"  # the sandbox's logs, shared with the validator (read-write, private to this run)
AIRFLOW_HOME_MOUNT = "/dagops/airflow"  # a tmpfs: the zygote's scratch AIRFLOW_HOME (airflow.cfg, scratch DB)
HOME_MOUNT = "/dagops/home"
SCRATCH_MOUNT = "/dagops/tmp"  # each generation mounts its own, empty tmpfs here (its cwd and TMPDIR)
# When dagops runs as root, each sandbox's generations run as a uid of their own, drawn from this range (no user
# has these; they sit above the ranges container runtimes delegate): two validations running at once can neither
# signal each other nor share a process limit, and nothing on the host belongs to them.
SANDBOX_UIDS = range(1_900_000_000, 2_000_000_000)
PROBE_TIMEOUT = 20.0
# Harmless files of /etc that libraries read at import time (the dynamic loader's cache, time zones, TLS roots,
# user names for uid 65534). Nothing under /etc/airflow or similar is ever bound.
ETC_FILES = (
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/timezone",
    "/etc/ssl/certs",
    "/etc/ca-certificates",
    "/etc/nsswitch.conf",
    "/etc/passwd",
    "/etc/group",
    "/etc/hosts",
    "/etc/mime.types",
    "/etc/os-release",
)
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
FIX_HINT = (
    "Install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap) and allow it to create namespaces "
    "(in a container: run it with a seccomp profile that allows unshare/clone of namespaces, e.g. "
    "--security-opt seccomp=unconfined, or give the worker CAP_SYS_ADMIN). Only if you accept importing "
    "untrusted DAG code without an OS sandbox: set [dagops] sandbox = degraded "
    "(AIRFLOW__DAGOPS__SANDBOX=degraded)."
)


@dataclass(frozen=True)
class SandboxSupport:
    """What this host allows: `mode` is "namespaces" (bwrap works) or None, with the reason when it is None."""

    mode: str | None
    bwrap: str | None
    as_root: bool
    reason: str = ""

    @property
    def available(self) -> bool:
        return self.mode is not None


def sandbox_uid() -> int:
    """A fresh unprivileged uid for one sandbox (see SANDBOX_UIDS)."""
    import secrets

    return SANDBOX_UIDS.start + secrets.randbelow(len(SANDBOX_UIDS))


def sandbox_setting() -> str:
    """`[dagops] sandbox`: "strict" (default) or "degraded"; anything else is refused loudly."""

    value = (settings.get("sandbox") or "strict").strip().lower()
    if value not in ("strict", "degraded"):
        raise SandboxUnavailable(f"[dagops] sandbox must be 'strict' or 'degraded', not {value!r}.")
    return value


@functools.lru_cache(maxsize=1)
def sandbox_support() -> SandboxSupport:
    """Probe once per process: can bwrap start a sandbox shaped like the real one here?"""
    as_root = os.geteuid() == 0
    bwrap = shutil.which("bwrap")
    if not sys.platform.startswith("linux"):
        return SandboxSupport(None, bwrap, as_root, f"the OS sandbox needs Linux namespaces (this is {sys.platform})")
    if bwrap is None:
        return SandboxSupport(None, None, as_root, "bubblewrap (bwrap) is not installed")
    probe = [bwrap, *namespace_flags(as_root), *system_binds(), "--proc", "/proc", "--dev", "/dev", "--", "true"]
    try:
        done = subprocess.run(probe, capture_output=True, text=True, timeout=PROBE_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        return SandboxSupport(None, bwrap, as_root, f"bwrap could not run: {err}")
    if done.returncode != 0:
        why = (done.stderr or done.stdout).strip().splitlines()
        return SandboxSupport(None, bwrap, as_root, f"bwrap cannot create namespaces here: {why[-1] if why else ''}")
    return SandboxSupport("namespaces", bwrap, as_root)


def require_sandbox() -> SandboxSupport | None:
    """The support to use, None for an explicit degraded run, or SandboxUnavailable in strict mode."""
    support = sandbox_support()
    if support.available:
        return support
    if sandbox_setting() == "degraded":
        log.warning("[dagops] sandbox = degraded: DAG files are imported WITHOUT an OS sandbox (%s)", support.reason)
        return None
    raise SandboxUnavailable(f"DAG files cannot be imported safely: {support.reason}. {FIX_HINT}")


def describe_support() -> str:
    """One line for `dagops init` and `dagops status`."""
    support = sandbox_support()
    try:
        setting = sandbox_setting()
    except SandboxUnavailable as err:
        return str(err)
    if support.available:
        who = "an unprivileged uid of their own" if support.as_root else "a user namespace"
        return f"Validation sandbox: bubblewrap ({support.bwrap}), generations run as {who}."
    if setting == "degraded":
        return (
            f"Validation sandbox: DEGRADED ([dagops] sandbox = degraded): {support.reason}; DAG files are imported "
            "without an OS sandbox."
        )
    return f"Validation sandbox: UNAVAILABLE ({support.reason}); releases are blocked until it is fixed. {FIX_HINT}"


# ---------------------------------------------------------------------------------------------------------------
# The bwrap command line
# ---------------------------------------------------------------------------------------------------------------


# The zygote needs these to give each generation its own namespaces and to drop to an unprivileged uid;
# generations give every capability up before they import anything (sandbox_isolation.drop_privileges).
ZYGOTE_CAPABILITIES = ("CAP_SYS_ADMIN", "CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP")
# A one-shot command run as root only needs to become its unprivileged uid (setpriv, first thing inside).
SETPRIV_CAPABILITIES = ("CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP")


def namespace_flags(as_root: bool, capabilities: tuple[str, ...] = ZYGOTE_CAPABILITIES) -> list[str]:
    flags = ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    if not as_root:
        # Without root, only a user namespace lets bwrap create the others; uid 0 in it maps to our own uid.
        flags += ["--unshare-user", "--uid", "0", "--gid", "0"]
    for cap in capabilities:
        flags += ["--cap-add", cap]
    return [*flags, "--die-with-parent", "--new-session"]


def system_binds() -> list[str]:
    args: list[str] = []
    for path in SYSTEM_DIRS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    for path in ETC_FILES:
        args += ["--ro-bind-try", path, path]
    return args


def python_paths() -> list[str]:
    """The folders this interpreter needs: its install, the venv's site-packages, the dagops package.

    Not every sys.path entry: under pytest or `python -m`, sys.path holds the working directory (which may be a
    checkout with an `.airflow` folder, airflow.cfg and the metadata DB in it).
    """
    paths = {sys.base_prefix, sys.base_exec_prefix}
    for key in ("purelib", "platlib", "stdlib", "platstdlib"):
        with_venv = sysconfig.get_paths().get(key)
        if with_venv:
            paths.add(with_venv)
    paths.update(entry for entry in sys.path if entry.endswith(("site-packages", "dist-packages", ".zip")))
    paths.add(str(Path(airflow_dagops.__file__).resolve().parent))
    venv_config = Path(sys.prefix) / "pyvenv.cfg"
    if venv_config.is_file():
        paths.add(str(venv_config))
    executable = Path(sys.executable)
    paths.update({str(executable.parent), str(executable.resolve().parent)})
    existing = sorted(p for p in (os.path.realpath(p) for p in paths) if os.path.exists(p))
    # Drop entries inside another entry: one bind covers them.
    return [p for p in existing if not any(p != q and p.startswith(q.rstrip("/") + "/") for q in existing)]


def path_binds(paths: list[str]) -> list[str]:
    """Read-only binds at the same path, under parent folders the sandbox's uid may traverse (bwrap would make
    them private to root: /work/main/.venv would be unreachable for uid 65534)."""
    args: list[str] = []
    parents = sorted({str(parent) for path in paths for parent in Path(path).parents if str(parent) != "/"})
    for parent in parents:
        args += ["--perms", "0755", "--dir", parent]
    for path in paths:
        args += ["--ro-bind", path, path]
    return args


def release_binds(root: Path) -> list[str]:
    """The release at RELEASE_MOUNT, entry by entry under a folder the sandbox's uid may read.

    Binding entries rather than the folder: a release root may be private to its owner (a test's tmp folder, a
    user's checkout), and the unprivileged uid could not list it. A top-level symlink is recreated as a symlink
    (never followed by the bind), so it resolves inside the sandbox's view, where nothing of the host is.
    """
    args = ["--perms", "0755", "--dir", RELEASE_MOUNT]
    with os.scandir(root) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            target = f"{RELEASE_MOUNT}/{entry.name}"
            if entry.is_symlink():
                args += ["--symlink", os.readlink(entry.path), target]
            else:
                args += ["--ro-bind", entry.path, target]
    return args


def extra_binds(paths: list[str]) -> list[str]:
    """Folders the release's DAGs legitimately need (Airflow's plugins folder), read-only, if they exist."""
    args: list[str] = []
    for path in paths:
        if path and os.path.isdir(path):
            real = os.path.realpath(path)
            args += ["--ro-bind", real, real]
    return args


def one_shot_command(support: SandboxSupport, *, root: Path, workdir: Path, argv: list[str]) -> list[str]:
    """`argv` (a repository's own tests, ...) in the same sandbox, started in the release folder, as an
    unprivileged uid with no capability at all: setpriv when we are root, the user namespace otherwise."""
    if support.as_root:
        uid = str(sandbox_uid())
        argv = [
            *("setpriv", "--reuid", uid, "--regid", uid, "--clear-groups", "--inh-caps=-all"),
            *("--bounding-set=-all", "--no-new-privs", "--"),
            *argv,
        ]
    capabilities = SETPRIV_CAPABILITIES if support.as_root else ()
    return bwrap_command(support, root=root, workdir=workdir, argv=argv, capabilities=capabilities, chdir=RELEASE_MOUNT)


def bwrap_command(
    support: SandboxSupport,
    *,
    root: Path,
    workdir: Path,
    argv: list[str],
    extra_paths: Sequence[str] = (),
    capabilities: tuple[str, ...] = ZYGOTE_CAPABILITIES,
    chdir: str = "/tmp",  # noqa: S108 - the sandbox's own /tmp
    release_to_come: bool = False,
) -> list[str]:
    """The full bwrap command line running `argv` in the sandbox described in this module's docstring.

    `release_to_come`: `root` is the folder the release will be exported into, bound whole at RELEASES_MOUNT, with an
    empty RELEASE_MOUNT for the zygote to bind the release onto once it exists."""
    assert support.bwrap is not None
    if release_to_come:
        release = ["--ro-bind", str(root), RELEASES_MOUNT, "--perms", "0755", "--dir", RELEASE_MOUNT]
    else:
        release = release_binds(root)
    return [
        support.bwrap,
        *namespace_flags(support.as_root, capabilities),
        # /tmp first: binds made after it stay visible, so an install under /tmp (a CI clone) still works.
        *("--perms", "1777", "--tmpfs", "/tmp"),  # noqa: S108 - a private tmpfs inside the sandbox
        *system_binds(),
        *path_binds(python_paths()),
        *extra_binds(list(extra_paths)),
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--perms",
        "1777",
        "--dir",
        SCRATCH_MOUNT,
        "--perms",
        "0755",
        "--tmpfs",
        AIRFLOW_HOME_MOUNT,
        "--perms",
        "0755",
        "--dir",
        HOME_MOUNT,
        *release,
        "--bind",
        str(workdir),
        WORK_MOUNT,
        "--chdir",
        chdir,
        "--",
        *argv,
    ]
