"""Ratings 1-5 (one per author) and plain-text reviews (stored verbatim, faces escape them)."""

from __future__ import annotations

import pytest

from airflow_dagops.errors import InvalidInput, NotFound
from airflow_dagops.marketplace import listing, ratings

HTML = '<script>alert("x")</script><img src=x onerror=alert(1)> & "quotes"'


@pytest.mark.parametrize("stars", [0, 6, "five", 4.5, None, True, -1])
def test_bad_stars_are_refused_with_a_clear_message(community, stars):
    with pytest.raises(InvalidInput, match="whole number of stars from 1 to 5"):
        ratings.rate("cleanup_old_logs", stars, author="dana")
    assert listing.package_info("cleanup_old_logs")["ratings_count"] == 0


def test_one_rating_per_author_averaged_and_shown_as_a_histogram(community):
    ratings.rate("cleanup_old_logs", 5, author="dana")
    ratings.rate("cleanup_old_logs", 2, author="lee")
    again = ratings.rate("cleanup_old_logs", "4", author="dana")  # replaces dana's 5; a digit string from a CLI is fine
    assert (again["rating"], again["ratings_count"]) == (3.0, 2)
    info = listing.package_info("cleanup_old_logs")
    assert (info["rating"], info["ratings_count"]) == (3.0, 2)
    assert info["rating_histogram"] == {"1": 0, "2": 1, "3": 0, "4": 1, "5": 0}
    assert listing.search("cleanup")[0]["rating"] == 3.0


def test_ratings_and_reviews_need_a_known_package_and_an_author(community):
    with pytest.raises(NotFound, match="no package named 'nope'"):
        ratings.rate("nope", 5, author="dana")
    with pytest.raises(NotFound):
        ratings.review("nope", "fine", author="dana")
    with pytest.raises(InvalidInput, match="author"):
        ratings.rate("cleanup_old_logs", 5, author="  ")


def test_reviews_are_stripped_stored_verbatim_and_listed_newest_first(community):
    ratings.review("cleanup_old_logs", "  Works great!  ", author="dana")
    stored = ratings.review("cleanup_old_logs", HTML, author="mallory")
    assert stored["text"] == HTML  # not escaped here: escaping is the face's job
    reviews = listing.package_info("cleanup_old_logs")["reviews"]
    assert [(r["author"], r["text"]) for r in reviews] == [("mallory", HTML), ("dana", "Works great!")]
    assert all(r["created_at"] for r in reviews)


def test_oversized_or_empty_reviews_are_refused_naming_the_limit(community):
    with pytest.raises(InvalidInput, match="at most 2000 characters; this one has 2001"):
        ratings.review("cleanup_old_logs", "x" * 2001, author="dana")
    with pytest.raises(InvalidInput, match="needs some text"):
        ratings.review("cleanup_old_logs", " \n ", author="dana")
    assert ratings.review("cleanup_old_logs", "y" * 2000, author="dana")["text"] == "y" * 2000
    assert len(listing.package_info("cleanup_old_logs")["reviews"]) == 1
