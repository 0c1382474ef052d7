"""The catalogue of every rule the pipeline can report: id, step, default severity, why, how to silence it.

Why a rule exists is said once, in the `RULES` table of the module that reports it (the one place a new rule is
added); this module adds what a reader of a report needs next: how severe it is by default, and what a repository
can do about it. docs/validation.md's "Rules" section is this catalogue in prose, and tests/validate/
test_rules_doc.py fails when a rule the code can report has no entry here or there.

Every rule can also be switched off, softened or excepted per file in `.dagops.yaml` (`disable`, `severity`,
`exceptions`) unless the operator lists it under `mandatory`; `silence` says what else works, or that only a fix
helps. bandit's tests are one family (`bandit-*`): their severity follows bandit's own rating.

Light on purpose (no import of the checks at module level): `structure.py` reads default severities from here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

# The module whose RULES a rule comes from -> the step of docs/validation.md that reports it.
_STEPS = {
    "files": "files",
    "config": "files",
    "syntax": "syntax",
    "security": "security",
    "compat": "Airflow 3 compatibility",
    "imports": "imports",
    "structure": "structure",
    "policy": "policy",
    "dependencies": "dependencies",
    "skip_files": "gate",
}
EXPORT_RULES = {
    "file-not-exported": "A repository entry (a submodule) is not published.",
}
BANDIT_FAMILY = "bandit-*"

_ALLOWLIST_PRAGMA = (
    "End the line with `# pragma: allowlist secret` (or `# pragma: allowlist nextline secret` above it) for a false "
    "positive; a real secret must be removed and rotated."
)
_AIR_BREAKS = (
    "Fix the code: it fails on Airflow 3. `# noqa` does not silence it (ruff runs with `--ignore-noqa`); a file "
    "Airflow never parses gets a warning."
)
_AIR_ADVICE = "Follow ruff's fix, or `.dagops.yaml` (`severity: {RULE: info}`); `# noqa` is ignored."
_SANDBOX = (
    "Move the work into a task. A module only a DAG imports is reported on that DAG. Only `.dagops.yaml` silences it."
)
_POLICY_OPTION = "Set `policy: {{{option}}}` in `.dagops.yaml` (or the operator's rules file) to change or turn it off."

# rule id (or family) -> (default severity, when it differs, how a repository silences it)
_DETAILS: dict[str, tuple[str, str, str]] = {
    # files
    "file-not-exported": (
        "warning",
        "",
        "Nothing to silence: the entry is not published; vendor it if a DAG needs it.",
    ),
    "symlink-outside-tree": ("warning", "", "Keep what the link points at inside the repository."),
    "non-utf8-file": ("error", "", "Save the file as UTF-8 or declare its encoding on line 1 or 2."),
    "file-too-large": ("error", "", "Keep data out of Python files; `.dagops.yaml` exceptions for a generated file."),
    "config-invalid": ("error", "", "Fix `.dagops.yaml`: a broken file cannot silence anything, itself included."),
    # syntax
    "syntax-error": (
        "error",
        "warning in a file Airflow never parses (`.airflowignore`, safe mode, dbt model, vendored)",
        "Fix it, or list the file in `.airflowignore` if it is no DAG file.",
    ),
    # security
    BANDIT_FAMILY: (
        "error",
        "by bandit's rating: high severity (medium/high confidence) error, medium warning, low info; a warning in "
        "vendored code or a file Airflow never parses",
        "`# nosec BXXX` on the line, with a comment saying why; or `.dagops.yaml` (`disable: [bandit-B404]`).",
    ),
    "hardcoded-secret-private-key": ("error", "warning for a placeholder or in vendored code", _ALLOWLIST_PRAGMA),
    "hardcoded-secret-aws": ("error", "warning for a placeholder or in vendored code", _ALLOWLIST_PRAGMA),
    "hardcoded-secret-token": ("error", "warning for a placeholder or in vendored code", _ALLOWLIST_PRAGMA),
    "hardcoded-secret-basic-auth": (
        "error",
        "warning for a placeholder, a template, a dev default in a Compose file, or in vendored code",
        _ALLOWLIST_PRAGMA,
    ),
    "hardcoded-secret-password": (
        "error",
        "warning for a placeholder, the name of a secret, a dev default in a Compose file, or in vendored code",
        _ALLOWLIST_PRAGMA,
    ),
    "hardcoded-secret-high-entropy": ("warning", "", _ALLOWLIST_PRAGMA),
    "import-time-side-effect": (
        "error",
        "warning in a file Airflow never parses",
        'Move the call into a task or under `if __name__ == "__main__":`; `.dagops.yaml` exceptions per file.',
    ),
    "security-scan-skipped": ("info", "", "Nothing to silence; keep files over 1 MiB out of the repository."),
    # Airflow 3 compatibility (ruff's AIR rules)
    "AIR001": ("warning", "", _AIR_ADVICE),
    "AIR002": ("warning", "", _AIR_ADVICE),
    "AIR003": ("warning", "", _AIR_ADVICE),
    "AIR004": ("warning", "", _AIR_ADVICE),
    "AIR201": ("warning", "", _AIR_ADVICE),
    "AIR202": ("warning", "", _AIR_ADVICE),
    "AIR301": ("error", "warning in a file Airflow never parses", _AIR_BREAKS),
    "AIR302": ("error", "warning in a file Airflow never parses", _AIR_BREAKS),
    "AIR303": ("error", "warning in a file Airflow never parses", _AIR_BREAKS),
    "AIR304": ("warning", "", _AIR_ADVICE),
    "AIR311": ("warning", "", _AIR_ADVICE),
    "AIR312": ("warning", "", _AIR_ADVICE),
    "AIR321": ("warning", "", _AIR_ADVICE),
    "compat-check-unavailable": ("warning", "", "Install ruff where dagops runs (it is a dependency of dagops)."),
    # imports
    "missing-module": (
        "error",
        "info when an `except ImportError` fallback works",
        "Install the distribution the message names, or wrap the import in a working `try`/`except ImportError`.",
    ),
    "missing-module-runtime": (
        "warning",
        "",
        "Nothing to do if the task runs elsewhere (a virtualenv or pod); else install it.",
    ),
    # structure (the sandboxed import)
    "import-error": ("error", "", "Fix the exception; Airflow would report the same import error."),
    "import-timeout": ("error", "", "Move slow work into tasks; `[dagops] import_timeout` is the operator's."),
    "import-memory-limit": (
        "error",
        "",
        "Build large data inside tasks; `[dagops] import_memory_limit` is the operator's.",
    ),
    "import-exit": ("error", "", "Raise an exception instead of calling sys.exit() at import."),
    "import-crash": ("error", "", "Import the crashing native extension inside a task."),
    "dag-cycle": ("error", "", "Remove the dependency that closes the loop."),
    "no-dag-in-file": ("warning", "", "Call the @dag function at module level, or `.airflowignore` a non-DAG file."),
    "duplicate-dag-id": ("error", "", "Give each DAG its own dag_id; Airflow keeps one of them whatever dagops says."),
    "dag-id-taken": (
        "error",
        "warning with `on_conflict: skip_files` (the DAG is left out)",
        "Rename the DAG, change the repositories' priorities, or set `on_conflict: skip_files`.",
    ),
    "dag-id-shadows": ("info", "", "Nothing to silence: this release wins the dag_id by priority."),
    "variable-at-import": ("warning", "", "Read the Variable in a task or a template (`{{ var.value.key }}`)."),
    "sandbox-degraded": ("warning", "", "The operator's choice (`[dagops] sandbox = degraded`); install bubblewrap."),
    "sandbox-process": ("error", "", _SANDBOX),
    "sandbox-network": ("error", "", _SANDBOX),
    "sandbox-write": ("error", "", _SANDBOX),
    "sandbox-private-read": ("error", "", _SANDBOX),
    "sandbox-dynamic-code": ("error", "", _SANDBOX),
    "sandbox-native-code": ("error", "", _SANDBOX),
    "sandbox-process-left": ("error", "", _SANDBOX),
    # policy
    "policy-owner": ("warning", "", _POLICY_OPTION.format(option="require_owner: false")),
    "policy-tags": ("warning", "", _POLICY_OPTION.format(option="require_tags: false")),
    "policy-retries": ("error", "off until `min_retries` is set", _POLICY_OPTION.format(option="min_retries: 0")),
    "policy-schedule": ("warning", "", _POLICY_OPTION.format(option="require_explicit_schedule: false")),
    "policy-dynamic-start-date": (
        "error",
        "",
        "Use a fixed start_date; " + _POLICY_OPTION.format(option="forbid_dynamic_start_date: false"),
    ),
    "policy-dag-id-pattern": (
        "error",
        "off until `dag_id_pattern` is set",
        _POLICY_OPTION.format(option='dag_id_pattern: ""'),
    ),
    "policy-max-tasks": ("error", "off until `max_tasks` is set", _POLICY_OPTION.format(option="max_tasks: 0")),
    "import-time-budget": (
        "warning",
        "error above `import_time_error` (10 s)",
        _POLICY_OPTION.format(option="import_time_warning: 5.0, import_time_error: 30.0"),
    ),
    # dependencies
    "dependency-invalid": ("error", "info when this Python cannot read TOML (no tomli)", "Fix the declaration."),
    "dependency-option-ignored": ("info", "", "Nothing to silence; dagops cannot check such a line."),
    "dependency-missing": ("error", "", "Install it in the Airflow image, or `.dagops.yaml` severity."),
    "dependency-version": ("error", "", "Install a matching version, or widen the specifier."),
    "provider-missing": ("error", "", "Install the provider distribution the message names."),
    "dependency-conflict": ("error", "", "Agree on one version with the other namespace, or use `isolated_env`."),
    # gate
    "files-skipped": ("info", "", "Nothing to silence: `on_invalid: skip_files` says so on purpose."),
    "skip-files-refused": ("error", "", "Fix the failing files a published file imports."),
    "venv-build-failed": ("error", "", "Fix the requirements, or provide the wheels in `[dagops] wheelhouse`."),
    "venv-ready": ("info", "", "Nothing to silence."),
    "test-failed": ("error", "warning with `tests: optional`", "Fix the test, or set `tests: optional` or `off`."),
    "perf-regression": (
        "error",
        "warning with `tests: optional`",
        "Make it fast again, or raise `perf: {threshold: 2.0, floor: 0.5}` in `.dagops.yaml`.",
    ),
}


@dataclass(frozen=True)
class Rule:
    id: str  # or a family: "bandit-*"
    step: str
    severity: str  # the default: error, warning or info
    why: str
    silence: str
    otherwise: str = ""  # when the severity differs from the default

    @property
    def severity_text(self) -> str:
        return f"{self.severity} ({self.otherwise})" if self.otherwise else self.severity


def all_rules() -> dict[str, str]:
    """Every rule id the code can report -> why it exists (bandit's tests one by one)."""
    rules = dict(EXPORT_RULES)
    for module in _STEPS:
        rules.update(importlib.import_module(f"airflow_dagops.validate.{module}").RULES)
    return rules


def catalogue() -> dict[str, Rule]:
    """Every rule, bandit's as one family, with its step, severity, why and how to silence it."""
    found: dict[str, Rule] = {}
    for module, step in [*_STEPS.items(), ("export", "export")]:
        why_by_id = (
            EXPORT_RULES if module == "export" else importlib.import_module(f"airflow_dagops.validate.{module}").RULES
        )
        for rule_id, why in why_by_id.items():
            key = family(rule_id)
            if key in found:
                continue
            severity, otherwise, silence = _DETAILS[key]
            why = "bandit's own tests (`bandit-B602` ...), minus B101 (assert)" if key == BANDIT_FAMILY else why
            found[key] = Rule(key, step, severity, why, silence, otherwise)
    return found


def family(rule_id: str) -> str:
    """The catalogue entry a rule id belongs to: itself, or `bandit-*` for a bandit test."""
    return BANDIT_FAMILY if rule_id.startswith("bandit-") else rule_id


def default_severity(rule_id: str) -> str:
    return _DETAILS[family(rule_id)][0]
