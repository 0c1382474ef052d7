"""Ratings (1 to 5 stars, one per author) and plain-text reviews of marketplace packages.

A review is stored exactly as given: the faces escape it when they show it.
"""

from __future__ import annotations

from sqlalchemy import func, select

from airflow_dagops.errors import InvalidInput
from airflow_dagops.marketplace.listing import load_package
from airflow_dagops.marketplace.users import REVIEW_MAX as REVIEW_MAX
from airflow_dagops.marketplace.users import user_name
from airflow_dagops.store.db import session_scope
from airflow_dagops.store.models import MarketplaceRating, MarketplaceReview, iso_time, utcnow


def rate(name: str, stars, *, author: str) -> dict:
    """Rate a package 1 to 5 stars; an author's new rating replaces their old one."""
    author = user_name(author)
    if isinstance(stars, str) and stars.strip().isdigit():
        stars = int(stars.strip())
    if isinstance(stars, bool) or not isinstance(stars, int) or not 1 <= stars <= 5:
        raise InvalidInput(f"a rating is a whole number of stars from 1 to 5, got {stars!r}")
    with session_scope() as session:
        package = load_package(session, name).name
        row = session.scalar(
            select(MarketplaceRating).where(MarketplaceRating.package == package, MarketplaceRating.author == author)
        )
        if row is None:
            session.add(MarketplaceRating(package=package, author=author, stars=stars))
        else:
            row.stars, row.updated_at = stars, utcnow()
        session.flush()
        average, count = (
            session.execute(
                select(func.avg(MarketplaceRating.stars), func.count()).where(MarketplaceRating.package == package)
            )
            .tuples()
            .one()
        )
        return {
            "package": package,
            "author": author,
            "stars": stars,
            "rating": round(float(average), 2),
            "ratings_count": count,
        }


def review(name: str, text: str, *, author: str) -> dict:
    """Add a plain-text review (stripped, 1 to 2000 characters), stored exactly as given: faces escape it."""
    author = user_name(author)
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("a review needs some text")
    text = text.strip()
    if len(text) > REVIEW_MAX:
        raise InvalidInput(f"a review has at most {REVIEW_MAX} characters; this one has {len(text)}")
    with session_scope() as session:
        package = load_package(session, name).name
        row = MarketplaceReview(package=package, author=author, text=text)
        session.add(row)
        session.flush()
        return {
            "id": row.id,
            "package": package,
            "author": author,
            "text": row.text,
            "created_at": iso_time(row.created_at),
        }
