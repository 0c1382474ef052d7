"""What to check and how strictly: operator rules (`[dagops]` + a rules file) merged with a repository's
`.dagops.yaml`.

Operator rules file (`[dagops] validation_rules_file`, YAML) and `.dagops.yaml` share one format:

    disable: [policy-tags, bandit-B108]        # rule ids; a trailing * matches a prefix (bandit-*)
    severity: {no-dag-in-file: error}          # error / warning / info
    exceptions:                                # per-file exceptions (like Astro's dag_integrity_exceptions)
      "dags/legacy/*.py": [AIR301, policy-owner]
      "scripts/*": ["*"]
    policy: {require_owner: true, min_retries: 1, max_tasks: 200, ...}
    on_invalid: block                          # or skip_files (repository file only)
    tests: required                            # run the repository's tests/ before publishing (off / optional)
    perf: {threshold: 2.0, floor: 0.5}         # when a measured parse/run time regressed (releases/perf.py)
    mandatory: [hardcoded-secret-*]            # operator file only: a repository cannot switch these off

A malformed `.dagops.yaml` is itself a finding (`config-invalid`, error) that names the key and line.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from airflow_dagops.validate.report import SEVERITIES, Finding

REPO_CONFIG_NAME = ".dagops.yaml"
ON_INVALID = ("block", "skip_files")
TESTS_MODES = ("off", "optional", "required")  # airflow_dagops/release_tests.py
_TYPE_WORDS = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}
_TOP_KEYS = {"disable", "severity", "exceptions", "policy", "on_invalid", "mandatory", "tests", "perf"}


@dataclass(frozen=True)
class PolicyConfig:
    require_owner: bool = True  # an owner other than Airflow's default "airflow"
    require_tags: bool = True
    min_retries: int = 0  # 0: not checked
    require_explicit_schedule: bool = True
    forbid_dynamic_start_date: bool = True
    dag_id_pattern: str = ""  # a regular expression every dag_id must match; empty: not checked
    max_tasks: int = 0  # 0: not checked
    import_time_warning: float = 1.0  # seconds
    import_time_error: float = 10.0


@dataclass
class ValidationConfig:
    disabled: set[str] = field(default_factory=set)
    severity: dict[str, str] = field(default_factory=dict)
    exceptions: dict[str, set[str]] = field(default_factory=dict)
    mandatory: set[str] = field(default_factory=set)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    on_invalid: str = "block"
    tests: str = "off"
    perf: dict[str, float] = field(default_factory=dict)  # {threshold, floor} overrides of the [dagops] limits

    def fingerprint(self) -> str:
        """A stable hash of everything that changes findings: part of every cache key."""
        data = asdict(self)
        data = {k: sorted(v) if isinstance(v, set) else v for k, v in data.items()}
        data["exceptions"] = {k: sorted(v) for k, v in self.exceptions.items()}
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def apply(self, findings: list[Finding]) -> list[Finding]:
        """Drop disabled and excepted findings and apply severity overrides; mandatory rules always stay."""
        kept = []
        for finding in findings:
            mandatory = _matches_any(finding.rule, self.mandatory)
            if not mandatory and (_matches_any(finding.rule, self.disabled) or self._excepted(finding)):
                continue
            severity = _lookup(finding.rule, self.severity) or finding.severity
            if mandatory and severity != finding.severity and _rank(severity) > _rank(finding.severity):
                severity = finding.severity  # a repository may not soften a mandatory rule
            kept.append(finding if severity == finding.severity else replace(finding, severity=severity))
        return kept

    def _excepted(self, finding: Finding) -> bool:
        if not finding.file:
            return False
        return any(
            fnmatch.fnmatch(finding.file, pattern) and _matches_any(finding.rule, rules)
            for pattern, rules in self.exceptions.items()
        )


def _rank(severity: str) -> int:
    return SEVERITIES.index(severity)  # 0 = error (strictest)


def _matches_any(rule: str, patterns: set[str]) -> bool:
    return any(p == "*" or p == rule or (p.endswith("*") and rule.startswith(p[:-1])) for p in patterns)


def _lookup(rule: str, table: dict[str, str]) -> str | None:
    if rule in table:
        return table[rule]
    prefixes = [p for p in table if p.endswith("*") and rule.startswith(p[:-1])]
    return table[max(prefixes, key=len)] if prefixes else None


class ConfigError(ValueError):
    """A rules file that cannot be used; the message names the key (and line when known)."""


def parse_config(text: str, *, source: str, operator: bool) -> dict:
    """Parse and check one rules file; raises ConfigError with the key and line of the first problem."""
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{source}{where}: not valid YAML ({getattr(err, 'problem', err)})") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: must be a mapping of settings")
    lines = {key.value: key.start_mark.line + 1 for key, _value in node.value} if node is not None else {}
    for key, value in data.items():
        where = f"{source} line {lines.get(key, '?')}: {key!r}"
        _check_key(key, value, where, operator=operator)
    return data


def _check_key(key, value, where: str, *, operator: bool) -> None:
    if key not in _TOP_KEYS:
        raise ConfigError(f"{where} is not a known setting (known: {', '.join(sorted(_TOP_KEYS))})")
    if key == "mandatory" and not operator:
        raise ConfigError(f"{where} can only be set by the operator's rules file")
    if key in ("disable", "mandatory") and not _is_str_list(value):
        raise ConfigError(f"{where} must be a list of rule ids")
    if key == "severity" and not (
        isinstance(value, dict) and all(isinstance(v, str) and v in SEVERITIES for v in value.values())
    ):
        raise ConfigError(f"{where} must map rule ids to one of {', '.join(SEVERITIES)}")
    if key == "exceptions" and not (isinstance(value, dict) and all(_is_str_list(v) for v in value.values())):
        raise ConfigError(f"{where} must map file patterns to lists of rule ids")
    if key == "on_invalid" and value not in ON_INVALID:
        raise ConfigError(f"{where} must be one of {', '.join(ON_INVALID)}")
    if key == "tests" and _tests_mode(value) not in TESTS_MODES:
        raise ConfigError(f"{where} must be one of {', '.join(TESTS_MODES)}")
    if key == "policy":
        _check_policy(value, where)
    if key == "perf":
        _check_perf(value, where)


def _check_perf(value, where: str) -> None:
    if not isinstance(value, dict) or set(value) - {"threshold", "floor"}:
        raise ConfigError(f"{where} must be a mapping with `threshold` (a ratio, at least 1) and/or `floor` (seconds)")
    for name, lowest in (("threshold", 1.0), ("floor", 0.0)):
        setting = value.get(name, lowest)
        if isinstance(setting, bool) or not isinstance(setting, (int, float)) or not setting >= lowest:
            raise ConfigError(f"{where}.{name} must be a number of at least {lowest:g}")


def _tests_mode(value) -> str:
    """YAML reads a bare `off` as false (and `on` as true): take them as the modes they spell."""
    if isinstance(value, bool):
        return "required" if value else "off"
    return value


def _check_policy(value, where: str) -> None:
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a mapping")
    defaults = asdict(PolicyConfig())
    for name, setting in value.items():
        if name not in defaults:
            raise ConfigError(f"{where}.{name} is not a known policy (known: {', '.join(sorted(defaults))})")
        expected = type(defaults[name])
        ok = isinstance(setting, expected) or (expected is float and isinstance(setting, int))
        if not ok or (expected is int and isinstance(setting, bool)):
            raise ConfigError(f"{where}.{name} must be {_TYPE_WORDS[expected]}")


def _is_str_list(value) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def merge(operator: dict, repo: dict) -> ValidationConfig:
    """Operator settings first, then the repository's; mandatory rules survive a repository's `disable`."""
    config = ValidationConfig(mandatory=set(operator.get("mandatory", [])))
    policy = asdict(PolicyConfig())
    for layer in (operator, repo):
        config.disabled |= set(layer.get("disable", []))
        config.severity.update(layer.get("severity", {}))
        for pattern, rules in layer.get("exceptions", {}).items():
            config.exceptions.setdefault(pattern, set()).update(rules)
        policy.update(layer.get("policy", {}))
        config.perf.update({k: float(v) for k, v in layer.get("perf", {}).items()})
        config.on_invalid = layer.get("on_invalid", config.on_invalid)
        if config.tests != "required" or layer is operator:  # the operator's `required` cannot be lowered
            config.tests = _tests_mode(layer.get("tests", config.tests))
    values: dict[str, Any] = {
        k: float(v) if isinstance(PolicyConfig.__dataclass_fields__[k].default, float) else v for k, v in policy.items()
    }
    config.policy = PolicyConfig(**values)
    return config


def load_config(root: Path, *, operator_file: str | None = None) -> tuple[ValidationConfig, list[Finding]]:
    """The effective config for a release folder, and a `config-invalid` finding if a file is unusable."""
    findings = []
    operator = {}
    if operator_file:
        try:
            operator = parse_config(Path(operator_file).read_text(), source=operator_file, operator=True)
        except (OSError, ConfigError) as err:
            # The operator's own file: fail loudly rather than validate with rules nobody asked for.
            raise ConfigError(f"cannot use the validation rules file: {err}") from err
    repo = {}
    repo_file = root / REPO_CONFIG_NAME
    if repo_file.is_file():
        try:
            repo = parse_config(repo_file.read_text(encoding="utf-8"), source=REPO_CONFIG_NAME, operator=False)
        except (ConfigError, UnicodeDecodeError) as err:
            findings.append(
                Finding(
                    rule="config-invalid",
                    severity="error",
                    file=REPO_CONFIG_NAME,
                    message=str(err),
                    hint="Fix .dagops.yaml; see docs/validation.md for its format.",
                )
            )
    return merge(operator, repo), findings


RULES = {"config-invalid": "The repository's .dagops.yaml cannot be read or has an unknown or badly typed key."}
