"""Second opinion on hardcoded-secret findings: what detect-secrets flags that is not a secret, and a miss.

detect-secrets matches a *shape* (a password-like name given a literal). Real DAG repositories are full of
literals of that shape that are not credentials, and an error on each teaches a team to ignore the check.
``downgrade_reason`` says why a flagged value is not a credential; the security check then reports it as a
**warning** with that reason (never silently: a reviewer can still see it). The cases:

- placeholders: ``<your-token>``, ``github_pat_<...>``, ``changeme``, ``xxx``, ``REPLACE_ME``,
  ``your_password_here``, values of one repeated character, and templates (``${VAR}``, ``{{ var }}``,
  ``%(name)s``) that Airflow, the shell or Helm fill in later;
- names of secrets rather than values: ``secret="postgres-secrets"`` (a Kubernetes Secret),
  ``SECRET_NAME = "prod/db/password"`` (a secrets-manager path), ``conn_id="aws_secret"``,
  ``password_key="db_password"``: a lowercase identifier or path given to a name like ``*_name``,
  ``*_key``, ``*_id``, ``*_path``, ``*_var``, or one that itself names a secret (``db_password``);
- well-known local development defaults (``airflow``, ``postgres``, ``minioadmin`` ...) in a Compose file
  (``docker-compose*.yml``, ``compose*.yaml``);
- files of vendored third-party code (under a folder `files.VENDOR_FOLDERS` names: ``vendor/``, ``third_party/`` ...)
  and CI workflows of a vendored folder (``<folder>/.github/workflows/``, not the repository's own).

``find_uri_passwords`` finds what detect-secrets misses: a password in a connection URI that holds
URL-special characters (``postgresql://user:p%40ss#w0rd@host/db``, ``mysql://u:pa@ss@h/db``: the last
``@`` before the host ends the password), in any text file (Python, ``.env``, YAML ...).
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from airflow_dagops.validate.files import in_vendor_folder

PLACEHOLDER_REASON = "a placeholder, not a real value"
TEMPLATE_REASON = "a template filled in at run time, not a value"
REFERENCE_REASON = "the name or path of a secret, not its value"
DEV_DEFAULT_REASON = "a local development default"
VENDORED_REASON = "in vendored third-party code"

_PLACEHOLDER_WORDS = re.compile(
    r"(change[_\-.]?me|replace[_\-.]?me|fill[_\-.]?me(?:[_\-.]?in)?|to[_\-.]?do|fixme|tbd|placeholder|dummy|"
    r"redacted|example|sample|null|none|undefined|"
    r"(your|my)[_\-.][a-z_\-.]*|[a-z_\-.]*[_\-.]here|insert[_\-.][a-z_\-.]*|enter[_\-.][a-z_\-.]*)",
    re.IGNORECASE,
)
_TEMPLATE = re.compile(
    r"\$\{[^}]*\}|\$\([^)]*\)|\{\{.*?\}\}|\{%.*?%\}|%\([\w.]+\)[sr]|^%[sr]$|^\$[A-Za-z_]\w*$|^\{[\w.!:]*\}$"
)
_ANGLE_PLACEHOLDER = re.compile(r"<[^<>]*>|\[[A-Z_ \-]+\]")

# Names whose value is a reference to a secret (a name, key, id or path), not the secret.
_REFERENCE_NAME = re.compile(
    r"(^|_)(name|key|keys|id|ids|conn|conn_id|connection|connection_id|path|ref|arn|var|variable|env|"
    r"field|prefix|mount|mount_point|label|kind|type|scope)$|^secrets?$",
    re.IGNORECASE,
)
# ... but these names hold the secret itself (`api_key = "..."`, `client_secret = "..."`).
_SECRET_VALUED_NAME = re.compile(
    r"(api|access|secret|private|signing|encryption|fernet|master|client|app|account|storage|license)_?key$",
    re.IGNORECASE,
)
_SECRET_WORD = re.compile(r"secret|passw|pwd|token|key|cred|auth|conn|apikey", re.IGNORECASE)
# A lowercase identifier or path: words joined by _ - / . or :
_IDENTIFIER_VALUE = re.compile(r"[a-z][a-z0-9]*(?:[_\-/.:][a-z0-9]+)+|arn:aws:secretsmanager:\S+")

DEV_DEFAULTS = frozenset(
    {"", "airflow", "postgres", "postgresql", "mysql", "root", "admin", "password", "secret", "minioadmin",
     "guest", "example", "test", "dev", "local", "redis", "rabbitmq", "user", "pass", "changeit"}
)  # fmt: skip
_COMPOSE_FILE = re.compile(r"(docker-)?compose([._\-][\w.\-]*)?\.ya?ml", re.IGNORECASE)

# scheme://user:password@host — the password runs to the last `@` before the host, and may hold `#`, `%`,
# `@`, `:` or `!` (no `/`, whitespace or quote: those end the URI in every file format we read).
_URI_PASSWORD = re.compile(
    r"\b[A-Za-z][A-Za-z0-9+.\-]*://(?P<user>[^\s:/'\"@<>{}]*):(?P<password>[^\s/'\"<>]+)"
    r"@(?P<host>[A-Za-z0-9\-._~\[\]:]+)(?=[/?\s'\"),;]|$)"
)
_ALLOWLIST = "pragma: allowlist secret"
_ALLOWLIST_NEXT = "pragma: allowlist nextline secret"


def is_compose_file(relative: str) -> bool:
    return bool(_COMPOSE_FILE.fullmatch(PurePosixPath(relative).name))


def is_vendored(relative: str) -> bool:
    """Under a vendored folder, or a CI workflow of a nested folder (not the repository's own)."""
    if in_vendor_folder(relative):
        return True
    return ".github" in PurePosixPath(relative).parts[1:-1]


def is_placeholder(value: str) -> str | None:
    """The reason ``value`` is not a real credential but a placeholder or a template, if it is one."""
    stripped = value.strip().strip("'\"")
    if _TEMPLATE.search(stripped):
        return TEMPLATE_REASON
    if _ANGLE_PLACEHOLDER.search(stripped) or stripped.endswith("..."):
        return PLACEHOLDER_REASON
    if len(set(stripped.lower())) <= 1:  # "", "xxx", "********"
        return PLACEHOLDER_REASON
    if _PLACEHOLDER_WORDS.fullmatch(stripped):
        return PLACEHOLDER_REASON
    return None


def is_secret_reference(name: str | None, value: str) -> bool:
    """``value`` looks like the name, key or path of a secret given to ``name``, not the secret itself."""
    stripped = value.strip().strip("'\"")
    if not _IDENTIFIER_VALUE.fullmatch(stripped):
        return False
    if name and _SECRET_VALUED_NAME.search(name):
        return False
    if name and _REFERENCE_NAME.search(name):
        return True
    # `"db_password"`, `"prod/db/password"`: a value that itself names a secret is a name for one.
    return bool(_SECRET_WORD.search(stripped))


def _name_before(line: str, value: str) -> str | None:
    """The key or variable a value is given to on ``line`` (``SECRET_NAME = "..."``, ``secret: ...``)."""
    at = line.find(value)
    if at < 0:
        return None
    match = re.search(r"([A-Za-z_][\w\-]*)[\"']?\s*(?::=|=|:)\s*[\"']?$", line[:at])
    return match.group(1) if match else None


def downgrade_reason(relative: str, line: str, values: list[str]) -> str | None:
    """Why the secret-looking ``values`` on ``line`` of ``relative`` are not a credential, or None."""
    if is_vendored(relative):
        return VENDORED_REASON
    if not values:
        return None
    reasons = []
    for value in values:
        password = uri_password(value) or value
        reason = is_placeholder(password)
        if reason is None and is_secret_reference(_name_before(line, value), value):
            reason = REFERENCE_REASON
        if reason is None and is_compose_file(relative) and password.strip("'\"").lower() in DEV_DEFAULTS:
            reason = DEV_DEFAULT_REASON
        if reason is None:
            return None  # one real-looking value on the line is enough to keep the error
        reasons.append(reason)
    return reasons[0]


def uri_password(text: str) -> str | None:
    match = _URI_PASSWORD.search(text)
    return match.group("password") if match else None


def find_uri_passwords(text: str) -> list[tuple[int, str]]:
    """``(line number, password)`` for each connection-URI password in ``text``, allowlist pragmas honoured."""
    found = []
    previous = ""
    for number, line in enumerate(text.splitlines(), start=1):
        if _ALLOWLIST not in line and _ALLOWLIST_NEXT not in previous:
            for match in _URI_PASSWORD.finditer(line):
                found.append((number, match.group("password")))
                break
        previous = line
    return found
