"""The `[dagops]` settings, read lazily from Airflow's config with a documented defaults table.

Nothing here reads configuration at import time: Airflow's config is consulted on first use, so
importing dagops (in a plugin, a DAG file or a test) never freezes a value too early.
Every option can also be set as `AIRFLOW__DAGOPS__<OPTION>`.

Why a reader of our own: importing `airflow.configuration` costs about a second (it loads Airflow), which a
`dagops repos list` should not pay. Where Airflow is not loaded yet, `_FastReader` answers as Airflow's `conf`
would, with Airflow's precedence (`AIRFLOW__SECTION__KEY` env var > `airflow.cfg` > default, each value passed
through Airflow's `expand_env_var`), but only where it can be sure: a command or secrets-backend variant
(`_CMD`/`_SECRET` env var, `*_cmd`/`*_secret` key), a deprecated name, `[core] unit_test_mode`,
`[core] airflow_home` in the file or a file it cannot parse hand the question to Airflow's `conf`. Once Airflow
is loaded (the api-server, tasks, tests), its `conf` answers, so a value set in process is seen.
"""

from __future__ import annotations

import configparser
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from airflow_dagops.errors import InvalidInput


@dataclass(frozen=True)
class Option:
    default: str
    description: str
    type: str = "string"


# The single source of truth for options: provider metadata (`airflow config list`) and docs are
# generated from this table.
OPTIONS: dict[str, Option] = {
    "dagops_home": Option(
        "", "Where dagops keeps mirrors, releases, locks and caches. Empty means $AIRFLOW_HOME/dagops."
    ),
    "sql_alchemy_conn": Option(
        "",
        "SQLAlchemy URL of the dagops state DB. Empty means SQLite at <dagops_home>/dagops.db. "
        "Use PostgreSQL when several machines run dagops tasks.",
    ),
    "releases_to_keep": Option(
        "5", "Releases kept on disk per repository; the live and the pinned release are never pruned.", "integer"
    ),
    "git_timeout": Option("120", "Seconds before a git command (fetch, ls-remote) is abandoned.", "integer"),
    "lock_timeout": Option("600", "Seconds a sync waits for another sync of the same repository to finish.", "integer"),
    "default_poll_interval": Option(
        "60",
        "Seconds between checks of a repository for new commits, unless the repository sets its own.",
        "integer",
    ),
    "max_repo_size": Option(
        "536870912", "Largest total size in bytes of the files of one release (default 512 MiB).", "integer"
    ),
    "sense_concurrency": Option(
        "16", "How many repositories the sense step checks with git ls-remote at once.", "integer"
    ),
    "allowed_protocols": Option(
        "https:ssh:git:file",
        "Colon-separated git transports allowed (GIT_ALLOW_PROTOCOL). ext:: is never allowed.",
    ),
    "api_file_urls": Option(
        "False",
        "Let every REST API user with write permission register file:// repository URLs (and local paths), i.e. "
        "any git repository on the api-server's disk. False: only Airflow admins may, through the API; the CLI "
        "always may (file must also be in allowed_protocols).",
        "boolean",
    ),
    "validation_rules_file": Option(
        "", "YAML file with the operator's validation rules (disable, severity, exceptions, policy, mandatory)."
    ),
    "validation_cache": Option(
        "", "SQLite file caching per-file validation results. Empty means <dagops_home>/cache/validation.db."
    ),
    "import_timeout": Option(
        "", "Seconds one DAG file may take to import during validation. Empty means [core] dagbag_import_timeout."
    ),
    "import_memory_limit": Option(
        "1073741824", "Bytes of memory one DAG file may allocate while imported during validation (1 GiB).", "integer"
    ),
    "sandbox": Option(
        "strict",
        "How DAG files are imported during validation. strict: only inside the bubblewrap OS sandbox; where it "
        "cannot run, releases are blocked. degraded: without the OS sandbox (a scrubbed child process), logged "
        "and reported on every release. See docs/security.md.",
    ),
    "sandbox_keep_warm": Option(
        "60",
        "Seconds a validation sandbox (with Airflow imported) is kept after a validation, for the next validation "
        "of the same folder in the same process (a local edit loop). 0: never kept.",
        "integer",
    ),
    "validation_skip": Option(
        "",
        "Comma-separated validation steps to skip: security, compat, imports, structure, policy, dependencies. "
        "Syntax is always checked. Skipping structure means DAG files are never imported before they go live.",
    ),
    "sync_schedule": Option("* * * * *", "Cron schedule of the dagops_sync system DAG that polls repositories."),
    "webhook_secret_conn_id": Option(
        "dagops_webhook",
        "Airflow connection whose password is the webhook secret for repositories without their own.",
    ),
    "airflow_api_conn_id": Option(
        "dagops_airflow_api",
        "Airflow connection (host: the api-server's URL, login, password) through which promotion checks read "
        "DAG run outcomes from Airflow's REST API.",
    ),
    "test_concurrency": Option(
        "2", "Test modules of a repository's own tests run at the same time by `dagops sync`.", "integer"
    ),
    "test_timeout": Option("600", "Seconds one test module of a repository's own tests may run.", "integer"),
    "perf_regression_threshold": Option(
        "1.5",
        "A parse or task run time a release's tests measure regresses when it is more than this many times the live "
        "release's (and slower by more than perf_regression_floor). See docs/testing.md.",
        "float",
    ),
    "perf_regression_floor": Option(
        "0.2",
        "Seconds a measured parse or task run time must grow by before it can count as a regression (noise on fast "
        "things is ignored).",
        "float",
    ),
    "wheelhouse": Option(
        "",
        "Folder of wheels to build isolated_env virtual environments from, offline (no package index). Empty: "
        "uv's configured index.",
    ),
    "promotion_check_interval": Option(
        "120", "Seconds between runs of the dagops_promote system DAG, which checks soaking releases.", "integer"
    ),
    "marketplace_check_schedule": Option(
        "@daily",
        "Schedule of the dagops_marketplace_check system DAG, which refreshes the marketplace catalogs and "
        "validates every package to record its badge. Empty: triggered runs only.",
    ),
    "discovery_schedule": Option(
        "@hourly",
        "Schedule of the dagops_discover system DAG, which scans the organizations of dagops.yaml's `discovery:` "
        "block for matching repositories (docs/many-repositories.md). Empty: triggered runs only.",
    ),
    "events_interval": Option(
        "300",
        "Seconds between runs of the dagops_events system DAG, which records the outcomes of DAG runs of "
        "published DAGs in the event feed.",
        "integer",
    ),
    "proposal_committer_name": Option("dagops", "Author and committer name of the commits of proposals."),
    "proposal_committer_email": Option("dagops@localhost", "Author and committer e-mail of the commits of proposals."),
    "proposal_max_file_size": Option(
        "262144", "Largest file (bytes) a proposal may add or change (default 256 KiB).", "integer"
    ),
    "proposal_max_total_size": Option(
        "1048576", "Largest total size (bytes) of the files of one proposal (default 1 MiB).", "integer"
    ),
    "health_stale_factor": Option(
        "3",
        "A repository is stale when no check of its remote succeeded within this many poll intervals (its own, "
        "or at least the period of sync_schedule). See docs/operations.md.",
        "float",
    ),
    "health_failing_after": Option(
        "3",
        "A repository is failing after this many syncs in a row failed (1: the first failure). See docs/operations.md.",
        "integer",
    ),
    "publish_mode": Option(
        "bundle",
        "How releases reach Airflow. bundle (the default): the dagops-releases DAG bundle (added by `dagops init`), "
        "versioned by the set of live releases recorded in the state DB, so each DAG run keeps the release it started "
        "on, and the dag-processor and workers build what they lack from git: no shared volume. The namespace links "
        "stay in the dags folder, left out of the dags-folder bundle by its .airflowignore. symlinks: Airflow's "
        "unversioned dags-folder bundle reads those links (every Airflow process shares dagops_home). Switch with "
        "`dagops bundle migrate --to MODE`; see docs/deployment.md.",
    ),
    "metrics_token": Option(
        "",
        "A static token scrapers and probes may send as `Authorization: Bearer <token>` to read "
        "/pluginsv2/dagops/api/v1/metrics and /health without an Airflow login (read-only, nothing else). "
        "Empty: only Airflow logins. Set it as an environment variable rather than in airflow.cfg.",
    ),
}

SECTION = "dagops"

# Settings of Airflow's own sections dagops reads, with Airflow's default (config.yml; None: no default) and the
# deprecated (section, key) Airflow still reads them from. tests/test_settings.py holds these to Airflow's.
AIRFLOW_OPTIONS: dict[tuple[str, str], tuple[str | None, tuple[str, str] | None]] = {
    ("core", "dags_folder"): ("{AIRFLOW_HOME}/dags", None),
    ("api", "base_url"): (None, ("webserver", "base_url")),
    # Where Airflow looks connections up (airflow/connections.py `has_password`).
    ("database", "sql_alchemy_conn"): ("sqlite:///{AIRFLOW_HOME}/airflow.db", ("core", "sql_alchemy_conn")),
    ("secrets", "backend"): ("", None),
    ("core", "multi_team"): ("False", None),
}


def get(option: str) -> str:
    """Return one `[dagops]` option as a string, falling back to the defaults table."""
    default = OPTIONS[option].default
    value = airflow_setting(SECTION, option, default)
    return default if value is None else value


def airflow_setting(section: str, key: str, fallback: str | None = None) -> str | None:
    """One setting of Airflow's config, as `conf.get(section, key, fallback=fallback)` answers it, without
    loading Airflow where the fast reader is sure of the answer (see the module's docstring)."""
    if "airflow.configuration" not in sys.modules:
        try:
            return _FastReader().get(section, key, fallback)
        except _Unsure:
            pass
    try:
        from airflow.configuration import conf
    except ImportError:  # pragma: no cover - Airflow is a hard dependency; keep the core importable
        return fallback
    return conf.get(section, key, fallback=fallback)


class _Unsure(Exception):
    """The fast reader cannot be sure it would answer as Airflow does: ask Airflow."""


def expand_env_var(value: str) -> str:
    """Airflow's `expand_env_var`: `$VARS` and `~` expanded until nothing changes."""
    while True:
        expanded = os.path.expanduser(os.path.expandvars(value))
        if expanded == value:
            return expanded
        value = expanded


def airflow_config_file() -> Path:
    """Where Airflow reads airflow.cfg from: `$AIRFLOW_CONFIG`, else `$AIRFLOW_HOME/airflow.cfg`."""
    explicit = os.environ.get("AIRFLOW_CONFIG")
    if explicit is not None:
        return Path(expand_env_var(explicit))
    return Path(expand_env_var(os.environ.get("AIRFLOW_HOME", "~/airflow"))) / "airflow.cfg"


_parsed_files: dict[tuple[str, int, int], configparser.ConfigParser] = {}


class _FastReader:
    """Airflow's lookup order for one setting, over os.environ and airflow.cfg read with configparser (the
    class Airflow's parser extends, with the same interpolation), for the settings it knows."""

    def __init__(self) -> None:
        self.file = self._parse(airflow_config_file())
        if self._unit_test_mode():
            raise _Unsure("unit test mode loads Airflow's test config")
        if self.file.has_option("core", "airflow_home"):
            raise _Unsure("[core] airflow_home in airflow.cfg changes Airflow's home")

    def get(self, section: str, key: str, fallback: str | None) -> str | None:
        default, deprecated = self._known(section, key)
        self._refuse_what_only_airflow_resolves(section, key, deprecated)
        env_name = _env_name(section, key)
        if env_name in os.environ:
            return expand_env_var(os.environ[env_name])
        if self.file.has_option(section, key):
            try:
                return expand_env_var(self.file.get(section, key))
            except configparser.Error as error:  # a bad %-interpolation: Airflow raises its own error
                raise _Unsure(str(error)) from error
        if default is None:  # Airflow's defaults step answers the caller's fallback, expanded
            return fallback if fallback is None else expand_env_var(fallback)
        home = _airflow_home_of_defaults()
        if "%" in home:  # Airflow's defaults parser would read it as %-interpolation
            raise _Unsure("AIRFLOW_HOME holds a %")
        return expand_env_var(default.replace("{AIRFLOW_HOME}", home))

    def _refuse_what_only_airflow_resolves(self, section: str, key: str, deprecated: tuple[str, str] | None) -> None:
        """Commands and secrets-backend paths (Airflow runs or resolves them for sensitive options) and a
        deprecated name in use (Airflow warns and picks): Airflow answers those."""
        for place, name in [(section, key), *([deprecated] if deprecated else [])]:
            variants = {f"{_env_name(place, name)}_CMD", f"{_env_name(place, name)}_SECRET"}
            if variants & os.environ.keys() or any(
                self.file.has_option(place, f"{name}{suffix}") for suffix in ("_cmd", "_secret")
            ):
                raise _Unsure(f"[{place}] {name} comes from a command or a secrets backend")
        if deprecated and (_env_name(*deprecated) in os.environ or self.file.has_option(*deprecated)):
            raise _Unsure(f"[{deprecated[0]}] {deprecated[1]} is deprecated; Airflow decides which name wins")

    def _unit_test_mode(self) -> bool:
        """Whether `[core] unit_test_mode` may be on (Airflow's default airflow.cfg holds `= False`); anything but
        a plain false counts as on."""
        name = _env_name("core", "unit_test_mode")
        if name in os.environ:
            raw = expand_env_var(os.environ[name])
        elif self.file.has_option("core", "unit_test_mode"):
            raw = self.file.get("core", "unit_test_mode", raw=True)
        else:
            return False
        return raw.lower().split("#")[0].strip() not in ("f", "false", "0")

    @staticmethod
    def _known(section: str, key: str) -> tuple[str | None, tuple[str, str] | None]:
        if section == SECTION:
            return None, None  # no default of Airflow's own: conf answers the caller's fallback
        if (section, key) not in AIRFLOW_OPTIONS:
            raise _Unsure(f"[{section}] {key} is not a setting the fast reader knows")
        return AIRFLOW_OPTIONS[(section, key)]

    @staticmethod
    def _parse(path: Path) -> configparser.ConfigParser:
        """airflow.cfg as Airflow's parser reads it (a missing file reads as empty); parsed once per version."""
        try:
            stat = path.stat()
        except FileNotFoundError:
            return configparser.ConfigParser()
        except OSError as error:
            raise _Unsure(str(error)) from error
        key = (str(path), stat.st_mtime_ns, stat.st_size)
        parser = _parsed_files.get(key)
        if parser is None:
            parser = configparser.ConfigParser()
            try:
                parser.read(path)
            except (configparser.Error, OSError, UnicodeDecodeError) as error:
                raise _Unsure(f"{path}: {error}") from error
            _parsed_files.clear()
            _parsed_files[key] = parser
        return parser


def _env_name(section: str, key: str) -> str:
    return f"AIRFLOW__{section.replace('.', '_').upper()}__{key.upper()}"


def _airflow_home_of_defaults() -> str:
    """The `{AIRFLOW_HOME}` Airflow formats its defaults with (its module-level AIRFLOW_HOME)."""
    return expand_env_var(os.environ.get("AIRFLOW_HOME", "~/airflow"))


def get_int(option: str) -> int:
    raw = get(option)
    try:
        return int(raw)
    except ValueError as err:
        raise InvalidInput(f"[dagops] {option} must be an integer, got {raw!r}") from err


def get_bool(option: str) -> bool:
    raw = get(option).strip().lower()
    if raw in ("true", "1", "yes", "on"):
        return True
    if raw in ("false", "0", "no", "off", ""):
        return False
    raise InvalidInput(f"[dagops] {option} must be True or False, got {raw!r}")


def airflow_home() -> Path:
    return Path(expand_env_var(os.environ.get("AIRFLOW_HOME") or "~/airflow"))


def dagops_home() -> Path:
    return Path(get("dagops_home") or airflow_home() / "dagops").expanduser()


def sql_alchemy_conn() -> str:
    return get("sql_alchemy_conn") or f"sqlite:///{dagops_home() / 'dagops.db'}"


def dags_folder() -> Path:
    """Airflow's `[core] dags_folder`: where namespace links are published."""
    return Path(airflow_setting("core", "dags_folder") or airflow_home() / "dags").expanduser()


def public_base_url() -> str:
    """Airflow's `[api] base_url` without its trailing slash; empty when it is not set."""
    return (airflow_setting("api", "base_url", "") or "").rstrip("/")


def allowed_protocols() -> list[str]:
    return [p for p in get("allowed_protocols").split(":") if p and p != "ext"]
