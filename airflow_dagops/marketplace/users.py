"""Who acts in the marketplace: the author of a rating or review, the actor of an install, update or publish.

Every use case that records a person checks the name here first, so the faces all refuse the same names.
"""

from __future__ import annotations

from airflow_dagops.errors import InvalidInput

AUTHOR_MAX = 250
REVIEW_MAX = 2000  # characters of a review's text (ratings.py checks it; the faces say it in their help)


def user_name(value, *, what: str = "author") -> str:
    """The stripped user name, or InvalidInput: required, at most AUTHOR_MAX printable characters."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"an {what} (user name) is required")
    value = value.strip()
    if len(value) > AUTHOR_MAX or any(ord(c) < 32 for c in value):
        raise InvalidInput(f"invalid {what} {value[:40]!r}: at most {AUTHOR_MAX} printable characters")
    return value
