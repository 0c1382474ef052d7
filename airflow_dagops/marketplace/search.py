"""Ranking for `dagops marketplace search`: exact name > name prefix > name word > tag > summary > description.

Pure functions over package documents, so ranking is tested without git or a DB. A query is split into words;
each word scores by the best field it matches. A word that matches nothing exactly may still match a
vocabulary word that differs by a small typo (difflib's similarity ratio), at a discount: "postgers" finds
postgres, "qualty" finds quality.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

# Weights per query word; the name bonuses dwarf them so the tiers never mix.
EXACT_NAME, NAME_PREFIX = 1000.0, 100.0
FIELD_WEIGHTS = {"name": 8.0, "tags": 4.0, "summary": 2.0, "description": 1.0}
WORD_PREFIX = 0.75  # "post" for "postgres": most of an exact word
TYPO = 0.6  # a near-miss counts for less than the real word
TYPO_RATIO = 0.85  # difflib ratio from which two words are "the same word, mistyped"
MIN_TYPO_LENGTH = 4  # shorter words are too easy to confuse ("s3" vs "s4")
_WORD = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class Document:
    name: str
    tags: tuple[str, ...]
    summary: str
    description: str


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def score(query: str, doc: Document) -> float:
    """How well `doc` matches `query`; 0 means not at all."""
    normal = "_".join(words(query))
    if not normal:
        return 0.0
    name = "_".join(words(doc.name))
    total = 0.0
    if normal == name:
        total += EXACT_NAME
    elif name.startswith(normal):
        total += NAME_PREFIX
    fields = {
        "name": set(words(doc.name)),
        "tags": {w for tag in doc.tags for w in words(tag)},
        "summary": set(words(doc.summary)),
        "description": set(words(doc.description)),
    }
    for word in words(query):
        total += max(_word_score(word, vocabulary) * FIELD_WEIGHTS[field] for field, vocabulary in fields.items())
    return total


def _word_score(word: str, vocabulary: set[str]) -> float:
    if word in vocabulary:
        return 1.0
    if any(v.startswith(word) for v in vocabulary) and len(word) >= 2:
        return WORD_PREFIX
    if len(word) >= MIN_TYPO_LENGTH:
        close = difflib.get_close_matches(word, [v for v in vocabulary if len(v) >= MIN_TYPO_LENGTH], 1, TYPO_RATIO)
        if close:
            return TYPO
    return 0.0


def rank(query: str, docs: list[Document], *, limit: int) -> list[tuple[Document, float]]:
    """The matching documents, best first (ties by name); an empty query lists every one by name."""
    if not words(query):
        return [(doc, 0.0) for doc in sorted(docs, key=lambda d: d.name)][:limit]
    scored = [(doc, score(query, doc)) for doc in docs]
    return sorted([s for s in scored if s[1] > 0], key=lambda s: (-s[1], s[0].name))[:limit]
