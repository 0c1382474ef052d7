"""Where a repository's symlinks really lead, decided on the tree's listing before anything is written.

A link is judged by where it resolves, never by its text: `x -> b/b/../..` reads like a path inside the
repository, but when `b -> .` the kernel follows `b` to the root first and `..` then climbs out of it. So a
link's target is walked component by component the way the kernel walks it (a `..` after a link goes up from
where the link led, not from where it is written), but against the listing of the tree being built, never
against the file system: nothing outside the release root is ever looked at. A step above the root, an
absolute target, a name the tree does not hold, a loop or a chain deeper than the kernel follows: the link is
not kept. What is kept is exactly what resolves to an entry inside the root.

The answer does not depend on the order links are written in: every link is judged against the whole tree
(its folders, its files, the targets of all its links), and a link that goes through another link is kept only
if that one is kept too (a refused link is never created, so going through it would dangle).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

# Linux follows at most 40 links while resolving one path (MAXSYMLINKS), then fails with ELOOP.
MAX_LINK_HOPS = 40
MAX_TARGET_LENGTH = 4095  # PATH_MAX - 1: a longer target cannot even be created
OUTSIDE = "symlink points outside the repository"
MISSING = "symlink target does not exist in the repository"


class LinkRefused(Exception):
    """Why a link is not kept; shown as findings show it: "symlink points outside the repository (b/..)"."""

    def __init__(self, reason: str, target: str) -> None:
        super().__init__(f"{reason} ({target})")
        self.reason = reason


class TreeLinks:
    """The symlinks of one tree, each resolved inside it.

    `files`: paths of the tree's regular files; `links`: path -> target of each symlink. Folders are the parents
    of both (the root is ""), and `folders` (empty ones, on disk). Paths are relative, "/"-separated, with no
    empty, "." or ".." component.
    """

    def __init__(self, files: Iterable[str], links: dict[str, str], folders: Iterable[str] = ()) -> None:
        self._files = set(files)
        self._links = dict(links)
        self._dirs = {"", *folders}
        for path in (*self._files, *self._links):
            parts = path.split("/")
            for depth in range(1, len(parts)):
                self._dirs.add("/".join(parts[:depth]))
        # path -> where it resolves (a tuple of components; () is the root) or why it does not.
        self._done: dict[str, tuple[str, ...] | LinkRefused] = {}

    def judge(self, path: str) -> str | None:
        """None when the link at `path` resolves to a file or folder inside the tree, else why not."""
        try:
            self.resolve(path)
        except LinkRefused as why:
            return str(why)
        return None

    def resolve(self, path: str) -> str:
        """Where the link at `path` leads, relative to the root ("" is the root itself); LinkRefused if nowhere
        inside."""
        return "/".join(self._resolve_link(path, [0], frozenset()))

    def kept(self) -> dict[str, str]:
        """The links to create: path -> target, in path order."""
        return {path: self._links[path] for path in sorted(self._links) if self.judge(path) is None}

    # -- the walk ------------------------------------------------------------------------------------------------
    def _resolve_link(self, path: str, hops: list[int], following: frozenset[str]) -> tuple[str, ...]:
        # Every answer is memoized, failures too: a link is resolved once, so a tree of many links that go
        # through each other costs a walk per link, not one per path through them. A success is where the
        # link leads wherever it is reached from; a failure refuses every link that goes through this one, which
        # the kernel would refuse or find dangling too. So what is kept is closed: a kept link only goes through
        # kept links. (A hop-limit failure is memoized too: in a chain deeper than the limit, which links are
        # refused depends on which is judged first; exports judge in git's sorted order, so it is deterministic,
        # and it only ever refuses more.)
        known = self._done.get(path)
        if isinstance(known, tuple):
            return known
        if known is not None:
            raise known
        target = self._links[path]
        if path in following:
            raise LinkRefused("symlink loops", target)
        hops[0] += 1
        if hops[0] > MAX_LINK_HOPS:
            why = LinkRefused(f"symlink goes through more than {MAX_LINK_HOPS} links", target)
            self._done[path] = why
            raise why
        parent = tuple(path.split("/")[:-1])
        try:
            result = self._walk(parent, target, hops, following | {path})
        except LinkRefused as why:
            # Reported on this link with its own target, whatever link further down the chain was the cause.
            own = LinkRefused(why.reason, target)
            self._done[path] = own
            raise own from None
        self._done[path] = result
        return result

    def _walk(self, start: tuple[str, ...], target: str, hops: list[int], following: frozenset[str]):
        if target.startswith("/"):
            raise LinkRefused(OUTSIDE, target)
        current = list(start)
        parts = [part for part in target.split("/") if part not in ("", ".")]
        for index, part in enumerate(parts):
            if part == "..":
                if not current:  # above the root: the namespace folder, other releases, the host
                    raise LinkRefused(OUTSIDE, target)
                current.pop()
            else:
                candidate = "/".join([*current, part])
                if candidate in self._links:
                    current = list(self._resolve_link(candidate, hops, following))
                elif candidate in self._dirs or candidate in self._files:
                    current.append(part)
                else:
                    raise LinkRefused(MISSING, target)
            if index < len(parts) - 1 and "/".join(current) not in self._dirs:
                raise LinkRefused(MISSING, target)
        return tuple(current)


def target_problem(data: bytes) -> str | None:
    """Why a link's target (its blob) cannot be a path at all, or None."""
    if not data:
        return "symlink with an empty target"
    if len(data) > MAX_TARGET_LENGTH:
        return f"symlink target longer than {MAX_TARGET_LENGTH} bytes"
    if b"\x00" in data:
        return "symlink target holds a NUL byte"
    return None


def escaping_links(folder: Path, *, skip_dirs: Iterable[str] = (".git",)) -> dict[str, str]:
    """The symlinks of a folder on disk that do not resolve inside it: path -> why. Judged like an export's:
    the folder is listed without following any link, and targets are resolved against that listing only."""
    skip = set(skip_dirs)
    files, folders, links = [], [], {}
    for dirpath, dirnames, filenames in os.walk(folder):  # never descends into a link
        rel_dir = os.path.relpath(dirpath, folder)
        prefix = "" if rel_dir == "." else rel_dir.replace(os.sep, "/") + "/"
        dirnames[:] = [d for d in dirnames if d not in skip]
        for name in [*filenames, *dirnames]:
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                links[prefix + name] = os.readlink(path)
            elif name in filenames:
                files.append(prefix + name)
            else:
                folders.append(prefix + name)
    tree = TreeLinks(files, links, folders)
    return {path: why for path in sorted(links) if (why := tree.judge(path))}
