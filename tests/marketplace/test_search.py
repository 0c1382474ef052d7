"""Ranking: exact name > name prefix > name word > tag > summary > description, and small typos forgiven."""

from __future__ import annotations

from airflow_dagops.marketplace import listing
from airflow_dagops.marketplace.search import Document, rank
from tests.marketplace.conftest import EXAMPLE_PACKAGES


def doc(name, tags=(), summary="", description=""):
    return Document(name=name, tags=tuple(tags), summary=summary, description=description)


DOCS = [
    doc("backup", summary="Plain copies"),  # exact name
    doc("backup_postgres", summary="Dumps"),  # name prefix
    doc("pg_backup_nightly", summary="Dumps"),  # a word of the name
    doc("nightly_dump", tags=["backup"]),  # a tag
    doc("copier", summary="Makes a backup of files"),  # summary text
    doc("mover", description="Can also be used as a backup"),  # description text
    doc("unrelated", summary="Sends emails"),
]


def test_tiers_rank_exact_name_then_prefix_then_name_word_then_tag_then_text():
    ranked = [d.name for d, _ in rank("backup", DOCS, limit=20)]
    assert ranked == ["backup", "backup_postgres", "pg_backup_nightly", "nightly_dump", "copier", "mover"]


def test_small_typos_still_match_but_below_the_real_word():
    docs = [doc("postgres_backup", tags=["postgres"]), doc("quality", summary="data quality checks")]
    assert [d.name for d, _ in rank("postgers", docs, limit=5)] == ["postgres_backup"]
    assert [d.name for d, _ in rank("qualty", docs, limit=5)] == ["quality"]
    exact, typo = rank("postgres", docs, limit=1)[0][1], rank("postgers", docs, limit=1)[0][1]
    assert 0 < typo < exact


def test_short_words_are_not_typo_matched_and_nothing_matches_nothing():
    docs = [doc("s3_sync", tags=["s3"])]
    assert rank("s4", docs, limit=5) == []
    assert rank("kubernetes", docs, limit=5) == []


def test_empty_query_lists_everything_by_name_and_limit_applies():
    assert [d.name for d, _ in rank("", DOCS, limit=3)] == ["backup", "backup_postgres", "copier"]


def test_search_over_the_example_catalog(community):
    results = listing.search("postgres backup")
    assert results[0]["name"] == "postgres_backup_to_s3"
    first = results[0]
    assert first["version"] == "1.2.0" and first["catalog"] == "community"
    assert first["badge"] == {"status": "unknown", "checks": {}, "checked_at": None}
    assert first["rating"] is None and first["ratings_count"] == 0 and first["installs"] == 0
    assert first["installed_namespace"] is None
    # Typos in both words still find it first.
    assert listing.search("postgers bakup")[0]["name"] == "postgres_backup_to_s3"
    # A tag: slack is a tag of failure_notifications only.
    assert [r["name"] for r in listing.search("slack")] == ["failure_notifications"]
    assert {r["name"] for r in listing.search("", limit=50)} == EXAMPLE_PACKAGES
    assert len(listing.search("", limit=2)) == 2


def test_search_refuses_a_bad_limit_or_a_huge_query(community):
    import pytest

    from airflow_dagops.errors import InvalidInput

    for bad in (0, 501, "ten", True):
        with pytest.raises(InvalidInput, match="limit"):
            listing.search("x", limit=bad)
    with pytest.raises(InvalidInput, match="200 characters"):
        listing.search("x" * 201)
