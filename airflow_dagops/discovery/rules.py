"""A discovery rule (which repositories of an organization hold DAGs) and the names derived for a match.

    rule:
      topic: airflow-dags          # or topics: [airflow-dags, dags]: any of them
      name_pattern: "dags-*"       # a glob over the name below the organization, case-insensitive
      require_file: .dagops.yaml   # must exist on the default branch

Every condition given must hold; a rule needs at least one (an empty rule would propose the whole organization).
A match's repository name and namespace are its path below the organization, lower-cased, anything but letters,
digits, `-` and `_` turned into `-`, behind the source's `namespace_prefix`: `acme/Sales.DAGs` -> `sales-dags`,
GitLab `data/platform/dags` under group `data` -> `platform-dags`. One that still breaks the name rule is
reported, not registered.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field

from airflow_dagops.errors import DagOpsError, InvalidInput
from airflow_dagops.safety import has_control_characters, validate_name

MAX_FILE_PATH = 255
_NOT_NAME = re.compile(r"[^a-z0-9_-]+")
PREFIX_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,29}$")


@dataclass(frozen=True)
class Rule:
    topics: tuple[str, ...] = field(default=())  # any of them (lower case)
    name_pattern: str | None = None
    require_file: str | None = None

    @classmethod
    def from_dict(cls, data: object) -> Rule:
        """A rule from dagops.yaml or the API; InvalidInput names the key that is wrong."""
        if not isinstance(data, dict):
            raise InvalidInput("rule: expected a mapping with topic, topics, name_pattern and/or require_file")
        unknown = sorted(set(data) - {"topic", "topics", "name_pattern", "require_file"})
        if unknown:
            raise InvalidInput(
                f"rule: unknown key(s) {', '.join(unknown)} (known: topic, topics, name_pattern, require_file)"
            )
        topics = [data["topic"]] if data.get("topic") is not None else []
        if data.get("topics") is not None:
            if not isinstance(data["topics"], list):
                raise InvalidInput("rule.topics: expected a list of topics")
            topics += data["topics"]
        for topic in topics:
            if not isinstance(topic, str) or not topic.strip() or has_control_characters(topic) or len(topic) > 100:
                raise InvalidInput(f"rule: invalid topic {topic!r}")
        pattern = data.get("name_pattern")
        if pattern is not None and (not isinstance(pattern, str) or not pattern or has_control_characters(pattern)):
            raise InvalidInput(f"rule.name_pattern: invalid glob {pattern!r}")
        path = data.get("require_file")
        if path is not None:
            path = _check_path(path)
        rule = cls(tuple(dict.fromkeys(t.strip().lower() for t in topics)), pattern, path)
        if not rule.topics and rule.name_pattern is None and rule.require_file is None:
            raise InvalidInput("rule: give at least one of topic, topics, name_pattern or require_file")
        return rule

    def to_dict(self) -> dict:
        data: dict = {}
        if self.topics:
            data["topics"] = list(self.topics)
        if self.name_pattern is not None:
            data["name_pattern"] = self.name_pattern
        if self.require_file is not None:
            data["require_file"] = self.require_file
        return data

    def describe(self) -> str:
        parts = []
        if self.topics:
            parts.append("topic " + " or ".join(self.topics))
        if self.name_pattern is not None:
            parts.append(f"name like {self.name_pattern}")
        if self.require_file is not None:
            parts.append(f"holds {self.require_file}")
        return " and ".join(parts)

    def name_matches(self, relative_name: str) -> bool:
        if self.name_pattern is None:
            return True
        return fnmatch.fnmatchcase(relative_name.lower(), self.name_pattern.lower())

    def topics_match(self, topics: list[str] | None) -> bool:
        if not self.topics:
            return True
        return bool({t.lower() for t in topics or []} & set(self.topics))


def _check_path(path: object) -> str:
    if (
        not isinstance(path, str)
        or not path
        or len(path) > MAX_FILE_PATH
        or path.startswith(("/", "-"))
        or "\\" in path
        or has_control_characters(path)
        or any(part in ("", ".", "..") for part in path.split("/"))
    ):
        raise InvalidInput(f"rule.require_file: {path!r} is not a relative file path inside the repository")
    return path


def derive_name(relative_name: str, prefix: str | None = None) -> str | None:
    """The repository and namespace name of a match, or None when no valid name can be made of it."""
    text = _NOT_NAME.sub("-", relative_name.lower()).strip("-_")
    text = re.sub(r"-{2,}", "-", f"{prefix or ''}{text}")[:63].rstrip("-_")
    try:
        return validate_name(text, what="namespace")
    except DagOpsError:
        return None
