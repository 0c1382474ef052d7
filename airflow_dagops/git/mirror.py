"""One bare mirror per repository: fetch only the tracked ref, resolve it, read trees and blobs.

The mirror never stores a URL or credential in its config: the URL is passed on each command line
and credentials come from the Airflow Connection for the duration of one command.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path

from airflow_dagops import settings
from airflow_dagops.errors import DagOpsError, GitError, InvalidInput, RefNotFound
from airflow_dagops.git.errors import classify, is_transient, last_lines, reworded
from airflow_dagops.git.objects import (
    CommitInfo,
    TreeEntry,
    TreeReader,
    parse_commit,
    parse_ls_tree,
    read_loose,
    save_tree_cache,
)
from airflow_dagops.git.remote import run_remote
from airflow_dagops.git.runner import git_env, run_git
from airflow_dagops.safety import display_url, validate_ref

log = logging.getLogger(__name__)

TRACKED_REF = "refs/dagops/tracked"
# The full name the tracked ref resolved to on the last fetch (`Mirror.known_full_ref`): a file inside the mirror.
REF_MEMO = "dagops-tracked-ref"
SHA_PATTERN = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")

# Pauses before the 2nd and 3rd try of a remote command that failed for a transient reason (a timeout, an
# unreachable or dropped connection). Bounded: a dead remote costs 3 x git_timeout plus these, never more.
# Authentication, missing refs and refused transports are never retried: trying again cannot fix them.
RETRY_DELAYS = (1.0, 4.0)


class Mirror:
    """A bare mirror of one remote, kept at `path`."""

    def __init__(
        self,
        *,
        path: Path,
        url: str,
        conn_id: str | None = None,
        timeout: float | None = None,
        retry_delays: tuple[float, ...] = RETRY_DELAYS,
    ):
        self.path = Path(path)
        self.url = url
        self.conn_id = conn_id
        self.timeout = timeout if timeout is not None else settings.get_int("git_timeout")
        # () for a quick answer: checking a URL a user just typed, or a poll that hands failures to a sync.
        self.retry_delays = retry_delays

    # -- remote ---------------------------------------------------------------------------------
    def ls_remote(self, ref: str) -> tuple[str, str]:
        """Resolve `ref` on the remote without fetching: returns (full ref name, commit-ish sha).

        A full commit sha is returned as is: remotes do not advertise commits, only refs.
        """
        validate_ref(ref)
        if SHA_PATTERN.match(ref):
            return ref, ref
        # ls-remote matches patterns against the tail of every ref (the peeled `^{}` line of an annotated
        # tag needs its own); the exact names are picked below.
        output = self._remote_git(["ls-remote", "--", self.url, ref, f"{ref}^{{}}"]).stdout.decode()
        advertised: dict[str, str] = {}  # ref name -> sha
        for line in output.splitlines():
            if "\t" in line:
                sha, name = line.split("\t", 1)
                advertised[name] = sha
        candidates = [ref] if ref.startswith("refs/") else [f"refs/heads/{ref}", f"refs/tags/{ref}"]
        for name in candidates:
            if name in advertised:
                # Annotated tags advertise the tag object and, peeled, the commit it points at.
                return name, advertised.get(f"{name}^{{}}", advertised[name])
        raise RefNotFound(
            f"ref {ref!r} was not found in {display_url(self.url)}: no branch or tag of that name. "
            "Check the spelling, or push it first."
        )

    def known_full_ref(self, ref: str) -> str | None:
        """The full name of `ref` on the remote as this mirror last fetched it (`remember_full_ref`), so a sync can
        fetch at once instead of asking the remote first; None when not known (a first fetch, another ref, a
        commit sha). The remote may have changed since: a fetch of a name it no longer has fails as RefNotFound."""
        validate_ref(ref)
        if SHA_PATTERN.match(ref):
            return None
        if ref.startswith("refs/"):
            return ref
        try:
            remembered, full_ref = (self.path / REF_MEMO).read_text().split("\n")
        except (OSError, ValueError):
            return None
        # Only the two names ls_remote itself resolves a short ref to: whatever the file holds goes no further.
        return full_ref if remembered == ref and full_ref in (f"refs/heads/{ref}", f"refs/tags/{ref}") else None

    def remember_full_ref(self, ref: str, full_ref: str) -> None:
        """Record what `ref` resolved to, for `known_full_ref`. Callers hold the repository lock (they fetched)."""
        memo = self.path / REF_MEMO
        text = f"{ref}\n{full_ref}"
        try:
            if memo.read_text() == text:
                return
        except OSError:
            pass
        tmp = memo.with_name(f"{REF_MEMO}.tmp-{os.getpid()}")
        tmp.write_text(text)
        os.replace(tmp, memo)

    def fetch(self, full_ref: str) -> CommitInfo:
        """Fetch only the tracked ref into the mirror (forced, so force-pushes are followed); describe its commit."""
        self.ensure()
        try:
            self._fetch_once(full_ref)
        except GitError as err:
            if self.is_healthy():
                raise  # the mirror is fine: the cause is elsewhere, and re-cloning would not help
            # A damaged mirror (interrupted gc, full disk, killed process): re-clone once rather than
            # fail on every sync from now on.
            log.warning("mirror %s is damaged (%s); removing it and fetching again", self.path, err)
            self.remove()
            self.ensure()
            self._fetch_once(full_ref)
        # A small fetch leaves the commit loose and the ref a plain file: read both here rather than start a
        # `git log`; anything else (a packed ref or commit, a tag, another encoding) is git's to answer.
        return self._loose_commit_info(TRACKED_REF) or self.commit_info(TRACKED_REF)

    def fetch_in_background(self, full_ref: str) -> PendingFetch:
        """`fetch` in a thread of its own: git works in its processes while the caller does something else (a sync
        records its run meanwhile). The caller must call `result()`, which returns or raises what `fetch` would, or
        `wait()`."""
        return PendingFetch(self, full_ref)

    def _fetch_once(self, full_ref: str) -> None:
        refspec = f"+{full_ref}:{TRACKED_REF}" if not SHA_PATTERN.match(full_ref) else full_ref
        self._fetch_refspec(refspec)
        if SHA_PATTERN.match(full_ref):
            run_git(["-C", str(self.path), "update-ref", TRACKED_REF, full_ref], timeout=self.timeout)

    def fetch_into(self, remote_ref: str, local_ref: str) -> None:
        """Fetch another ref (a pull request head) into a ref of its own. The tracked ref, which syncs
        export and publish from, is left alone, so a pull request head can never go live this way."""
        validate_ref(remote_ref)
        self.ensure()
        self._fetch_refspec(f"+{remote_ref}:{local_ref}")

    def drop_ref(self, local_ref: str) -> None:
        """Forget a ref of `fetch_into` (its objects go with the next gc); a failure only leaves a ref behind."""
        if (self.path / "HEAD").is_file():
            run_git(["-C", str(self.path), "update-ref", "-d", local_ref], timeout=self.timeout, check=False)

    def _fetch_refspec(self, refspec: str) -> None:
        # No auto maintenance: it would start one more process after every fetch, and mirrors stay small.
        self._remote_git(
            [
                "-c",
                "maintenance.auto=false",
                "-c",
                "gc.auto=0",
                "-c",
                "fetch.showForcedUpdates=false",
                "-c",
                "advice.fetchShowForcedUpdates=false",  # its warning would bury the real error in stderr
                "-C",
                str(self.path),
                "fetch",
                "--no-tags",
                "--no-write-fetch-head",
                "--quiet",
                "--",
                self.url,
                refspec,
            ]
        )

    def _remote_git(self, args: list[str]) -> subprocess.CompletedProcess[bytes]:
        """Run a command that talks to the remote, retrying transient failures with growing pauses."""
        delays = list(self.retry_delays)
        attempts = 1
        while True:
            try:
                return self._remote_git_once(args)
            except DagOpsError as err:
                if not is_transient(err):
                    raise
                if not delays:
                    raise reworded(err, f"{err} (gave up after {attempts} attempts)") from err
                self._remove_stale_lock(err.details.get("lock"))
                delay = delays.pop(0)
                log.warning("%s; trying again in %.0fs", err, delay)
                time.sleep(delay)
                attempts += 1

    def _remove_stale_lock(self, lock: str | None) -> None:
        """Remove a lock file of the mirror that no running git of ours can still hold: each runs at most
        `timeout` seconds, so a lock twice that old was left by a git that was killed."""
        if not lock or not Path(lock).resolve().is_relative_to(self.path.resolve()):
            return
        try:
            age = time.time() - Path(lock).stat().st_mtime
            if age > 2 * self.timeout:
                log.warning("removing %s, left %.0fs ago by a git process that did not finish", lock, age)
                Path(lock).unlink()
        except FileNotFoundError:
            pass  # its git finished meanwhile

    def _remote_git_once(self, args: list[str]) -> subprocess.CompletedProcess[bytes]:
        return run_remote(args, url=self.url, conn_id=self.conn_id, timeout=self.timeout, local=self._named)

    def _classify(self, command: str, stderr: bytes) -> DagOpsError:
        """git/errors.py's verdict on a failure of this mirror's remote (kept for callers that ran git
        themselves; new code uses git.remote.run_remote)."""
        return classify(command, stderr, url=self.url, conn_id=self.conn_id, local=self._named)

    @property
    def _named(self) -> str:
        return f"the mirror {self.path}"

    # -- local mirror ---------------------------------------------------------------------------
    def is_valid(self) -> bool:
        if not (self.path / "HEAD").is_file() or not (self.path / "objects").is_dir():
            return False
        result = run_git(["-C", str(self.path), "rev-parse", "--is-bare-repository"], timeout=self.timeout, check=False)
        return result.returncode == 0 and result.stdout.strip() == b"true"

    def is_healthy(self) -> bool:
        """A full connectivity check; only run after a failure, since it reads every object."""
        if not self.is_valid():
            return False
        result = run_git(
            ["-C", str(self.path), "fsck", "--connectivity-only", "--no-dangling", "--no-progress"],
            timeout=self.timeout,
            check=False,
        )
        return result.returncode == 0

    def ensure(self) -> None:
        """Create the bare mirror when it is missing. Cheap on purpose: it runs before every fetch, and a
        mirror that exists but is damaged is caught (and replaced) when the fetch fails."""
        if (self.path / "HEAD").is_file() and (self.path / "objects").is_dir():
            return
        if self.path.exists():
            log.warning("mirror %s is not a git repository; re-creating it", self.path)
            self.remove()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        run_git(["init", "--bare", "--quiet", str(self.path)], timeout=self.timeout)
        run_git(["-C", str(self.path), "config", "gc.auto", "0"], timeout=self.timeout)

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def commit_info(self, rev: str) -> CommitInfo:
        """The commit `rev` names (tags peeled), with its author, time and message, in one git call."""
        result = run_git(
            [
                "-C",
                str(self.path),
                "log",
                "-1",
                "--no-walk",
                "--format=%H%x00%an <%ae>%x00%ct%x00%B",
                "--end-of-options",
                rev,
            ],
            timeout=self.timeout,
            check=False,
        )
        if result.returncode != 0:
            raise RefNotFound(f"{rev} does not name a commit in the mirror of {display_url(self.url)}")
        sha, author, timestamp, message = result.stdout.decode("utf-8", "replace").split("\x00", 3)
        return CommitInfo(
            sha=sha,
            author=author,
            committed_at=datetime.fromtimestamp(int(timestamp), timezone.utc),
            message=message.strip(),
        )

    def list_tree(self, sha: str, subdir: str | None = None) -> list[TreeEntry]:
        """Every file of the commit (or of `subdir` in it), paths relative to that folder: read from the mirror's
        objects when they are at hand (git/objects.py), else listed by git."""
        if SHA_PATTERN.match(sha):
            listed = TreeReader(self.path).list_commit(sha, subdir)
            if listed is not None:
                return listed
        treeish = f"{sha}:{subdir}" if subdir else sha
        result = run_git(
            # No -l: sizes would cost a read of every blob; the exporter counts what it writes instead. -t: the
            # subtrees' ids, so their listings are cached for the next commit, which shares most of them.
            ["-C", str(self.path), "ls-tree", "-r", "-t", "-z", "--end-of-options", treeish],
            timeout=self.timeout,
            check=False,
        )
        if result.returncode != 0:
            if subdir:
                raise InvalidInput(f"subdir {subdir!r} does not exist at commit {sha[:12]}")
            raise GitError(f"cannot list commit {sha[:12]}: {last_lines(result.stderr)}")
        entries, trees = parse_ls_tree(result.stdout)
        save_tree_cache(self.path, trees)
        return entries

    def iter_blobs(self, blobs: list[str]) -> Iterator[tuple[str, bytes]]:
        """Yield (sha, content) of each blob: loose objects read directly, the rest streamed by one
        `git cat-file --batch`. After a small fetch git stores new objects loose (fewer than
        transfer.unpackLimit), so publishing a small change usually starts no git process here."""
        packed = []
        for blob in blobs:
            data = read_loose(self.path, blob, b"blob")
            if data is None:
                packed.append(blob)
            else:
                yield blob, data
        if packed:
            yield from self._cat_file_batch(packed)

    def _loose_commit_info(self, ref: str) -> CommitInfo | None:
        """`commit_info(ref)` without a git process, for a ref kept as a file that names a loose commit."""
        try:
            sha = (self.path / ref).read_bytes().strip().decode("ascii")
        except (OSError, UnicodeDecodeError):
            return None  # packed, or not there: git knows
        if not SHA_PATTERN.match(sha):
            return None  # a symbolic ref, or garbage
        raw = read_loose(self.path, sha, b"commit")
        return parse_commit(sha, raw) if raw is not None else None

    def _cat_file_batch(self, blobs: list[str]) -> Iterator[tuple[str, bytes]]:
        process = subprocess.Popen(
            ["git", "-C", str(self.path), "cat-file", "--batch"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=git_env(),
        )
        stdout, stderr = process.stdout, process.stderr
        assert stdout is not None and stderr is not None  # both are pipes
        # Feed requests from a thread: git answers while we still write, and both pipes would fill up.
        writer = threading.Thread(target=_feed, args=(process.stdin, blobs), daemon=True)
        writer.start()
        try:
            for _ in blobs:
                header = stdout.readline().split()
                if len(header) != 3:
                    raise GitError(f"cannot read objects from the mirror {self.path}: {header!r}")
                sha, size = header[0].decode(), int(header[2])
                data = stdout.read(size)
                stdout.read(1)  # the newline after each object
                yield sha, data
        finally:
            stdout.close()  # git exits on its own once its input ends or its output is closed
            writer.join()
            stderr.close()
            process.wait()


class PendingFetch:
    """A `Mirror.fetch` under way in a thread (`Mirror.fetch_in_background`)."""

    def __init__(self, mirror: Mirror, full_ref: str):
        self.full_ref = full_ref
        self._commit: CommitInfo | None = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = threading.Thread(
            target=self._run, args=(mirror, full_ref), name=f"fetch {mirror.path.name}"
        )
        self._thread.start()

    @classmethod
    def settled(cls, full_ref: str, error: BaseException) -> PendingFetch:
        """A fetch that never started, failing with `error` (what resolving its ref raised)."""
        pending = cls.__new__(cls)
        pending.full_ref, pending._commit, pending._error, pending._thread = full_ref, None, error, None
        return pending

    def _run(self, mirror: Mirror, full_ref: str) -> None:
        try:
            self._commit = mirror.fetch(full_ref)
        except BaseException as err:  # handed to the caller by result()
            self._error = err

    def wait(self) -> None:
        """Until git is done, whatever its outcome (for a caller that gives up on it)."""
        if self._thread is not None:
            self._thread.join()

    def result(self) -> CommitInfo:
        """The fetched commit, once git is done; the fetch's error if it failed."""
        self.wait()
        if self._error is not None:
            raise self._error
        assert self._commit is not None  # mypy: no error means fetch returned
        return self._commit


def _feed(stream, blobs: Iterable[str]) -> None:
    try:
        stream.write("".join(f"{blob}\n" for blob in blobs).encode())
    finally:
        stream.close()
