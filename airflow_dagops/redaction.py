"""Secret values out of every text dagops stores or prints: findings, events, log lines, API answers.

The sandbox keeps secrets away from DAG code; this module is the second line of defence for when a DAG (or a
test, or a library it calls) learned one anyway and put it in an exception message, a traceback or its output.
Such text is attacker-controlled, so no pattern can recognise the secret in it: instead every value this
process knows to be secret is masked wherever it appears.

The secret values are
- environment variables whose name or value says "secret" (`is_sensitive` below, the sandbox's own rule:
  `AIRFLOW_CONN_*`, `AIRFLOW_VAR_*`, `*_TOKEN`, `*_PASSWORD`, database URLs ...), and of Airflow's settings
  (`AIRFLOW__SECTION__KEY`) those Airflow marks sensitive, the `_CMD`/`_SECRET` indirections and keys that name
  a password, secret, token or key;
- the settings Airflow marks sensitive (`conf.sensitive_config_values`: database URL, fernet key, JWT secret,
  API secret key, celery broker ...), wherever they are configured;
- inside each of those: the password of a URL (as written, decoded and re-encoded: `#`, `@`, `%` are encoded
  in a connection URI) and the secret-looking fields of a JSON value (a connection's password and extras).

Short and boring values (`true`, digits, paths) are left alone, so that ordinary words are never masked.

Airflow's settings need Airflow's config, and importing it costs a command-line read about two seconds (issue 19,
"Fast CLI"). Where Airflow is not loaded yet, a text is first checked against every value that could hold such a
secret, read plainly from the environment (`AIRFLOW__*`) and airflow.cfg: a text that holds none of them (nor a
part of one) holds no secret of Airflow's settings, and the environment's secrets suffice. Only a text that does,
or a config with `_cmd`/`_secret` indirections (whose values only Airflow resolves), loads Airflow's config.
"""

from __future__ import annotations

import configparser
import json
import logging
import os
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import replace
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlsplit

from airflow_dagops import settings
from airflow_dagops.safety import redact

MASK = "***"
MIN_LENGTH = 6  # shorter values are ordinary words more often than secrets
LOGGER = "airflow_dagops"

# Hidden from the sandbox to isolate it, but they say where things are, not anything secret.
_PLACES = {"HOME", "TMPDIR", "PWD", "OLDPWD", "AIRFLOW_HOME", "AIRFLOW_CONFIG"}
_SETTING = re.compile(r"^AIRFLOW__(?P<section>[A-Z0-9_]+?)__(?P<key>[A-Z0-9_]+)$")
# For Airflow settings only these words in the key count: the sandbox's wider list (AUTH, SESSION, KEY ...) would
# make `[fab] session_backend = database` a secret and mask the word "database" in every message.
_SECRET_KEY_WORDS = ("PASSWORD", "PASSWD", "SECRET", "TOKEN", "CREDENTIAL", "PRIVATE", "APIKEY", "DSN")
_BORING = re.compile(r"^(true|false|none|null|yes|no|on|off|[\d.,:_ -]+|~?\.{0,2}/[\w./-]*)$", re.IGNORECASE)

_cache: dict[bool, tuple[int, frozenset[str], re.Pattern[str] | None]] = {}  # by "with Airflow's settings"
_candidates: tuple[int, frozenset[str] | None] | None = None  # see _config_may_hold_secret


# -- what is secret --------------------------------------------------------------------------------------------

# Environment variables the sandbox never sees (names are compared upper-case).
_DROPPED_PREFIXES = ("AIRFLOW_CONN_", "AIRFLOW_VAR_", "AIRFLOW__DATABASE__", "AIRFLOW__SECRETS__", "AIRFLOW__DAGOPS__")
_DROPPED_NAMES = {
    "AIRFLOW__CORE__SQL_ALCHEMY_CONN",
    "AIRFLOW__CORE__FERNET_KEY",
    "AIRFLOW__CELERY__BROKER_URL",
    "AIRFLOW__CELERY__RESULT_BACKEND",
    "AIRFLOW_CONFIG",
    "AIRFLOW_HOME",
    "HOME",
    "TMPDIR",
    "PWD",
    "OLDPWD",
}
_SECRET_WORDS = ("SECRET", "TOKEN", "PASSWORD", "PASSWD", "KEY", "CREDENTIAL", "PRIVATE", "AUTH", "COOKIE", "SESSION")
# `AIRFLOW__X__Y_CMD` runs a command and `..._SECRET` asks a secrets backend: neither belongs in a sandbox.
_CONFIG_INDIRECTION = re.compile(r"^AIRFLOW__\w+__\w+_(CMD|SECRET)$")
_URL_WITH_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s@:]*:[^/\s@]*@", re.IGNORECASE)
_SECRET_IN_VALUE = re.compile(r"(password|passwd|pwd|secret|token)\s*[=:]", re.IGNORECASE)
# Python variables that would make the sandbox's interpreter load code or paths from outside it.
_PYTHON_LOADERS = {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE", "PYTHONINSPECT", "PYTHONBREAKPOINT"}
_DATABASE_URL = re.compile(r"^\s*(sqlite|postgres(ql)?|mysql|mariadb|mssql|oracle)(\+\w+)?:", re.IGNORECASE)


def is_sensitive(name: str, value: str) -> bool:
    """Whether an environment variable must not reach a sandbox or a log: a secret by its name or its value,
    a configuration indirection, or a Python loader variable. One rule for the sandbox and for redaction."""
    upper = name.upper()
    if upper in _DROPPED_NAMES or upper.startswith(_DROPPED_PREFIXES) or _CONFIG_INDIRECTION.match(upper):
        return True
    if any(word in upper for word in _SECRET_WORDS) or upper in _PYTHON_LOADERS:
        return True
    return bool(_URL_WITH_PASSWORD.search(value) or _DATABASE_URL.match(value) or _SECRET_IN_VALUE.search(value))


def secret_values() -> frozenset[str]:
    """Every secret value known to this process (see the module docstring); cached per environment."""
    return _known(with_config=True)[1]


def _known(*, with_config: bool) -> tuple[int, frozenset[str], re.Pattern[str] | None]:
    # Keyed by the environment so a changed variable is seen; rebuilding costs a config read, a lookup does not.
    key = _environment_key()
    cached = _cache.get(with_config)
    if cached is None or cached[0] != key:
        raw_secrets = _raw_secrets(_airflow_conf() if with_config else None)
        values = frozenset(v for raw in raw_secrets for v in _forms(raw) if _worth_masking(v))
        cached = _cache[with_config] = (key, values, _pattern(values))
    return cached


def _config_may_hold_secret(text: str) -> bool:
    """Whether Airflow's config must be asked for its secret settings before `text` is shown: it is loaded already
    (asking costs nothing), or `text` holds a value, or part of one, that a setting holds in the environment or in
    airflow.cfg (see the module docstring)."""
    if "airflow.configuration" in sys.modules:
        return True
    candidates = _config_values()
    return candidates is None or any(form in text for form in candidates)


def _config_values() -> frozenset[str] | None:
    """The forms of every value of Airflow's settings in the environment and in airflow.cfg; None where only Airflow
    can say (a `_cmd`/`_secret` indirection, a file it cannot read). Cached per environment and file version."""
    global _candidates
    path = settings.airflow_config_file()
    try:
        stat = path.stat()
        version: tuple = (stat.st_mtime_ns, stat.st_size)
    except FileNotFoundError:
        version = ()
    except OSError:
        return None
    key = hash((_environment_key(), str(path), version))
    if _candidates is None or _candidates[0] != key:
        _candidates = (key, _read_config_values(path if version else None))
    return _candidates[1]


def _read_config_values(path) -> frozenset[str] | None:
    settings_in_env = {name: value for name, value in os.environ.items() if _SETTING.match(name.upper())}
    names, values = [name.lower() for name in settings_in_env], list(settings_in_env.values())
    if path is not None:
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read(path)
        except (configparser.Error, OSError, UnicodeDecodeError):
            return None
        for section in parser.sections():
            names += parser.options(section)
            values += [parser.get(section, option) for option in parser.options(section)]
    if any(name.endswith(("_cmd", "_secret")) for name in names):
        return None
    raw = {form for value in values for form in (value, settings.expand_env_var(value))}
    return frozenset(form for value in raw for form in _forms(value) if _worth_masking(form))


def _environment_key() -> int:
    # os.environ's raw (bytes) mapping hashes in microseconds; `os.environ.items()` decodes every entry, 10x slower,
    # and this runs for every finding and log record.
    raw = getattr(os.environ, "_data", None)
    return hash(tuple(raw.items())) if isinstance(raw, dict) else hash(frozenset(os.environ.items()))


def _raw_secrets(conf) -> Iterator[str]:
    sensitive = {(s.lower(), k.lower()) for s, k in getattr(conf, "sensitive_config_values", ())}
    for name, value in os.environ.items():
        if _is_secret_variable(name, value, sensitive):
            yield value
    if conf is not None:
        yield from _setting_values(conf, sensitive)


def _airflow_conf():
    try:
        from airflow.configuration import conf
    except Exception:  # no Airflow config: the environment alone still counts (nothing logged: see _redact_record)
        return None
    return conf


def _is_secret_variable(name: str, value: str, sensitive: set[tuple[str, str]]) -> bool:
    upper = name.upper()
    if upper in _PLACES:
        return False
    setting = _SETTING.match(upper)
    if setting is None:
        return is_sensitive(name, value)
    section, key = setting["section"].lower(), setting["key"]
    return (
        (section, key.lower()) in sensitive
        or key.endswith(("_CMD", "_SECRET"))  # a command or a secrets-backend path that yields a secret
        or (_secret_key(key) and not key.endswith("_CONN_ID"))  # a connection's id is not its secret
        or is_sensitive("", value)  # the value alone: a URL with a password, a database URL
    )


def _secret_key(key: str) -> bool:
    upper = key.upper()
    return any(word in upper for word in _SECRET_KEY_WORDS) or upper.endswith("_KEY") or upper == "KEY"


def _setting_values(conf, sensitive: set[tuple[str, str]]) -> Iterator[str]:
    for section, key in sorted(sensitive):
        try:
            value = conf.get(section, key, fallback=None)
        # A failing `_cmd` or secrets backend must not stop redaction of the rest. Not logged: the record would
        # come back here through install_log_redaction's factory, before the cache is built.
        except Exception:  # noqa: S112
            continue
        if value:
            yield str(value)


def _forms(value: str) -> set[str]:
    """The value and the secret parts inside it, as each may appear in a message."""
    parts = {value.strip(), *_url_secrets(value), *_json_secrets(value)}
    # JUnit XML (stored with a release as written) escapes `&`, `<`, `>` and, in attributes, `"`.
    return parts | {_xml_escape(p) for p in parts} | {_xml_escape(p, quote=True) for p in parts}


def _xml_escape(text: str, *, quote: bool = False) -> str:
    """xml.sax.saxutils.escape (and with `quote`, its `{'"': "&quot;"}` form), written out: importing it loads
    urllib.request and ssl, a cost every `dagops` command paid at start-up."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace('"', "&quot;") if quote else text


def _url_secrets(value: str) -> Iterator[str]:
    """The password of a URL (a connection URI), as written, decoded and re-encoded, and secret query fields."""
    try:
        parts = urlsplit(value.strip())
        password = parts.password if parts.scheme and parts.netloc else None
        query = parse_qsl(parts.query) if parts.scheme else []
    except ValueError:
        return
    if password:
        decoded = unquote(password)
        yield from (password, decoded, quote(decoded, safe=""), quote_plus(decoded))
    for field, field_value in query:
        if _secret_key(field):
            yield field_value
        if field == "__extra__":
            yield from _json_secrets(field_value)


def _json_secrets(value: str) -> Iterator[str]:
    """Secret-looking fields of a JSON value (a connection's password, a token in its extras, backend kwargs)."""
    if not value.lstrip().startswith("{"):
        return
    try:
        data = json.loads(value)
    except ValueError:
        return
    yield from _secret_leaves(data)


def _secret_leaves(data: object) -> Iterator[str]:
    if not isinstance(data, dict):
        return
    for field, item in data.items():
        if isinstance(item, dict):
            yield from _secret_leaves(item)
        elif isinstance(item, str) and field == "extra":  # a connection's extras, as a JSON string
            yield from _json_secrets(item)
        elif isinstance(item, str) and _secret_key(str(field)):
            yield item
            yield from _url_secrets(item)
        elif isinstance(item, str):
            yield from _url_secrets(item)  # a host URL with a password inside, whatever the field


def _worth_masking(value: str) -> bool:
    return len(value) >= MIN_LENGTH and not _BORING.match(value)


def _pattern(values: Iterable[str]) -> re.Pattern[str] | None:
    # Longest first: at one position the regex takes the first alternative that matches, so a URI is masked
    # whole rather than leaving its tail around its masked password.
    ordered = sorted(set(values), key=len, reverse=True)
    return re.compile("|".join(re.escape(v) for v in ordered)) if ordered else None


# -- masking ---------------------------------------------------------------------------------------------------
def redact_text(text: str, extra: Iterable[str] = ()) -> str:
    """`text` with every secret value (and each of `extra`) replaced by ***, and URL userinfo hidden."""
    if not text:
        return text
    pattern = _known(with_config=_config_may_hold_secret(text))[2]
    if pattern is not None:
        text = pattern.sub(MASK, text)
    extra_pattern = _pattern(e for e in extra if e)
    if extra_pattern is not None:
        text = extra_pattern.sub(MASK, text)
    return redact(text)


def redact_finding(finding):
    """A validation Finding with its message and hint redacted (a new one: findings are shared, e.g. cached)."""
    message = redact_text(finding.message)
    hint = redact_text(finding.hint) if finding.hint else finding.hint
    if message == finding.message and hint == finding.hint:
        return finding  # frozen: sharing it is safe
    return replace(finding, message=message, hint=hint)


def redact_findings(findings: Iterable) -> list:
    return [redact_finding(f) for f in findings]


def redact_dag_facts(dag):
    """A DAG's free-text facts as its file reported them (owners, tags, schedule); its ids are left as they are."""
    owners = [redact_text(o) for o in dag.owners or []]
    tags = [redact_text(t) for t in dag.tags or []]
    schedule = redact_text(dag.schedule) if isinstance(dag.schedule, str) else dag.schedule
    if (owners, tags, schedule) == (list(dag.owners or []), list(dag.tags or []), dag.schedule):
        return dag
    return replace(dag, owners=owners, tags=tags, schedule=schedule)


# -- logging ---------------------------------------------------------------------------------------------------
class RedactingFilter(logging.Filter):
    """Masks secret values in a record's message, traceback and stack; never drops a record.

    `install_log_redaction()` applies it to every `airflow_dagops` record; an operator can also put it on any
    handler (`{"()": "airflow_dagops.redaction.RedactingFilter"}` in a logging config)."""

    def filter(self, record: logging.LogRecord) -> bool:
        _redact_record(record)
        return True


def _redact_record(record: logging.LogRecord) -> None:
    # Nothing in here may log: a record of this package would come straight back here.
    try:
        message = record.getMessage()
    except Exception:  # bad arguments: logging reports that itself when a handler formats the record
        return
    clean = redact_text(message)
    if clean != message:
        record.msg, record.args = clean, ()  # the arguments carried the secret: keep only the masked text
    if record.exc_info and not record.exc_text:
        text = logging.Formatter().formatException(record.exc_info)
        clean = redact_text(text)
        if clean != text:
            # Formatters print exc_text when it is set; exc_info goes, so nothing can render the raw one again.
            record.exc_text, record.exc_info = clean, None
    elif record.exc_text:
        record.exc_text = redact_text(record.exc_text)
    if record.stack_info:
        record.stack_info = redact_text(record.stack_info)


_FILTER = RedactingFilter()


def install_log_redaction() -> None:
    """Redact every record of an `airflow_dagops` logger, whichever handler writes it. Idempotent and cheap.

    Why a record factory rather than a filter on the `airflow_dagops` logger: a logger's filters only see records
    logged on that very logger, not those propagated from `airflow_dagops.services` and its siblings; and
    handlers (Airflow's, a CLI's, pytest's) come and go after this runs. The factory sees every record made."""
    current = logging.getLogRecordFactory()
    if getattr(current, "dagops_redacting", False):
        return

    def factory(*args, **kwargs) -> logging.LogRecord:
        record = current(*args, **kwargs)
        name = record.name if isinstance(record.name, str) else ""  # makeLogRecord({}) and friends: no name
        if name == LOGGER or name.startswith(LOGGER + "."):
            _FILTER.filter(record)
        return record

    factory.dagops_redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
