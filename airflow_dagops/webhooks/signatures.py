"""Is a delivery from the Git host that knows our secret? One check per provider, in constant time.

| provider         | header                                       | value                                  |
| ---------------- | -------------------------------------------- | -------------------------------------- |
| GitHub           | X-Hub-Signature-256                          | `sha256=` + HMAC-SHA256(secret, body)  |
| GitLab           | X-Gitlab-Token                               | the secret itself                      |
| Gitea / Forgejo  | X-Gitea-Signature (or X-Forgejo-Signature)   | HMAC-SHA256(secret, body), hex         |
| Bitbucket Cloud  | X-Hub-Signature                              | `sha256=` + HMAC-SHA256(secret, body)  |

Anything else (no header, `sha1=` where `sha256=` is expected, a digest of the wrong length) does
not verify. Callers answer every failure the same way, so a sender never learns which part was wrong.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

# provider -> [(header, prefix)]; headers are matched lower-case.
_HMAC_HEADERS = {
    "github": [("x-hub-signature-256", "sha256=")],
    "gitea": [("x-gitea-signature", ""), ("x-forgejo-signature", "")],
    "bitbucket": [("x-hub-signature", "sha256=")],
}
_TOKEN_HEADERS = {"gitlab": "x-gitlab-token"}
_HEX_DIGITS = frozenset("0123456789abcdef")


def verify(provider: str, headers: Mapping[str, str], body: bytes, secret: str | None) -> bool:
    """True when the delivery carries a valid signature (or token) for `secret`. `headers` has lower-case keys."""
    if not secret:
        return False  # an empty key would let anyone sign: a connection without a password is no secret
    key = secret.encode()
    if provider in _TOKEN_HEADERS:
        given = headers.get(_TOKEN_HEADERS[provider])
        return given is not None and hmac.compare_digest(given.encode(), key)
    expected = hmac.new(key, body, hashlib.sha256).hexdigest()
    for header, prefix in _HMAC_HEADERS.get(provider, []):
        given = _digest(headers.get(header), prefix)
        if given is not None and hmac.compare_digest(given, expected):
            return True
    return False


def _digest(value: str | None, prefix: str) -> str | None:
    """The hex digest of a signature header, or None when it is not of the expected form."""
    if value is None:
        return None
    value = value.strip()
    if prefix:
        if not value.lower().startswith(prefix):
            return None  # e.g. `sha1=...`: another algorithm than the one this provider must use
        value = value[len(prefix) :]
    value = value.lower()
    if len(value) != 64 or not set(value) <= _HEX_DIGITS:
        return None
    return value


def sign(provider: str, body: bytes, secret: str) -> dict[str, str]:
    """The headers a provider would send with `body` (for tests, benchmarks and `curl` examples)."""
    if provider in _TOKEN_HEADERS:
        return {"X-Gitlab-Token": secret}
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if provider == "github":
        return {"X-Hub-Signature-256": f"sha256={digest}"}
    if provider == "gitea":
        return {"X-Gitea-Signature": digest}
    if provider == "bitbucket":
        return {"X-Hub-Signature": f"sha256={digest}"}
    raise ValueError(f"unknown provider {provider!r}")
