"""`dagops.yaml`: the repository registry as a file, applied like a terraform plan.

    repositories:
      - name: company-workflows
        url: https://github.com/company/workflows
        branch: main
        priority: 1
        namespace: company

A `discovery:` block (a list of organizations and rules, docs/many-repositories.md) is checked here and stored by
airflow_dagops/discovery when the file is applied.

Three steps, each usable on its own: `load` (YAML + JSON schema + name rules, every problem with its
line and key), `plan` (compare with the registry: add / change / remove), `apply` (call the same
services the CLI, REST API and page use). Bad input changes nothing: the whole file is checked and the
whole plan is made (and, with `verify`, every new remote is reached) before the first change.

Size: one file format read, compared with the registry and written back in one place, since the three share its
spec, its line-numbered problems and its wording; the keys themselves come from repositories/options.py.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from airflow_dagops import paths, settings
from airflow_dagops.errors import ConfigInvalid, DagOpsError, InvalidInput
from airflow_dagops.git.credentials import attaching, url_origin
from airflow_dagops.git.mirror import Mirror
from airflow_dagops.releases.history import get_release, list_releases
from airflow_dagops.repositories import export as exporting
from airflow_dagops.repositories import options as repo_options
from airflow_dagops.repositories.info import list_repositories
from airflow_dagops.repositories.registry import (
    UPDATABLE,
    add_repository,
    remove_repository,
    update_repository,
)
from airflow_dagops.safety import display_url, validate_name
from airflow_dagops.store.views import RepositoryInfo

log = logging.getLogger(__name__)

ACTOR = "dagops.yaml"
# Keys the issue lists that dagops.yaml does not carry yet: refused with a pointer, never silently ignored.
UNSUPPORTED = {
    "on_invalid": "not supported yet in dagops.yaml; put it in the repository's .dagops.yaml",
    "rules": "not supported yet in dagops.yaml; put it in the repository's .dagops.yaml",
}
# An entry: its name, every repository option (repositories/options.py), and what only the file has: `branch`
# (the same as `ref`) and `pin`.
ENTRY_KEYS = {
    "name": {"type": "string"},
    "branch": repo_options.BY_NAME["ref"].json_schema(),
    "pin": {"type": ["boolean", "integer", "string"]},
    **{option.name: option.json_schema() for option in repo_options.OPTIONS},
}
# The `discovery:` block: organizations whose matching repositories are proposed or registered. Its entries are
# checked here for shape (with line numbers) and by airflow_dagops/discovery for meaning, and stored by that package.
DISCOVERY_SOURCE: dict[str, Any] = {
    "type": "object",
    "required": ["name", "url", "rule"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string"},
        "url": {"type": "string", "description": "the organization: https://github.com/acme, a GitLab group's URL"},
        "provider": {"enum": ["github", "gitlab", "gitea"]},
        "conn_id": {"type": ["string", "null"]},
        "rule": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "topic": {"type": "string"},
                "topics": {"type": "array", "items": {"type": "string"}},
                "name_pattern": {"type": "string"},
                "require_file": {"type": "string"},
            },
        },
        "register": {"type": "boolean"},
        "namespace_prefix": {"type": ["string", "null"]},
    },
}
SCHEMA = {
    "type": "object",
    "required": ["repositories"],
    "additionalProperties": False,
    "properties": {
        "discovery": {"type": "array", "items": DISCOVERY_SOURCE},
        "repositories": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "url"],
                "additionalProperties": False,
                "properties": ENTRY_KEYS,
            },
        },
    },
}
KNOWN_KEYS = set(ENTRY_KEYS)  # the properties of an entry in SCHEMA


# -- load -------------------------------------------------------------------------------------------------
@dataclass
class RepoSpec:
    """One entry of the file: `settings` holds every repository option, checked, with defaults filled in."""

    name: str
    namespace: str
    settings: dict
    pin: bool | int | str | None = None  # None: not managed; False: unpinned; True: pin what is live
    line: int = 0

    @property
    def url(self) -> str:
        return self.settings["url"]

    @property
    def ref(self) -> str:
        return self.settings["ref"]

    @property
    def conn_id(self) -> str | None:
        return self.settings["conn_id"]


@dataclass
class Config:
    source: str
    repositories: list[RepoSpec]
    discovery: list[dict] | None = None  # the `discovery:` block; None: the file has none (sources left as they are)


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
    import jsonschema  # here: `dagops repos export` (a read) writes the file without its schema validator

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
    return Config(source=source, repositories=specs, discovery=data.get("discovery"))


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
        if key not in ("repositories", "discovery"):
            problem((key,), "is not a known key (known: discovery, repositories)")
    for index, item in enumerate(data.get("discovery") or [] if isinstance(data.get("discovery"), list) else []):
        for key in item if isinstance(item, dict) else ():
            if key not in DISCOVERY_SOURCE["properties"]:
                problem(
                    ("discovery", index, key),
                    f"is not a known key (known: {', '.join(DISCOVERY_SOURCE['properties'])})",
                )
        rule = item.get("rule") if isinstance(item, dict) else None
        for key in rule if isinstance(rule, dict) else ():
            if key not in DISCOVERY_SOURCE["properties"]["rule"]["properties"]:
                problem(
                    ("discovery", index, "rule", key),
                    "is not a known key (known: topic, topics, name_pattern, require_file)",
                )
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
        values = _options_of(item, lambda key, err, at=at: problem((*at, key), str(err)))
        if item.get("name") is not None:
            try:
                validate_name(item["name"], what="repository name")
            except DagOpsError as err:
                problem((*at, "name"), str(err))
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
        values["namespace"] = namespace
        specs.append(RepoSpec(name=name, namespace=namespace, settings=values, pin=pin, line=where(at)))
    return specs


def _options_of(item: dict, report) -> dict:
    """Every repository option of one entry through the same checks as the other faces (`branch` is `ref`);
    each problem is reported with the key the file used."""
    values = {}
    for option in repo_options.OPTIONS:
        key = "branch" if option.name == "ref" and "branch" in item else option.name
        try:
            values[option.name] = option.clean(item.get(key))
        except DagOpsError as err:
            report(key, err)
    return values


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
    spec: RepoSpec | None = None  # the file's entry: set for add and change, None for remove
    note: str | None = None

    @property
    def entry(self) -> RepoSpec:
        """The file's entry of an add or a change."""
        if self.spec is None:
            raise ValueError(f"a {self.kind} of {self.name!r} has no entry in the file")
        return self.spec

    def __str__(self) -> str:
        if self.kind == "add":
            text = f"+ {self.name} ({display_url(self.entry.url)} @ {self.entry.ref}, namespace {self.entry.namespace})"
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
            old, new = getattr(info, key), spec.settings[key]
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
            spec = action.entry
            add_repository(spec.name, verify=False, **spec.settings)
            done.append(f"added {spec.name}")
        else:
            updates = {c.field: c.new for c in action.changes if c.field != "pin"}
            if _reattaches(action.changes, action.entry):
                updates["conn_id"] = action.entry.conn_id  # the file names both: attach the connection to the new URL
            if updates:
                update_repository(action.name, verify=False, **updates)
            pin = next((c for c in action.changes if c.field == "pin"), None)
            if pin is not None:
                from airflow_dagops.releases import rollback as rollbacks  # lazy: the export (a read) needs no gate

                if pin.new is None:
                    rollbacks.unpin(action.name, actor=ACTOR)
                else:
                    wanted = action.entry.pin
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
        source_fields = {"url", "ref", "conn_id"}
        if action.kind == "add" or (action.kind == "change" and source_fields & {c.field for c in action.changes}):
            spec = action.entry
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
# The export reads only the store (repositories/export.py, without the ORM): `dagops repos export` stays a fast read.
export_document = exporting.export_document
export = exporting.export
