"""`dagops-package.yaml`: what a catalog package is. Checked with a JSON schema; every problem names its line and key.

name: postgres_backup_to_s3
version: 1.2.0
summary: Nightly pg_dump of a Postgres database, uploaded to S3 or MinIO
description: ...
tags: [postgres, backup, s3]
author: Data Platform <platform@example.com>
license: Apache-2.0
providers: [apache-airflow-providers-postgres, apache-airflow-providers-amazon]
packages: []
dags: [postgres_backup_to_s3.py]
readme: README.md
example_config: example_config.yaml
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from posixpath import normpath
from typing import TYPE_CHECKING, Any

from packaging.version import InvalidVersion, Version

from airflow_dagops.errors import ConfigInvalid

if TYPE_CHECKING:
    import jsonschema

FILE_NAME = "dagops-package.yaml"
NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,58}$"  # 59: the installed repository is called pkg-<name>
_STRINGS = {"type": "array", "items": {"type": "string", "minLength": 1}}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name", "version", "summary", "dags"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": NAME_PATTERN},
        "version": {"type": "string", "minLength": 1, "maxLength": 64},
        "summary": {"type": "string", "minLength": 1, "maxLength": 200},
        "description": {"type": "string", "maxLength": 20000},
        "tags": {"type": "array", "items": {"type": "string", "pattern": r"^[a-z0-9][a-z0-9_.-]{0,39}$"}},
        "author": {"type": "string", "maxLength": 250},
        "license": {"type": "string", "maxLength": 100},
        "providers": _STRINGS,
        "packages": _STRINGS,
        "dags": {**_STRINGS, "minItems": 1},
        "readme": {"type": "string", "minLength": 1},
        "example_config": {"type": "string", "minLength": 1},
    },
}
KNOWN_KEYS = sorted(SCHEMA["properties"])


@dataclass
class PackageSpec:
    name: str
    version: str
    summary: str
    dags: list[str]
    description: str = ""
    tags: list[str] = field(default_factory=list)
    author: str = ""
    license: str = ""
    providers: list[str] = field(default_factory=list)
    packages: list[str] = field(default_factory=list)
    readme: str | None = None
    example_config: str | None = None

    @property
    def tag(self) -> str:
        """The git tag that releases this version."""
        return version_tag(self.name, self.version)

    def files(self) -> list[str]:
        """Every file the package names (relative to its folder): its DAGs, readme and example config."""
        return [*self.dags, *(f for f in (self.readme, self.example_config) if f)]

    def to_dict(self) -> dict:
        return asdict(self)


def version_tag(name: str, version: str) -> str:
    return f"{name}/v{version}"


def parse_tag(tag: str) -> tuple[str, str] | None:
    """(package, version) of a `<package>/v<version>` tag, else None (other tags are not releases)."""
    match = re.match(r"^(?P<name>[a-z0-9][a-z0-9_-]{0,58})/v(?P<version>[^/]+)$", tag)
    return (match["name"], match["version"]) if match else None


def version_key(version: str) -> Version:
    """Sort key of a version (newest is largest); versions were checked when their yaml was parsed."""
    try:
        return Version(version)
    except InvalidVersion:
        return Version("0")


def parse(text: str, *, source: str = FILE_NAME) -> PackageSpec:
    """Check a package file whole: raise ConfigInvalid listing every problem as `file:line: key: message`."""
    # Imported here: the catalog's readers (search, versions, `dagops marketplace list`) use this module's version
    # helpers only, and YAML, the JSON schema validator and the dagops.yaml reader cost them most of a second.
    import jsonschema
    import yaml

    from airflow_dagops.repositories.declarative import _index_lines, _label  # lazy: parsing only (see above)

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        raise ConfigInvalid(
            [f"{source}:{mark.line + 1 if mark else 1}: not valid YAML: {getattr(err, 'problem', None) or err}"]
        ) from None
    lines: dict[tuple, int] = {}
    problems: list[tuple[int, str]] = []
    if node is not None:
        _index_lines(node, (), lines, problems)

    def problem(path: tuple, message: str) -> None:
        where = path
        while where and where not in lines:
            where = where[:-1]
        label = _label(path)
        problems.append((lines.get(where, 1), f"{label}: {message}" if label else message))

    if not isinstance(data, dict):
        raise ConfigInvalid([f"{source}:1: must be a mapping of keys ({', '.join(KNOWN_KEYS)})"])
    for key in data:
        if key not in SCHEMA["properties"]:
            problem((key,), f"is not a known key (known: {', '.join(KNOWN_KEYS)})")
    for error in jsonschema.Draft202012Validator(SCHEMA).iter_errors(data):
        if error.validator != "additionalProperties":
            problem(tuple(error.absolute_path), _schema_message(error))
    if not problems:
        _check_values(data, problem)
    if problems:
        problems.sort(key=lambda p: p[0])
        raise ConfigInvalid([f"{source}:{line}: {message}" for line, message in dict.fromkeys(problems)])
    return PackageSpec(**{key: data[key] for key in KNOWN_KEYS if key in data})


def _schema_message(error: jsonschema.ValidationError) -> str:
    if error.validator == "type" and error.absolute_path and error.absolute_path[-1] == "version":
        return f'{error.instance!r} is not a string: quote the version, e.g. version: "{error.instance}"'
    if error.validator == "pattern" and error.absolute_path and error.absolute_path[0] == "name":
        return f"{error.instance!r}: use 1-59 lower-case letters, digits, '-' or '_' (e.g. pg_backup)"
    return error.message


def _check_values(data: dict, problem) -> None:
    """What the schema cannot say: versions, requirements and paths that stay inside the package folder."""
    from packaging.requirements import InvalidRequirement, Requirement  # parsing only: the readers need versions

    try:
        Version(data["version"])
    except InvalidVersion:
        problem(("version",), f"{data['version']!r} is not a version (use e.g. 1.2.0)")
    for key in ("providers", "packages"):
        for index, text in enumerate(data.get(key) or []):
            try:
                Requirement(text)
            except InvalidRequirement as err:
                problem((key, index), f"{text!r} is not a requirement: {err}")
    paths: list[tuple[str, int | None, Any]] = [("dags", i, p) for i, p in enumerate(data["dags"])]
    paths += [(key, None, data[key]) for key in ("readme", "example_config") if key in data]
    for key, position, path in paths:
        if not _inside(path):
            where = (key, position) if position is not None else (key,)
            problem(where, f"{path!r} must be a relative path inside the package")
    for index, path in enumerate(data["dags"]):
        if _inside(path) and not path.endswith(".py"):
            problem(("dags", index), f"{path!r} is not a Python file")


def _inside(path: str) -> bool:
    normal = normpath(path)
    return not (path.startswith(("/", "-")) or "\\" in path or normal == ".." or normal.startswith("../"))
