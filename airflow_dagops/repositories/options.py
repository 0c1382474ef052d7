"""Every option a repository has, described once: name, Python type, default, JSON schema, help text, whether it
can change after registration, which Airflow right the REST API asks for before it is set, and its check.

The faces are derived from `OPTIONS`, so a new option reaches all of them at once and a bad value gives the same
message everywhere and changes nothing: the registry's cleaning (registry.add_repository / update_repository),
the REST API's request and response schemas (api/openapi.py) and its serializer (api/blueprint.py), the flags of
`dagops repos add` and `dagops repos update` (cli/main.py), and the keys of dagops.yaml (declarative.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from airflow_dagops import settings
from airflow_dagops.alerts import rules as alert_rules
from airflow_dagops.errors import InvalidInput
from airflow_dagops.safety import (
    MAX_CONN_ID,
    MAX_REF,
    MAX_SUBDIR,
    MAX_URL,
    validate_conn_id,
    validate_name,
    validate_ref,
    validate_subdir,
    validate_url,
)
from airflow_dagops.store.values import DEFAULT_ON_CONFLICT, ON_CONFLICT

# skip_files: the release goes live without the files whose dag_ids a higher-priority repository owns.
# block: such a release does not go live at all.
# The DAG-level permissions Airflow's FAB auth manager knows (DAG.access_control).
DAG_PERMISSIONS = ("can_read", "can_edit", "can_delete")
MAX_STAGES = 5
MAX_PRIORITY = 1_000_000
MAX_POLL_INTERVAL = 365 * 24 * 3600
# safety.NAME_PATTERN as JSON schema writes it: names and namespaces become folder names.
NAME_SCHEMA = {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,62}$"}


@dataclass(frozen=True)
class RepositoryOption:
    """One repository option, as every face offers it (see the module docstring for who derives what)."""

    name: str
    kind: type  # the Python type of a set value: str, int, bool or dict
    default: Any  # what a new repository gets, and what null (None) puts an option back to
    schema: dict  # JSON schema of a value, without its description (that is `help`)
    help: str  # one sentence for the CLI's --help, the OpenAPI description and the docs
    check: Callable[[Any], Any]  # raises InvalidInput, or returns the value to store
    example: Any  # a valid value (tests walk the description with it; docs show it)
    updatable: bool = True  # false: fixed at registration (remove and add again to change it)
    needs: str | None = None  # the REST API's extra right (api/auth.py ACTIONS) to give it a non-empty value
    argument: bool = False  # `dagops repos add NAME URL`: a positional argument there, a flag elsewhere
    metavar: str | None = None  # CLI: how its text form looks
    text_hint: str = ""  # CLI: the text form in words, appended to `help`
    from_text: Callable[[Any], Any] | None = None  # CLI text -> value (mappings); None: typer converts `kind`
    to_text: Callable[[Any], str] | None = None  # value -> the words `dagops repos show` prints
    repeatable: bool = False  # CLI: the flag may be given several times (a list of texts)

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def clean(self, value: Any) -> Any:
        """The value to store; None (JSON null, a key left out) means the default."""
        return self.check(self.default if value is None else value)

    def json_schema(self) -> dict:
        """The option in OpenAPI: its schema and help, with its default and example (the page's form shows them)."""
        schema = {**self.schema, "description": self.help}
        if self.default is not None:
            schema["default"] = self.default
        if self.example is not None:
            schema["examples"] = [self.example]
        return schema

    def text(self, value: Any) -> str:
        if self.to_text is not None:
            return self.to_text(value)
        return "-" if value is None else str(value)


# -- checks --------------------------------------------------------------------------------------------------
def validate_url_option(value: Any) -> str:
    text = value.strip() if isinstance(value, str) else value
    return validate_url(text, allowed_protocols=settings.allowed_protocols())


def validate_namespace(value: Any) -> str | None:
    """None until registration fills in the repository's name."""
    return None if value is None else validate_name(value, what="namespace")


def validate_priority(value: Any) -> int:
    """Lower numbers win dag_id clashes (1 beats 100), as in dagops.yaml's examples."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_PRIORITY:
        raise InvalidInput(f"priority must be a whole number from 0 to {MAX_PRIORITY} (lower wins), got {value!r}")
    return value


def validate_poll_interval(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInput(f"poll interval must be a positive number of seconds, got {value}")
    return value


def _boolean(name: str) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        if not isinstance(value, bool):
            raise InvalidInput(f"{name} must be true or false, got {value!r}")
        return value

    return check


def validate_on_conflict(value: Any) -> str:
    """One of ON_CONFLICT; nothing (None, "") is the default, so null puts it back."""
    if value in (None, ""):
        return DEFAULT_ON_CONFLICT
    if value not in ON_CONFLICT:
        raise InvalidInput(f"on_conflict must be one of {', '.join(ON_CONFLICT)}, got {value!r}")
    return value


def validate_access_control(value: Any) -> dict[str, list[str]] | None:
    """`{role: [permission, ...]}` as DAG.access_control takes it; None or {} means Airflow's defaults."""
    if value in (None, {}):
        return None
    if not isinstance(value, dict):
        raise InvalidInput("access_control must map role names to lists of permissions, e.g. {data-eng: [can_read]}")
    clean: dict[str, list[str]] = {}
    for role, permissions in value.items():
        if not isinstance(role, str) or not role.strip() or len(role) > 64:
            raise InvalidInput(f"access_control: {role!r} is not a role name (1-64 characters)")
        if isinstance(permissions, str):
            permissions = [permissions]
        if not isinstance(permissions, list) or not permissions:
            raise InvalidInput(f"access_control: role {role!r} needs a list of permissions from {DAG_PERMISSIONS}")
        unknown = [p for p in permissions if p not in DAG_PERMISSIONS]
        if unknown:
            raise InvalidInput(
                f"access_control: role {role!r}: unknown permission {unknown[0]!r}; one of {', '.join(DAG_PERMISSIONS)}"
            )
        clean[role.strip()] = sorted(set(permissions))
    return clean


def validate_promotion(value: Any) -> dict | None:
    """`{stages: [staging, prod], soak_runs: 3}`: the last stage is the repository's own namespace; a new
    release goes live in the earlier ones first. soak_runs 0 means promotion by hand only."""
    if value in (None, {}):
        return None
    if not isinstance(value, dict):
        raise InvalidInput("promotion must be a mapping like {stages: [staging, prod], soak_runs: 3}")
    unknown = set(value) - {"stages", "soak_runs"}
    if unknown:
        raise InvalidInput(f"promotion: unknown key {sorted(unknown)[0]!r} (known: soak_runs, stages)")
    stages = value.get("stages")
    if not isinstance(stages, list) or not 2 <= len(stages) <= MAX_STAGES:
        raise InvalidInput(f"promotion: stages must list 2 to {MAX_STAGES} stage names, e.g. [staging, prod]")
    clean_stages = [validate_name(str(stage), what="promotion stage") for stage in stages]
    if len(set(clean_stages)) != len(clean_stages):
        raise InvalidInput("promotion: stage names must be unique")
    soak_runs = value.get("soak_runs", 1)
    if isinstance(soak_runs, bool) or not isinstance(soak_runs, int) or not 0 <= soak_runs <= 1000:
        raise InvalidInput(f"promotion: soak_runs must be a whole number from 0 to 1000, got {soak_runs!r}")
    return {"stages": clean_stages, "soak_runs": soak_runs}


# -- text forms (CLI flags and `dagops repos show`) ----------------------------------------------------------
def access_control_from_text(entries: list[str]) -> dict[str, list[str]]:
    """`["data-eng=can_read,can_edit", "viewers=can_read"]` -> {role: [permissions]}; `["none"]` -> {} (Airflow's
    defaults). The values are checked by validate_access_control, as for every face."""
    if [entry.strip().lower() for entry in entries] == ["none"]:
        return {}
    mapping: dict[str, list[str]] = {}
    for entry in entries:
        role, separator, permissions = entry.partition("=")
        if not separator or not role.strip() or not permissions.strip():
            raise InvalidInput(
                f"--access-control takes ROLE=PERMISSION[,PERMISSION...], e.g. data-eng=can_read,can_edit; "
                f"got {entry!r}"
            )
        mapping.setdefault(role.strip(), []).extend(p.strip() for p in permissions.split(",") if p.strip())
    return mapping


def access_control_to_text(value: dict | None) -> str:
    if not value:
        return "none (Airflow's defaults)"
    return "; ".join(f"{role}={','.join(permissions)}" for role, permissions in value.items())


def promotion_from_text(text: str) -> dict:
    """`staging,prod:3` -> {stages: [staging, prod], soak_runs: 3}; `none` -> {} (no promotion)."""
    if text.strip().lower() in ("", "none"):
        return {}
    stages, _separator, soak_runs = text.partition(":")
    value: dict = {"stages": [stage.strip() for stage in stages.split(",") if stage.strip()]}
    if soak_runs.strip():
        if not soak_runs.strip().isdigit():
            raise InvalidInput(f"--promotion takes STAGE,STAGE[,...][:SOAK_RUNS], e.g. staging,prod:3; got {text!r}")
        value["soak_runs"] = int(soak_runs)
    return value


def promotion_to_text(value: dict | None) -> str:
    if not value:
        return "none"
    return f"stages {' → '.join(value['stages'])}, soak_runs {value['soak_runs']}"


# -- the description -----------------------------------------------------------------------------------------
_NULLABLE_STRING = {"type": ["string", "null"]}
OPTIONS: tuple[RepositoryOption, ...] = (
    RepositoryOption(
        "url",
        str,
        None,
        {"type": "string", "minLength": 1, "maxLength": MAX_URL},
        "Git URL (https, ssh, git or file, as [dagops] allowed_protocols allows); no credentials in it: use conn_id.",
        validate_url_option,
        "https://github.com/acme/dags.git",
        argument=True,
    ),
    RepositoryOption(
        "ref",
        str,
        "main",
        {"type": "string", "minLength": 1, "maxLength": MAX_REF},
        "Branch, tag or commit to follow.",
        validate_ref,
        "main",
    ),
    RepositoryOption(
        "namespace",
        str,
        None,
        NAME_SCHEMA,
        "Folder of the dags folder it publishes into (default: the repository's name); fixed once registered.",
        validate_namespace,
        "analytics",
        updatable=False,
    ),
    RepositoryOption(
        "conn_id",
        str,
        None,
        {**_NULLABLE_STRING, "maxLength": MAX_CONN_ID},
        "Airflow connection (type git) with the credentials; choosing one attaches it to the URL.",
        validate_conn_id,
        "git_analytics",
        needs="connections",
    ),
    RepositoryOption(
        "subdir",
        str,
        None,
        {**_NULLABLE_STRING, "maxLength": MAX_SUBDIR},
        "Publish only this folder of the repository (default: all of it).",
        validate_subdir,
        "dags",
    ),
    RepositoryOption(
        "priority",
        int,
        100,
        {"type": "integer", "minimum": 0, "maximum": MAX_PRIORITY},
        "Lower wins when two repositories define one dag_id (0 to 1000000).",
        validate_priority,
        10,
    ),
    RepositoryOption(
        "poll_interval",
        int,
        None,
        {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_POLL_INTERVAL},
        "Seconds between checks for new commits (default: [dagops] default_poll_interval).",
        validate_poll_interval,
        120,
    ),
    RepositoryOption(
        "enabled",
        bool,
        True,
        {"type": "boolean"},
        "Whether scheduled checks sync it (manual syncs always work).",
        _boolean("enabled"),
        False,
    ),
    RepositoryOption(
        "webhook_conn_id",
        str,
        None,
        {**_NULLABLE_STRING, "maxLength": MAX_CONN_ID},
        "Airflow connection whose password is this repository's own webhook secret.",
        validate_conn_id,
        "hook_analytics",
        needs="connections",
    ),
    RepositoryOption(
        "on_conflict",
        str,
        DEFAULT_ON_CONFLICT,
        {"type": ["string", "null"], "enum": [*ON_CONFLICT, None]},
        "When a higher-priority repository owns one of its dag_ids: publish without that file "
        "(skip_files, the default) or do not publish the release (block).",
        validate_on_conflict,
        "block",
        metavar="|".join(ON_CONFLICT),
    ),
    RepositoryOption(
        "access_control",
        dict,
        None,
        {
            "type": ["object", "null"],
            "maxProperties": 100,
            "propertyNames": {"minLength": 1, "maxLength": 64},
            "additionalProperties": {
                "type": "array",
                "minItems": 1,
                "uniqueItems": True,
                "items": {"type": "string", "enum": list(DAG_PERMISSIONS)},
            },
        },
        "FAB auth manager: roles and the DAG permissions (can_read, can_edit, can_delete) they get on every DAG "
        "of the namespace; none: Airflow's defaults.",
        validate_access_control,
        {"data-eng": ["can_read", "can_edit"]},
        metavar="ROLE=PERM,PERM",
        text_hint="Repeat for more roles; 'none' clears.",
        from_text=access_control_from_text,
        to_text=access_control_to_text,
        repeatable=True,
    ),
    RepositoryOption(
        "promotion",
        dict,
        None,
        {
            "type": ["object", "null"],
            "additionalProperties": False,
            "required": ["stages"],
            "properties": {
                "stages": {"type": "array", "minItems": 2, "maxItems": MAX_STAGES, "items": NAME_SCHEMA},
                "soak_runs": {"type": "integer", "minimum": 0, "maximum": 1000, "default": 1},
            },
        },
        f"Safe rollout: a new release goes live in the earlier stages first (2 to {MAX_STAGES} stages, the last "
        "being the repository's own namespace; soak_runs 0 to 1000, default 1); none: straight to live.",
        validate_promotion,
        {"stages": ["staging", "prod"], "soak_runs": 3},
        metavar="STAGE,STAGE[:SOAK_RUNS]",
        text_hint="E.g. staging,prod:3; 'none' clears.",
        from_text=promotion_from_text,
        to_text=promotion_to_text,
    ),
    RepositoryOption(
        "isolated_env",
        bool,
        False,
        {"type": "boolean"},
        "Install its declared requirements into a virtual environment of its own (docs/testing.md); through the "
        "REST API only an Airflow admin may turn it on.",
        _boolean("isolated_env"),
        True,
        needs="admin",
    ),
    RepositoryOption(
        "alerts",
        dict,
        None,
        alert_rules.ALERTS_SCHEMA,
        "Airflow notifiers told when it starts failing, a pushed commit fails validation, it recovers or a release "
        "is rolled back automatically: {notifiers: [{webhook: {conn_id: C}} or {notifier: <BaseNotifier path>, "
        "kwargs: {...}}], events: [...]} (docs/operations.md); none: no alerts. Through the REST API only an "
        "Airflow admin may set it.",
        alert_rules.validate_alerts,
        {"events": ["failing", "recovered"], "notifiers": [{"webhook": {"conn_id": "ops_webhook"}}]},
        needs="admin",
        metavar="webhook:CONN_ID|JSON",
        text_hint="JSON or YAML of the option, webhook:CONN_ID for one webhook; 'none' clears.",
        from_text=alert_rules.alerts_from_text,
        to_text=alert_rules.alerts_to_text,
    ),
    RepositoryOption(
        "auto_rollback",
        dict,
        None,
        alert_rules.AUTO_ROLLBACK_SCHEMA,
        "Roll a release that went live by itself back (and pin) when more than max_failure_rate of its first "
        "min_runs DAG runs failed, e.g. {max_failure_rate: 0.5, min_runs: 3}; none: never.",
        alert_rules.validate_auto_rollback,
        {"max_failure_rate": 0.5, "min_runs": 3},
        metavar="RATE[:MIN_RUNS]",
        text_hint="E.g. 0.5:3; 'none' clears.",
        from_text=alert_rules.auto_rollback_from_text,
        to_text=alert_rules.auto_rollback_to_text,
    ),
)
BY_NAME = {option.name: option for option in OPTIONS}
UPDATABLE = tuple(option.name for option in OPTIONS if option.updatable)


# -- what the registry derives ---------------------------------------------------------------------------------
def clean_new(values: dict) -> dict:
    """Every option of a repository being registered, checked, defaults filled in; unknown keys are refused."""
    unknown = sorted(set(values) - set(BY_NAME))
    if unknown:
        raise InvalidInput(f"unknown repository option {', '.join(unknown)}; known: {', '.join(BY_NAME)}")
    return {option.name: option.clean(values.get(option.name)) for option in OPTIONS}


def clean_changes(changes: dict) -> dict:
    """Only the given options, checked; options that cannot change (or do not exist) are refused."""
    unknown = sorted(set(changes) - set(UPDATABLE))
    if unknown:
        raise InvalidInput(f"cannot change {', '.join(unknown)}; changeable: {', '.join(UPDATABLE)}")
    return {key: BY_NAME[key].clean(value) for key, value in changes.items()}


def set_needing(permission: str, values: dict) -> list[str]:
    """The options in `values` given a non-empty value that, through the REST API, need `permission`."""
    return [o.name for o in OPTIONS if o.needs == permission and values.get(o.name) not in (None, False, "", {})]
