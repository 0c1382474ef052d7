"""Input checks and redaction shared by every face: names, refs, URLs, subdirs, connection ids, free text,
JSON bodies, and secret-free text.

Every face (REST bodies and parameters, webhook payloads, the CLI, dagops.yaml) goes through these, so a
value refused by one face is refused by all. Each check refuses the wrong type, control characters and
overlong values with an `InvalidInput` that names the rule, never a TypeError or a crash further down.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate, repeat
from operator import sub
from pathlib import PurePosixPath
from typing import Any, Literal, overload

from airflow_dagops.errors import InvalidInput, MalformedJson

# `\Z`, not `$`: `$` also matches before a trailing newline ("team\n" is not a name).
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}\Z")
MAX_REF = 255
MAX_URL = 2048
MAX_SUBDIR = 1024
MAX_CONN_ID = 250  # Airflow's own limit
MAX_JSON_DEPTH = 64
# Single-line values (refs, URLs, paths, ids): no C0/C1 control character, no DEL, no Unicode line separator.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# Multi-line free text: the same, but tab, newline and carriage return are text.
_TEXT_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")
# Never storable (PostgreSQL text refuses NUL) nor encodable as UTF-8 (lone surrogates), in any field.
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")
# Airflow's connection id rule (airflow.models.connection.RE_SANITIZE_CONN_ID), minus a leading '-'.
_CONN_ID = re.compile(r"^(?!-)[\w#!()\-.:/\\]+\Z")
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
    if not isinstance(value, str):
        raise InvalidInput(f"invalid ref: expected text, got {type(value).__name__}")
    if (
        not value
        or value.startswith("-")
        or _REF_FORBIDDEN.search(value)
        or _CONTROL.search(value)
        or _UNSTORABLE.search(value)
        or len(value) > MAX_REF
    ):
        raise InvalidInput(
            f"invalid ref {_shown(value)}: give a branch name, a tag or a full commit sha (e.g. 'main', 'v1.2'); "
            f"at most {MAX_REF} characters, no spaces or control characters"
        )
    return value.removeprefix("refs/heads/") if value.startswith("refs/heads/") else value


def validate_subdir(value: str | None) -> str | None:
    """A folder inside the repository; never absolute, never climbing out of it."""
    if value in (None, "", "."):
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"invalid subdir: expected text, got {type(value).__name__}")
    if _CONTROL.search(value) or _UNSTORABLE.search(value) or len(value) > MAX_SUBDIR:
        raise InvalidInput(
            f"invalid subdir {_shown(value)}: a folder path of at most {MAX_SUBDIR} characters without control "
            "characters, e.g. 'dags'"
        )
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
    if not isinstance(url, str):
        raise InvalidInput(f"invalid repository URL: expected text, got {type(url).__name__}")
    if (
        not url
        or url.startswith("-")
        or " " in url
        or _CONTROL.search(url)
        or _UNSTORABLE.search(url)
        or len(url) > MAX_URL
    ):
        raise InvalidInput(
            f"invalid repository URL {_shown(redact(url))}: it must not be empty, start with '-', contain spaces "
            f"or control characters, or be longer than {MAX_URL} characters"
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


def validate_conn_id(value: str | None, *, what: str = "connection id") -> str | None:
    """An Airflow connection id (letters, digits and `_-.:/\\#!()`; at most 250), or None for none."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"invalid {what}: expected text, got {type(value).__name__}")
    if len(value) > MAX_CONN_ID or not _CONN_ID.match(value):
        raise InvalidInput(
            f"invalid {what} {_shown(value)}: use up to {MAX_CONN_ID} letters, digits and _ - . : / \\ # ! ( ), "
            "not starting with '-' (Airflow's rule for connection ids)"
        )
    return value


@overload
def validate_text(
    value: Any, *, what: str, max_length: int, multiline: bool = False, required: Literal[True] = True
) -> str: ...


@overload
def validate_text(value: Any, *, what: str, max_length: int, multiline: bool = False, required: bool) -> str | None: ...


def validate_text(
    value: Any, *, what: str, max_length: int, multiline: bool = False, required: bool = True
) -> str | None:
    """Free text (a title, a description, a review, a search): a string of at most `max_length` characters
    without control characters (tab and newlines allowed when `multiline`)."""
    if value is None and not required:
        return value
    if not isinstance(value, str):
        raise InvalidInput(f"invalid {what}: expected text, got {type(value).__name__}")
    if required and not value.strip():
        raise InvalidInput(f"invalid {what}: it must not be empty")
    if len(value) > max_length:
        raise InvalidInput(f"invalid {what}: at most {max_length} characters (got {len(value)})")
    if (_TEXT_CONTROL if multiline else _CONTROL).search(value) or _UNSTORABLE.search(value):
        allowed = " (tab and line breaks are fine)" if multiline else ""
        raise InvalidInput(f"invalid {what}: it contains control characters{allowed}")
    return value


def has_control_characters(value: str, *, multiline: bool = False) -> bool:
    """True when a text holds a control character (or NUL, or a lone surrogate)."""
    return bool((_TEXT_CONTROL if multiline else _CONTROL).search(value) or _UNSTORABLE.search(value))


# -- JSON bodies ---------------------------------------------------------------------------------------------
_JSON_ESCAPE = re.compile(r"\\.", re.S)
_JSON_STRING = re.compile(r'"[^"]*"?')  # once escapes are gone, a string holds no quote
_JSON_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_JSON_STEP = str.maketrans({"[": "\x02", "{": "\x02", "]": "\x00", "}": "\x00"})  # +1 / -1 once 1 is taken off


def json_depth(text: str) -> int:
    """How deep the JSON text nests arrays and objects, from its brackets outside strings (0 for a scalar).

    Python's json module recurses once per level: 100,000 `[` are a RecursionError, in json.loads or in any
    code walking the result, so the depth is measured before parsing, at C speed (the running sum of +1 per
    opening and -1 per closing bracket; its maximum is the deepest level json.loads could reach).
    """
    brackets = _JSON_NOT_BRACKET.sub("", _JSON_STRING.sub("", _JSON_ESCAPE.sub("", text)))
    steps = brackets.translate(_JSON_STEP).encode("latin-1")
    return max(accumulate(map(sub, steps, repeat(1))), default=0)


def loads_json(raw: bytes | str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse a JSON body safely: UTF-8 only (RFC 8259), at most `max_depth` levels deep. Raises MalformedJson."""
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as err:
            raise MalformedJson(
                f"the body is not valid JSON: it is not UTF-8 ({err.reason} at byte {err.start})"
            ) from err
    else:
        text = raw
    if json_depth(text) > max_depth:
        raise MalformedJson(
            f"the body nests arrays/objects deeper than {max_depth} levels; dagops accepts no such JSON"
        )
    try:
        return json.loads(text)
    except RecursionError as err:  # pragma: no cover - the depth check comes first; never a 500 anyway
        raise MalformedJson(f"the body nests deeper than {max_depth} levels") from err
    except ValueError as err:
        raise MalformedJson(f"the body is not valid JSON: {err}") from err


def bad_text_field(data: Any, *, raw_text_keys: frozenset[str] = frozenset(), path: str = "") -> tuple[str, str] | None:
    """The first string of a parsed body (key or value, at any depth) that no field accepts, as (path, why);
    None when there is none. Paths read 'files.0.content'.

    No string may hold a NUL or a lone surrogate: no database column, file name or git argument can hold
    one. Nor control characters other than tab and line breaks (free text; single-line fields are held to
    the stricter rules of their own validators), except the values of `raw_text_keys` (file contents).
    """
    if isinstance(data, str):
        if _UNSTORABLE.search(data):
            return path, "holds a NUL character or a lone surrogate"
        if _TEXT_CONTROL.search(data) and path.rsplit(".", 1)[-1] not in raw_text_keys:
            return path, "holds control characters (only tab and line breaks are text)"
        return None
    items: list = []
    if isinstance(data, dict):
        for key, value in data.items():
            where = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and (_UNSTORABLE.search(key) or _CONTROL.search(key)):
                return where, "the key holds control characters"
            items.append((where, value))
    elif isinstance(data, list):
        items = [(f"{path}.{index}" if path else str(index), value) for index, value in enumerate(data)]
    for where, value in items:
        found = bad_text_field(value, raw_text_keys=raw_text_keys, path=where)
        if found is not None:
            return found
    return None


def _shown(value: str, limit: int = 80) -> str:
    """A value quoted for an error message: repr (control characters escaped), cut to `limit` characters."""
    return repr(value[:limit] + "…") if len(value) > limit else repr(value)


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
