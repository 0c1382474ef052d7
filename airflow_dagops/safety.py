"""Input checks and redaction shared by every face: names, refs, URLs, and secret-free text."""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from airflow_dagops.errors import InvalidInput

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
# Branch, tag or commit: git's own check-ref-format rules, minus anything that could be read as an option.
_REF_FORBIDDEN = re.compile(r"(\.\.|@\{|[\x00-\x20~^:?*\[\\\x7f]|//|/\.|\.lock$|\.$|/$)")
_SCP_LIKE = re.compile(r"^(?P<user>[A-Za-z0-9._~-]+@)?(?P<host>[A-Za-z0-9.-]+):(?P<path>[^/].*|/.*)$")
_URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")


def validate_name(value: str, *, what: str = "name") -> str:
    """Repository names and namespaces become folder names: keep them boring."""
    if not isinstance(value, str) or not NAME_PATTERN.match(value):
        raise InvalidInput(
            f"invalid {what} {value!r}: use 1-63 lower-case letters, digits, '-' or '_', "
            "starting with a letter or digit (e.g. 'team-etl')"
        )
    return value


def validate_ref(value: str) -> str:
    """A branch, tag or full commit sha; anything git could read as an option is refused."""
    if not value or value.startswith("-") or _REF_FORBIDDEN.search(value) or len(value) > 255:
        raise InvalidInput(
            f"invalid ref {value!r}: give a branch name, a tag or a full commit sha (e.g. 'main', 'v1.2')"
        )
    return value.removeprefix("refs/heads/") if value.startswith("refs/heads/") else value


def validate_subdir(value: str | None) -> str | None:
    """A folder inside the repository; never absolute, never climbing out of it."""
    if value in (None, "", "."):
        return None
    path = PurePosixPath(value)
    if path.is_absolute() or ".." in path.parts or value.startswith("-") or "\\" in value:
        raise InvalidInput(f"invalid subdir {value!r}: give a relative folder inside the repository, e.g. 'dags'")
    return str(path)


def url_scheme(url: str) -> str:
    """The git transport a URL uses: https, http, ssh, git, file, or the ext-like `<name>::` form."""
    if "::" in url.split("/", 1)[0]:
        return url.split("::", 1)[0] + "::"
    if "://" in url:
        return url.split("://", 1)[0].lower()
    if url.startswith("/"):
        return "file"
    if _SCP_LIKE.match(url):
        return "ssh"
    return ""


def validate_url(url: str, *, allowed_protocols: list[str]) -> str:
    """Accept only URLs git will fetch with an allowed transport and no embedded secret."""
    if not url or not isinstance(url, str) or url.startswith("-") or any(c in url for c in "\x00\n\r\t "):
        raise InvalidInput(
            f"invalid repository URL {redact(str(url))!r}: it must not be empty, start with '-' or contain spaces"
        )
    scheme = url_scheme(url)
    if scheme.endswith("::") or scheme == "ext":
        raise InvalidInput(
            f"refused repository URL {redact(url)!r}: the '{scheme}' transport runs commands and is never allowed"
        )
    if scheme not in allowed_protocols:
        raise InvalidInput(
            f"refused repository URL {redact(url)!r}: transport {scheme or 'unknown'!r} is not allowed "
            f"(allowed: {', '.join(allowed_protocols)}; see [dagops] allowed_protocols)"
        )
    if has_credentials(url):
        raise InvalidInput(
            f"repository URL {redact(url)!r} contains credentials. Store them in an Airflow connection of "
            "type 'git' (login/password or token, or an SSH key) and pass its id with --conn-id; "
            "dagops never stores secrets."
        )
    return url


def has_credentials(url: str) -> bool:
    """True when the URL carries a password or token (a bare ssh user such as git@ is not a secret)."""
    match = _URL_USERINFO.match(url)
    if not match:
        return False
    scheme = match.group("scheme")[:-3].lower()
    userinfo = match.group("userinfo")
    return ":" in userinfo or scheme not in ("ssh", "git+ssh")


def redact(text: str) -> str:
    """Hide URL userinfo that may hold a secret, anywhere in a text (log line, git stderr, error)."""
    if not text:
        return text

    def _mask(match: re.Match[str]) -> str:
        scheme, userinfo = match.group("scheme"), match.group("userinfo")
        if scheme[:-3].lower() in ("ssh", "git+ssh") and ":" not in userinfo:
            return match.group(0)
        return f"{scheme}***@"

    return _URL_USERINFO.sub(_mask, text)


def display_url(url: str) -> str:
    """The URL as shown to people: no credentials, no trailing slash."""
    return redact(url).rstrip("/")
