"""Counts in words for what people read: "1 error", "2 errors", "0 files". One place, so no message says "1 errors"."""

from __future__ import annotations


def plural(count: int, noun: str) -> str:
    """`count` and `noun`, the noun in the plural unless the count is one: plural(1, "error") == "1 error"."""
    return f"{count} {noun if count == 1 else plural_of(noun)}"


def plural_of(noun: str) -> str:
    """English plural of the nouns dagops counts (error, file, repository, match, DAG)."""
    if noun.endswith("y") and noun[-2:-1] not in ("a", "e", "i", "o", "u"):
        return f"{noun[:-1]}ies"
    if noun.endswith(("s", "x", "ch", "sh")):
        return f"{noun}es"
    return f"{noun}s"
