"""`dagops.yaml`: the repository registry as a file, applied like a terraform plan.

    repositories:
      - name: company-workflows
        url: https://github.com/company/workflows
        branch: main
        priority: 1
        namespace: company

Three steps, each usable on its own: `load` (YAML + JSON schema + name rules, every problem with its
line and key), `plan` (compare with the registry: add / change / remove), `apply` (call the same
services the CLI, REST API and page use). Bad input changes nothing: the whole file is checked and the
whole plan is made (and, with `verify`, every new remote is reached) before the first change.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import jsonschema
import yaml

from airflow_dagops import paths, settings
from airflow_dagops.errors import DagOpsError, InvalidInput
from airflow_dagops.git.credentials import attaching, url_origin
from airflow_dagops.git.mirror import Mirror
from airflow_dagops.releases import rollback as rollbacks
from airflow_dagops.releases.rollback import get_release, list_releases, unpin
from airflow_dagops.repositories import options as repo_options
from airflow_dagops.repositories.info import RepositoryInfo, list_repositories
from airflow_dagops.repositories.registry import (
    UPDATABLE,
    add_repository,
    remove_repository,
    update_repository,
    validate_conn_id,
)
from airflow_dagops.safety import display_url, validate_name, validate_ref, validate_subdir, validate_url

log = logging.getLogger(__name__)

ACTOR = "dagops.yaml"
DEFAULTS = {"ref": "main", "priority": 100, "conn_id": None, "subdir": None, "poll_interval": None, "enabled": True}
# Keys the issue lists that dagops.yaml does not carry yet: refused with a pointer, never silently ignored.
UNSUPPORTED = {
    "on_invalid": "not supported yet in dagops.yaml; put it in the repository's .dagops.yaml",
    "rules": "not supported yet in dagops.yaml; put it in the repository's .dagops.yaml",
}
_NULLABLE_STR = {"type": ["string", "null"]}
SCHEMA = {
    "type": "object",
    "required": ["repositories"],
    "additionalProperties": False,
    "properties": {
        "repositories": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "url"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string"},
                    "url": {"type": "string"},
                    "branch": {"type": "string"},
                    "ref": {"type": "string"},
                    "priority": {"type": "integer"},
                    "namespace": {"type": "string"},
                    "conn_id": _NULLABLE_STR,
                    "subdir": _NULLABLE_STR,
                    "poll_interval": {"type": ["integer", "null"], "minimum": 1},
                    "enabled": {"type": "boolean"},
                    "webhook_conn_id": _NULLABLE_STR,
                    "pin": {"type": ["boolean", "integer", "string"]},
                    "on_conflict": {"enum": list(repo_options.ON_CONFLICT)},
                    "isolated_env": {"type": "boolean"},
                    "access_control": {
                        "type": ["object", "null"],
                        "additionalProperties": {
                            "type": "array",
                            "items": {"enum": list(repo_options.DAG_PERMISSIONS)},
                            "minItems": 1,
                        },
                    },
                    "promotion": {
                        "type": ["object", "null"],
                        "additionalProperties": False,
                        "required": ["stages"],
                        "properties": {
                            "stages": {"type": "array", "items": {"type": "string"}, "minItems": 2},
                            "soak_runs": {"type": "integer", "minimum": 0},
                        },
                    },
                },
            },
        }
    },
}
KNOWN_KEYS = set(SCHEMA["properties"]["repositories"]["items"]["properties"])


class ConfigInvalid(InvalidInput):
    """dagops.yaml cannot be used; `problems` lists every one, each as `file:line: key: message`."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems), details={"problems": problems})
        self.problems = problems


# -- load -------------------------------------------------------------------------------------------------
@dataclass
class RepoSpec:
    name: str
    url: str
    namespace: str
    ref: str = "main"
    priority: int = 100
    conn_id: str | None = None
    subdir: str | None = None
    poll_interval: int | None = None
    enabled: bool = True
    webhook_conn_id: str | None = None
    pin: bool | int | str | None = None  # None: not managed; False: unpinned; True: pin what is live
    on_conflict: str = repo_options.DEFAULT_ON_CONFLICT
    access_control: dict | None = None
    promotion: dict | None = None
    isolated_env: bool = False
    line: int = 0


@dataclass
class Config:
    source: str
    repositories: list[RepoSpec]


def load(path: str | Path) -> Config:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InvalidInput(f"cannot read {path}: {err}") from err
    return parse(text, source=str(path))


def parse(text: str, *, source: str = "dagops.yaml") -> Config:
    """Check the whole file and raise ConfigInvalid listing every problem, or return the wanted registry."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        raise ConfigInvalid([f"{source}:{line}: not valid YAML: {getattr(err, 'problem', None) or err}"]) from None
    lines: dict[tuple, int] = {}
    problems: list[tuple[int, str]] = []
    if node is not None:
        _index_lines(node, (), lines, problems)
    if data is None:
        data = {}

    def where(path: tuple) -> int:
        while path and path not in lines:
            path = path[:-1]
        return lines.get(path, 1)

    def problem(path: tuple, message: str) -> None:
        label = _label(path)
        problems.append((where(path), f"{label}: {message}" if label else message))

    _check_keys(data, problem)
    validator = jsonschema.Draft202012Validator(SCHEMA)
    for error in validator.iter_errors(data):
        if error.validator == "additionalProperties":
            continue  # reported per key by _check_keys, with the key's own line
        problem(tuple(error.absolute_path), error.message)
    if not problems:
        specs = _specs(data, problem, where)
    if problems:
        problems.sort(key=lambda p: p[0])
        raise ConfigInvalid([f"{source}:{line}: {message}" for line, message in _unique(problems)])
    return Config(source=source, repositories=specs)


def _index_lines(node, path: tuple, lines: dict, problems: list) -> None:
    """The line of every key and list item, and YAML's silently-last-wins duplicate keys as problems."""
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen = set()
        for key, value in node.value:
            name = key.value
            child = (*path, name)
            if name in seen:
                problems.append((key.start_mark.line + 1, f"{_label(child)}: duplicate key"))
            seen.add(name)
            lines[child] = key.start_mark.line + 1
            _index_lines(value, child, lines, problems)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _index_lines(item, (*path, index), lines, problems)


def _label(path: tuple) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _unique(items: list) -> list:
    return list(dict.fromkeys(items))


def _check_keys(data, problem) -> None:
    if not isinstance(data, dict):
        return
    for key in data:
        if key != "repositories":
            problem((key,), "is not a known key (known: repositories)")
    repos = data.get("repositories")
    if not isinstance(repos, list):
        return
    for index, item in enumerate(repos):
        if not isinstance(item, dict):
            continue
        for key in item:
            if key in UNSUPPORTED:
                problem(("repositories", index, key), UNSUPPORTED[key])
            elif key not in KNOWN_KEYS:
                problem(("repositories", index, key), f"is not a known key (known: {', '.join(sorted(KNOWN_KEYS))})")


def _specs(data: dict, problem, where) -> list[RepoSpec]:
    """Schema-valid data to specs, checking what a schema cannot: names, URLs, refs, duplicates."""
    specs: list[RepoSpec] = []
    names: dict[str, int] = {}
    namespaces: dict[str, int] = {}
    for index, item in enumerate(data.get("repositories") or []):
        at = ("repositories", index)
        if "branch" in item and "ref" in item:
            problem((*at, "ref"), "give either branch or ref, not both")
        checks = {
            "name": lambda v: validate_name(v, what="repository name"),
            "namespace": lambda v: validate_name(v, what="namespace"),
            "url": lambda v: validate_url(v.strip(), allowed_protocols=settings.allowed_protocols()),
            "branch": validate_ref,
            "ref": validate_ref,
            "subdir": validate_subdir,
            "conn_id": validate_conn_id,
            "webhook_conn_id": validate_conn_id,
            "access_control": repo_options.validate_access_control,
            "promotion": repo_options.validate_promotion,
        }
        clean = dict(item)
        for key, check in checks.items():
            if item.get(key) is not None:
                try:
                    clean[key] = check(item[key])
                except DagOpsError as err:
                    problem((*at, key), str(err))
        name, namespace = item["name"], item.get("namespace") or item["name"]
        if name in names:
            problem((*at, "name"), f"duplicate name {name!r} (also at line {names[name]})")
        if namespace in namespaces:
            key = "namespace" if "namespace" in item else "name"
            problem((*at, key), f"duplicate namespace {namespace!r} (also at line {namespaces[namespace]})")
        names.setdefault(name, where((*at, "name")))
        namespaces.setdefault(namespace, where((*at, "namespace" if "namespace" in item else "name")))
        pin = item.get("pin")
        if isinstance(pin, str) and not _looks_like_release(pin):
            problem((*at, "pin"), f"{pin!r} is neither a release id nor a commit sha (7+ hex digits)")
        specs.append(
            RepoSpec(
                name=name,
                url=clean["url"],
                namespace=namespace,
                ref=clean.get("branch") or clean.get("ref") or DEFAULTS["ref"],
                priority=item.get("priority", DEFAULTS["priority"]),
                conn_id=clean.get("conn_id"),
                subdir=clean.get("subdir"),
                poll_interval=item.get("poll_interval"),
                enabled=item.get("enabled", True),
                webhook_conn_id=clean.get("webhook_conn_id"),
                pin=pin,
                on_conflict=item.get("on_conflict") or repo_options.DEFAULT_ON_CONFLICT,
                access_control=clean.get("access_control"),
                promotion=clean.get("promotion"),
                isolated_env=item.get("isolated_env", False),
                line=where(at),
            )
        )
    return specs


def _looks_like_release(value: str) -> bool:
    text = value.strip().lower()
    return text.isdigit() or (len(text) >= 7 and all(c in "0123456789abcdef" for c in text))


# -- plan -------------------------------------------------------------------------------------------------
@dataclass
class Change:
    field: str
    old: object
    new: object

    def __str__(self) -> str:
        return f"{self.field} {_show(self.old)} → {_show(self.new)}"


@dataclass
class Action:
    kind: str  # add / change / remove
    name: str
    changes: list[Change] = field(default_factory=list)
    spec: RepoSpec | None = None
    note: str | None = None

    def __str__(self) -> str:
        if self.kind == "add":
            text = f"+ {self.name} ({display_url(self.spec.url)} @ {self.spec.ref}, namespace {self.spec.namespace})"
        elif self.kind == "remove":
            text = f"- {self.name} (its DAGs leave the dags folder)"
        else:
            text = f"~ {self.name}: {', '.join(str(c) for c in self.changes)}"
        return f"{text}  [{self.note}]" if self.note else text


@dataclass
class Plan:
    actions: list[Action] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # registered, not in the file, not pruned
    source: str = "dagops.yaml"

    @property
    def empty(self) -> bool:
        return not self.actions

    def count(self, kind: str) -> int:
        return sum(1 for a in self.actions if a.kind == kind)

    def lines(self) -> list[str]:
        out = [str(a) for a in self.actions]
        out += [f"  {name}: not in {self.source}, kept (use --prune to remove it)" for name in self.kept]
        if self.empty:
            out.append(f"No changes: the registry matches {self.source}.")
        else:
            out.append(
                f"Plan: {self.count('add')} to add, {self.count('change')} to change, {self.count('remove')} to remove."
            )
        return out

    def to_dict(self) -> dict:
        return {
            "actions": [
                {
                    "action": a.kind,
                    "name": a.name,
                    "changes": [{"field": c.field, "old": c.old, "new": c.new} for c in a.changes],
                    "note": a.note,
                }
                for a in self.actions
            ],
            "kept": self.kept,
            "summary": {k: self.count(k) for k in ("add", "change", "remove")},
        }


def _show(value) -> str:
    return "(none)" if value is None or value is False else str(value)


COMPARED = UPDATABLE  # every setting the registry can change in place


def plan(config: Config, *, prune: bool = False) -> Plan:
    """What apply would do; raises ConfigInvalid (nothing planned) for changes dagops cannot make in place."""
    current = {info.name: info for info in list_repositories()}
    wanted = {spec.name: spec for spec in config.repositories}
    result = Plan(source=Path(config.source).name)
    problems = []
    removed = {name for name in current if name not in wanted} if prune else set()
    owners = {info.namespace: info.name for info in current.values() if info.name not in removed}
    default_poll = settings.get_int("default_poll_interval")
    for name in sorted(current.keys() - wanted.keys()):
        if prune:
            result.actions.append(Action("remove", name))
        else:
            result.kept.append(name)
    for spec in config.repositories:
        at = f"{config.source}:{spec.line}: {spec.name}"
        info = current.get(spec.name)
        if info is None:
            owner = owners.get(spec.namespace)
            if owner:
                hint = "" if prune else " (or apply with --prune if it left the file)"
                problems.append(
                    f"{at}: namespace {spec.namespace!r} is used by registered repository {owner!r}; a repository "
                    f"cannot be renamed in place: remove {owner!r} and add {spec.name!r}{hint}"
                )
                continue
            link = paths.namespace_link(spec.namespace)
            if link.exists() and not link.is_symlink():
                problems.append(
                    f"{at}: {link} already exists in the dags folder and is not managed by dagops; "
                    "choose another namespace or move that folder away"
                )
                continue
            note = None
            if spec.pin not in (None, False):
                note = "pin is applied once it has a release: sync it, then apply again"
            result.actions.append(Action("add", spec.name, spec=spec, note=note))
            continue
        if info.namespace != spec.namespace:
            problems.append(
                f"{at}: namespace {info.namespace!r} → {spec.namespace!r} cannot be changed in place; "
                f"remove the repository (dagops repos remove {spec.name}) and apply again to re-add it"
            )
            continue
        changes = []
        for key in COMPARED:
            old, new = getattr(info, key), getattr(spec, key)
            if key == "url":
                new = display_url(new)
            if key == "poll_interval" and (new or default_poll) == old:
                continue
            if old != new:
                changes.append(Change(key, old, new if key != "url" else spec.url))
        pin_change, note = _pin_change(info, spec, at)
        if pin_change:
            changes.append(pin_change)
        if changes:
            attach = None
            if _reattaches(changes, spec):
                attach = f"connection {spec.conn_id} is attached to {url_origin(spec.url)}: its credentials go there"
            result.actions.append(Action("change", spec.name, changes=changes, spec=spec, note=attach))
        elif note:
            log.info("%s: %s", spec.name, note)
    if problems:
        raise ConfigInvalid(problems)
    order = {"remove": 0, "change": 1, "add": 2}  # removes first: they free namespaces for the adds
    result.actions.sort(key=lambda a: order[a.kind])
    return result


def _pin_change(info: RepositoryInfo, spec: RepoSpec, at: str) -> tuple[Change | None, str | None]:
    if spec.pin is None:
        return None, None
    pinned = None
    if info.pinned_release_id:
        pinned = get_release(info.pinned_release_id)["commit"]
    if spec.pin is False:
        return (Change("pin", pinned[:12], None), None) if pinned else (None, None)
    if spec.pin is True:
        if pinned:
            return None, None
        if not info.live_release_id:
            return None, "nothing live yet to pin"
        return Change("pin", None, (info.live_commit or "")[:12]), None
    releases, _total = list_releases(info.name, limit=10_000)
    text = str(spec.pin).strip().lower()
    if isinstance(spec.pin, int) or (text.isdigit() and len(text) < 7):
        match = [r for r in releases if r["id"] == int(text)]
    else:
        match = [r for r in releases if r["commit"].startswith(text)]
    if len(match) != 1:
        reason = "has no release" if not match else "has several releases matching"
        raise ConfigInvalid(
            [f"{at}: pin: repository {info.name!r} {reason} {spec.pin!r}; see `dagops versions {info.name}`"]
        )
    target = match[0]
    if target["id"] == info.pinned_release_id:
        return None, None
    if target["status"] == "failed":
        raise ConfigInvalid([f"{at}: pin: release {target['id']} did not pass validation and cannot go live"])
    return Change("pin", pinned[:12] if pinned else None, target["commit"][:12]), None


# -- apply ------------------------------------------------------------------------------------------------
def apply(plan: Plan, *, verify: bool = True) -> list[str]:
    """Carry out a plan; with `verify`, every new remote or ref is reached before anything changes."""
    if verify:
        _preflight(plan)
    done = []
    for action in plan.actions:
        if action.kind == "remove":
            done.append(remove_repository(action.name, keep_dags=False))
        elif action.kind == "add":
            spec = action.spec
            add_repository(
                spec.name,
                spec.url,
                ref=spec.ref,
                namespace=spec.namespace,
                conn_id=spec.conn_id,
                subdir=spec.subdir,
                priority=spec.priority,
                poll_interval=spec.poll_interval,
                enabled=spec.enabled,
                verify=False,
                webhook_conn_id=spec.webhook_conn_id,
                on_conflict=spec.on_conflict,
                access_control=spec.access_control,
                promotion=spec.promotion,
                isolated_env=spec.isolated_env,
            )
            done.append(f"added {spec.name}")
        else:
            updates = {c.field: c.new for c in action.changes if c.field != "pin"}
            if _reattaches(action.changes, action.spec):
                updates["conn_id"] = action.spec.conn_id  # the file names both: attach the connection to the new URL
            if updates:
                update_repository(action.name, verify=False, **updates)
            pin = next((c for c in action.changes if c.field == "pin"), None)
            if pin is not None and pin.new is None:
                unpin(action.name, actor=ACTOR)
            elif pin is not None:
                wanted = action.spec.pin
                rollbacks.pin(action.name, None if wanted is True else wanted, actor=ACTOR)
            done.append(f"changed {action.name}: {', '.join(str(c) for c in action.changes)}")
    for line in done:
        log.info("%s: %s", ACTOR, line)
    return done


def _reattaches(changes: list[Change], spec: RepoSpec) -> bool:
    """A new URL in a file that also names the connection: applying it attaches the connection to that URL (whoever
    runs `dagops repos apply` may choose connections, as the CLI runs with the server's access to them)."""
    return bool(spec.conn_id) and any(c.field in ("url", "conn_id") for c in changes)


def _preflight(plan: Plan) -> None:
    problems = []
    for action in plan.actions:
        spec = action.spec
        source_fields = {"url", "ref", "conn_id"}
        if action.kind == "add" or (action.kind == "change" and source_fields & {c.field for c in action.changes}):
            mirror = Mirror(path=paths.mirror_dir(spec.name), url=spec.url, conn_id=spec.conn_id)
            attach = action.kind == "add" or _reattaches(action.changes, spec)
            try:
                with attaching(spec.conn_id if attach else None, spec.url):
                    mirror.ls_remote(spec.ref)
            except DagOpsError as err:
                problems.append(f"{spec.name}: {err}")
    if problems:
        raise ConfigInvalid([*problems, "nothing was changed (use --no-verify to skip this check)"])


# -- export -----------------------------------------------------------------------------------------------
def export() -> str:
    """The registry as dagops.yaml; applying the result changes nothing."""
    default_poll = settings.get_int("default_poll_interval")
    repos = []
    for info in sorted(list_repositories(), key=lambda i: i.name):
        entry = {"name": info.name, "url": info.url, "branch": info.ref, "namespace": info.namespace}
        entry["priority"] = info.priority
        for key in ("conn_id", "subdir", "webhook_conn_id"):
            if getattr(info, key):
                entry[key] = getattr(info, key)
        if info.poll_interval != default_poll:
            entry["poll_interval"] = info.poll_interval
        if not info.enabled:
            entry["enabled"] = False
        if info.on_conflict != repo_options.DEFAULT_ON_CONFLICT:
            entry["on_conflict"] = info.on_conflict
        for key in ("access_control", "promotion", "isolated_env"):
            if getattr(info, key):
                entry[key] = getattr(info, key)
        if info.pinned_release_id:
            entry["pin"] = get_release(info.pinned_release_id)["commit"]
        repos.append(entry)
    header = "# dagops.yaml: exported by `dagops repos export`; apply with `dagops repos apply -f dagops.yaml`\n"
    return header + yaml.safe_dump({"repositories": repos}, sort_keys=False, allow_unicode=True)
