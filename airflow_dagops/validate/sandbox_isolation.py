"""Inside the bwrap sandbox: one PID and mount namespace per generation, then no privilege at all.

Runs in the sandbox only (imported by `sandbox_worker.py`); standard library and libc through ctypes, because
Python 3.11 has no `os.unshare`. Linux only.

Why a PID namespace per generation and not only one for the sandbox: a generation loads several files in turn,
and a process a DAG file leaves behind (a double fork with `setsid`, a fork loop) would otherwise live on next to
the following files, holding the slot's pipes. In its own PID namespace the generation kills everything else in
it after each file (`kill(-1)` reaches exactly that namespace), and when its process 1 ends, the kernel kills
whatever is left. Its own `/proc` shows only that namespace; its own `/tmp` is empty for every generation.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import resource
import signal

CLONE_NEWNS = 0x00020000
CLONE_NEWPID = 0x20000000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC, MS_PRIVATE = 2, 4, 8, 16384, 1 << 18
MS_RDONLY, MS_REMOUNT, MS_BIND, MNT_DETACH = 1, 32, 4096, 2
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_SECUREBITS, PR_SET_NO_NEW_PRIVS = 1, 4, 24, 28, 38
# SECBIT_NOROOT | SECBIT_NO_SETUID_FIXUP | SECBIT_KEEP_CAPS off, each locked: uid 0 (in a user namespace) never
# regains capabilities through exec, and nothing can change these bits again.
SECUREBITS_LOCKED_DOWN = 0x01 | 0x02 | 0x04 | 0x08 | 0x20
LINUX_CAPABILITY_VERSION_3 = 0x20080522
LAST_CAP = 63
TMP_SIZE = "size=268435456"  # 256 MiB of private /tmp per generation
MAX_PROCESSES = 128  # RLIMIT_NPROC for the sandbox's uid (processes and threads of all its generations)
CPU_SECONDS_HARD = 3600
SCRATCH_MOUNT = "/dagops/tmp"  # = sandbox_host.SCRATCH_MOUNT (this module runs inside, with the stdlib only)

_libc = ctypes.CDLL(None, use_errno=True)


class IsolationError(OSError):
    """A namespace, mount or privilege step failed: the generation must not load anything."""


def _check(result: int, what: str) -> None:
    if result != 0:
        number = ctypes.get_errno()
        raise IsolationError(number, f"{what}: {os.strerror(number)}")


def new_pid_and_mount_namespace() -> None:
    """The *children* of the caller are born in a new PID namespace, and the caller gets its own mounts."""
    _check(_libc.unshare(CLONE_NEWPID | CLONE_NEWNS), "unshare(CLONE_NEWPID|CLONE_NEWNS)")


def private_proc_and_tmp() -> None:
    """In the new namespaces (we are their process 1): mounts stay ours, /proc shows only us, a scratch tmpfs."""
    _check(_libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "make mounts private")
    flags = MS_NOSUID | MS_NODEV | MS_NOEXEC
    _check(_libc.mount(b"proc", b"/proc", b"proc", flags, None), "mount /proc")
    # Not on /tmp itself: the Python install may be bound under it (a CI clone in /tmp); see sandbox_host.
    scratch = SCRATCH_MOUNT.encode()
    _check(_libc.mount(b"tmpfs", scratch, b"tmpfs", MS_NOSUID | MS_NODEV, f"mode=1777,{TMP_SIZE}".encode()), "tmp")


def show_only_release(releases: str, name: str, release: str) -> None:
    """In the zygote of a sandbox started before its release existed (`structure.Sandbox` in early mode): bind the
    release `name` of the folder of releases mounted at `releases` onto `release`, read-only, then unmount that folder,
    so neither the zygote nor any generation forked after it sees another release. Any failure raises: the parent
    then starts a sandbox the usual way."""
    if not name or "/" in name or name in (".", ".."):
        raise IsolationError(errno.EINVAL, f"not a release folder name: {name!r}")
    source = os.path.join(releases, name)
    if os.path.islink(source) or not os.path.isdir(source):
        raise IsolationError(errno.ENOENT, f"no release folder {name!r}")
    _check(_libc.mount(source.encode(), release.encode(), None, MS_BIND, None), "bind the release")
    flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV
    _check(_libc.mount(None, release.encode(), None, flags, None), "make the release read-only")
    _check(_libc.umount2(releases.encode(), MNT_DETACH), "unmount the other releases")
    if os.listdir(releases):
        raise IsolationError(errno.EBUSY, "the other releases are still visible")


def set_process_limits(cpu_seconds_hard: int = CPU_SECONDS_HARD) -> None:
    """Limits that hold for the generation's whole life; per-file limits are set by the loader."""
    resource.setrlimit(resource.RLIMIT_NPROC, (MAX_PROCESSES, MAX_PROCESSES))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if hard == resource.RLIM_INFINITY or hard > cpu_seconds_hard:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds_hard, cpu_seconds_hard))


def drop_privileges(uid: int | None) -> None:
    """Give up every capability for good, and become `uid` (the real, unprivileged host uid, when we are root).

    Order matters: the bounding set and the secure bits need CAP_SETPCAP, so they go first; setresuid to a
    non-zero uid clears the permitted and effective sets; capset clears whatever a user namespace's uid 0 kept.
    """
    for cap in range(LAST_CAP + 1):
        if _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() != errno.EINVAL:
            _check(-1, f"drop capability {cap} from the bounding set")
    _check(_libc.prctl(PR_SET_SECUREBITS, SECUREBITS_LOCKED_DOWN, 0, 0, 0), "lock secure bits")
    if uid is not None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    _clear_capabilities()
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    # Not dumpable: another process of the same uid may not ptrace us or open our /proc/<pid>/fd entries.
    _check(_libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), "not dumpable")
    if effective_capabilities() != 0:
        raise IsolationError(errno.EPERM, "capabilities are still effective after dropping them")


def _clear_capabilities() -> None:
    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]

    header = Header(LINUX_CAPABILITY_VERSION_3, 0)
    data = (Data * 2)()
    _check(_libc.capset(ctypes.byref(header), data), "capset(0)")


def effective_capabilities() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    return -1


def die_with(parent_alive_fd: int) -> None:
    """SIGKILL when our parent dies. Set after the uid change (which clears it); the pipe tells whether the parent
    died before it was set (its write end, held only by the parent, then reads as end-of-file)."""
    _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "parent death signal")
    os.set_blocking(parent_alive_fd, False)
    with contextlib.suppress(BlockingIOError):
        if os.read(parent_alive_fd, 1) == b"":
            os._exit(0)


def kill_everything_else() -> int:
    """In the generation's PID namespace: SIGKILL every process but us and process 1 (kill(-1) spares both), reap
    our own children (process 1 reaps the orphans). Returns how many there were."""
    others = other_processes()
    if others:
        with contextlib.suppress(ProcessLookupError):
            os.kill(-1, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        while True:
            pid, _ = os.waitpid(-1, 0)
            if pid == 0:
                break
    return len(others)


def other_processes() -> list[int]:
    """Live processes of our PID namespace other than us and process 1, from our own /proc."""
    me = os.getpid()
    found = []
    try:
        names = [name for name in os.listdir("/proc") if name.isdigit() and int(name) not in (1, me)]
    except OSError:
        return []
    for name in names:
        try:
            with open(f"/proc/{name}/stat") as stat:
                state = stat.read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state not in ("Z", "X"):  # a zombie has already ended; process 1 reaps it
            found.append(int(name))
    return found
