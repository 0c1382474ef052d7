"""The `[dagops]` settings, read lazily from Airflow's config with a documented defaults table.

Nothing here reads configuration at import time: Airflow's config is consulted on first use, so
importing dagops (in a plugin, a DAG file or a test) never freezes a value too early.
Every option can also be set as `AIRFLOW__DAGOPS__<OPTION>`.
"""

from __future__ import annotations

import os
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
}

SECTION = "dagops"


def get(option: str) -> str:
    """Return one `[dagops]` option as a string, falling back to the defaults table."""
    default = OPTIONS[option].default
    env_value = os.environ.get(f"AIRFLOW__DAGOPS__{option.upper()}")
    if env_value is not None:
        return env_value
    try:
        from airflow.configuration import conf
    except ImportError:  # pragma: no cover - Airflow is a hard dependency; keep the core importable
        return default
    return conf.get(SECTION, option, fallback=default)


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
    return Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow")


def dagops_home() -> Path:
    return Path(get("dagops_home") or airflow_home() / "dagops").expanduser()


def sql_alchemy_conn() -> str:
    return get("sql_alchemy_conn") or f"sqlite:///{dagops_home() / 'dagops.db'}"


def dags_folder() -> Path:
    """Airflow's `[core] dags_folder`: where namespace links are published."""
    env_value = os.environ.get("AIRFLOW__CORE__DAGS_FOLDER")
    if env_value:
        return Path(env_value).expanduser()
    from airflow.configuration import conf

    return Path(conf.get("core", "dags_folder")).expanduser()


def allowed_protocols() -> list[str]:
    return [p for p in get("allowed_protocols").split(":") if p and p != "ext"]
