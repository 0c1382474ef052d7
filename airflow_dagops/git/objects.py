"""Reading a mirror's objects without starting git, where that gives git's own answer for certain.

After a small fetch git stores the new objects loose (fewer than `transfer.unpackLimit`): one zlib-compressed file
each under `objects/`. A sync of a small change reads the fetched commit, its new trees and its changed blobs from
there instead of starting `git log`, `git ls-tree` and `git cat-file`; each git process costs milliseconds on a
busy machine, which is most of what publishing a 1-file change costs. Anything packed or unusual (a tag, a
re-encoded message, a malformed entry) is left to git, which answers as it always did.

Unchanged folders' trees sit in the pack of an earlier fetch. Their listings are kept in the mirror
(`dagops-trees.json`, written when git lists a commit): keyed by tree id, which names one content forever, so the
cache can never hold a stale answer, only miss.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import posixpath
import re
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

log = logging.getLogger(__name__)

TREE_CACHE_NAME = "dagops-trees.json"
# A listing longer than this is left to git: the same subtree named a million times (a "tree bomb") must not be
# expanded here, nor kept in the cache.
MAX_ENTRIES = 200_000

# One tree's entries as git stores them: (canonical mode, object id, name).
Listing = list[tuple[str, str, str]]


@dataclass(frozen=True)
class TreeEntry:
    mode: str
    blob: str
    path: str

    @property
    def is_symlink(self) -> bool:
        return self.mode == "120000"

    @property
    def is_submodule(self) -> bool:
        return self.mode == "160000"

    @property
    def is_executable(self) -> bool:
        return self.mode == "100755"


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    author: str
    committed_at: datetime
    message: str


def read_loose(git_dir: Path, sha: str, kind: bytes) -> bytes | None:
    """A loose object's content: zlib("<kind> <size>\\0<content>") at objects/<2 hex>/<rest>. None when the object
    is packed, of another kind, or not well formed (git then reads it, and complains if it is damaged)."""
    try:
        with open(git_dir / "objects" / sha[:2] / sha[2:], "rb") as handle:
            raw = zlib.decompress(handle.read())
    except (OSError, zlib.error):
        return None
    header, _, content = raw.partition(b"\0")
    found, _, size = header.partition(b" ")
    if found != kind or not size.isdigit() or int(size) != len(content):
        return None
    return content


# -- commits ----------------------------------------------------------------------------------------------------
# "Name <email> 1700000000 +0200": what git itself writes. Anything else is left to `git log`, which has its own
# rules for broken identities.
_IDENT = re.compile(rb"^([^<>\n]*)<([^<>\n]*)> (\d{1,12}) [+-]\d{4}$")


def commit_fields(raw: bytes) -> dict[bytes, bytes] | None:
    """A commit's header fields (name -> value), or None where git could read them otherwise: a field that is not
    `parent` given twice (git shows the last author, say, not the first)."""
    head = raw.partition(b"\n\n")[0]
    fields: dict[bytes, bytes] = {}
    for line in head.split(b"\n"):
        if line.startswith(b" "):
            continue  # a continuation line (of a signature) belongs to the field above
        name, _, value = line.partition(b" ")
        if name in fields and name != b"parent":
            return None
        fields[name] = value
    return fields if b"tree" in fields else None


def parse_commit(sha: str, raw: bytes) -> CommitInfo | None:
    """What `git log -1 --format=%H%x00%an <%ae>%x00%ct%x00%B` says of a commit object's content, or None where
    git's answer could differ (a re-encoded message, an identity git did not write): then git is asked."""
    fields = commit_fields(raw)
    if fields is None or b"encoding" in fields:
        return None
    author, committer = _IDENT.match(fields.get(b"author", b"")), _IDENT.match(fields.get(b"committer", b""))
    if author is None or committer is None:
        return None
    name = author.group(1).rstrip().decode("utf-8", "replace")  # git trims the spaces before `<`
    email = author.group(2).decode("utf-8", "replace")
    message = raw.partition(b"\n\n")[2]
    return CommitInfo(
        sha=sha,
        author=f"{name} <{email}>",
        committed_at=datetime.fromtimestamp(int(committer.group(3)), timezone.utc),
        # git prints the message as a C string: it ends at a NUL byte.
        message=message.split(b"\0", 1)[0].decode("utf-8", "replace").strip(),
    )


# -- trees ------------------------------------------------------------------------------------------------------
def canonical_mode(mode: int) -> str:
    """The mode git reports for a tree entry (tree-walk.c `canon_mode`): whatever a crafted tree stores."""
    kind = mode & 0o170000
    if kind == 0o100000:
        return "100755" if mode & 0o100 else "100644"
    if kind == 0o120000:
        return "120000"
    if kind == 0o040000:
        return "040000"
    return "160000"


# One entry: an octal mode, a space, a name (no slash: git might read such a name otherwise), a NUL, the id's bytes.
_ENTRIES = {size: re.compile(rb"([0-7]+) ([^\0/]+)\0(.{%d})" % size, re.DOTALL) for size in (20, 32)}


@functools.lru_cache(maxsize=64)  # a handful of modes in practice; bounded whatever a crafted tree holds
def _mode_text(mode: bytes) -> str:
    return canonical_mode(int(mode, 8))


def parse_tree(raw: bytes, id_bytes: int) -> Listing | None:
    """A tree object's entries in stored order, or None for anything git might read differently or refuse (a mode
    that is not octal, an empty, `.`, `..` or slashed name, a truncated entry)."""
    entries: Listing = []
    pos = 0
    for entry in _ENTRIES[id_bytes].finditer(raw):
        if entry.start() != pos:
            return None  # something between two entries that is not an entry
        mode, name, object_id = entry.groups()
        if name in (b".", b".."):
            return None
        entries.append((_mode_text(mode), object_id.hex(), name.decode("utf-8", "surrogateescape")))
        pos = entry.end()
    return entries if pos == len(raw) else None


class TreeReader:
    """Tree listings from loose objects, then from the mirror's cache of listings git gave before."""

    def __init__(self, git_dir: Path):
        self.git_dir = git_dir
        self._cache: dict[str, Listing] | None = None  # read on the first tree that is not loose

    def listing(self, tree: str) -> Listing | None:
        raw = read_loose(self.git_dir, tree, b"tree")
        if raw is not None:
            return parse_tree(raw, len(tree) // 2)
        if self._cache is None:
            self._cache = load_tree_cache(self.git_dir)
        return self._cache.get(tree)

    def list_commit(self, commit: str, subdir: str | None) -> list[TreeEntry] | None:
        """What `git ls-tree -r <commit>[:<subdir>]` lists, or None when some object is not at hand (or anything
        is unusual): then git lists it."""
        raw = read_loose(self.git_dir, commit, b"commit")
        fields = commit_fields(raw) if raw is not None else None
        if fields is None:
            return None
        tree: str | None = fields[b"tree"].decode("ascii", "replace")
        for part in subdir.split("/") if subdir else ():
            tree = self._subtree(tree, part) if tree else None
        return self._walk(tree) if tree else None

    def _subtree(self, tree: str, name: str) -> str | None:
        if name in ("", ".", ".."):
            return None  # git resolves such paths its own way
        matches = [(mode, sha) for mode, sha, entry in self.listing(tree) or () if entry == name]
        return matches[0][1] if len(matches) == 1 and matches[0][0] == "040000" else None

    def _walk(self, root: str) -> list[TreeEntry] | None:
        """Depth first in stored order, as `ls-tree -r` prints: a folder's entries where the folder stands."""
        entries: list[TreeEntry] = []
        listing = self.listing(root)
        if listing is None:
            return None
        stack = [("", iter(listing))]
        seen = 0  # every entry, folders included: nested folders alone can make a bomb
        while stack:
            prefix, pending = stack[-1]
            item = next(pending, None)
            if item is None:
                stack.pop()
                continue
            seen += 1
            if seen > MAX_ENTRIES:
                return None
            mode, sha, name = item
            path = prefix + name
            if mode == "040000":
                below = self.listing(sha)
                if below is None:
                    return None
                stack.append((path + "/", iter(below)))
                continue
            entries.append(TreeEntry(mode, sha, path))
        return entries


def parse_ls_tree(output: bytes) -> tuple[list[TreeEntry], dict[str, Listing]]:
    """The output of `git ls-tree -r -t -z`: (its files, links and submodules; every subtree's listing by id)."""
    entries: list[TreeEntry] = []
    tree_ids: dict[str, str] = {}  # path -> id, for each subtree
    listings: dict[str, Listing] = {}  # path of a subtree -> its entries
    for record in output.split(b"\x00"):
        if not record:
            continue
        meta, raw_path = record.split(b"\t", 1)
        mode, kind, object_id = (part.decode() for part in meta.split())
        path = raw_path.decode("utf-8", "surrogateescape")
        parent, name = posixpath.split(path)
        listings.setdefault(parent, []).append((mode, object_id, name))
        if kind == "tree":
            tree_ids[path] = object_id
            listings.setdefault(path, [])
        else:
            entries.append(TreeEntry(mode, object_id, path))
    return entries, {tree_ids[path]: listing for path, listing in listings.items() if path in tree_ids}


def load_tree_cache(git_dir: Path) -> dict[str, Listing]:
    """The cached listings, or nothing when the file is missing or not exactly what `save_tree_cache` writes."""
    try:
        trees = json.loads((git_dir / TREE_CACHE_NAME).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(trees, dict) or not all(_is_listing(value) for value in trees.values()):
        log.warning("ignoring the malformed tree cache of %s", git_dir)
        return {}
    return {key: [(item[0], item[1], item[2]) for item in value] for key, value in trees.items()}


def _is_listing(value: object) -> bool:
    return isinstance(value, list) and all(
        isinstance(item, list) and len(item) == 3 and all(isinstance(part, str) for part in item) for item in value
    )


def save_tree_cache(git_dir: Path, trees: dict[str, Listing]) -> None:
    """Keep the listings of one commit's subtrees (replacing the last commit's, so the file stays the size of one
    tree). A failure only costs a `git ls-tree` later."""
    if not trees or sum(len(listing) for listing in trees.values()) > MAX_ENTRIES:
        return
    path = git_dir / TREE_CACHE_NAME
    tmp = path.with_name(f".{TREE_CACHE_NAME}.tmp-{os.getpid()}")
    try:
        tmp.write_text(json.dumps(trees, separators=(",", ":")))
        os.replace(tmp, path)
    except OSError as err:
        log.warning("could not write the tree cache of %s: %s", git_dir, err)
        tmp.unlink(missing_ok=True)
