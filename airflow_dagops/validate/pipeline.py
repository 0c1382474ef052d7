"""The validation pipeline: every check over a release folder, incremental through a result cache.

The cache may only make a check faster, never change its answer, so a key holds everything that decides a finding:
- per-file checks (syntax, security, Airflow 3 compatibility, imports, start dates): the file's path and content, the
  rules in force, and for imports the module names the release provides;
- the structure step (importing DAG files in a sandbox): that too, plus the content of the local modules the file
  imports, of every non-Python file of the release (DAG factories read YAML at import time; `.airflowignore` decides
  whether Airflow parses a file at all), the Airflow settings that decide how it parses, and the sandbox's limits.
Two release-wide facts are kept too: the module names each file imports (by its content alone), and Airflow's listing
of the release (validate/listing_cache.py says when it can be brought up to date rather than listed anew).
A file whose content lies outside the release cannot be fingerprinted, so what depends on it is never cached.
Cross-file rules (duplicate dag_ids) and policies are recomputed from the cached facts each time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import stat
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from airflow_dagops.redaction import redact_finding
from airflow_dagops.validate import compat as compat_rules
from airflow_dagops.validate import dependencies as dependency_rules
from airflow_dagops.validate import policy as policy_rules
from airflow_dagops.validate.cache import (
    ResultCache,
    cache_key,
    loaded_finding,
    root_pattern,
    stored_finding,
    without_root,
)
from airflow_dagops.validate.config import load_config
from airflow_dagops.validate.files import ParseView, check_files, list_files, resolves_inside
from airflow_dagops.validate.imports import local_module_names
from airflow_dagops.validate.listing_cache import cached_parse_view
from airflow_dagops.validate.local_imports import direct_imports, local_dependencies, with_dependents
from airflow_dagops.validate.report import Finding, Report
from airflow_dagops.validate.structure import DagInfo, check_structure, dag_id_taken_findings, duplicate_dag_id_findings
from airflow_dagops.validate.syntax import check_syntax

log = logging.getLogger(__name__)

CheckFn = Callable[[Path, list[str]], list[Finding]]
CROSS_FILE_RULES = {"duplicate-dag-id", "dag-id-taken"}
# Checks about a file as a DAG file: they skip a file Airflow never parses (`files.ParseView.never_parsed`).
DAG_FILE_CHECKS = {"imports", "dependencies", "start-date"}
# Outcomes that may say more about the machine at that moment (load, the kernel's OOM killer, a killed worker) than
# about the file: the file is imported again next run rather than failing from the cache after the cause is gone.
UNSETTLED_RULES = {"import-timeout", "import-memory-limit", "import-crash"}
# Airflow settings that decide whether Airflow parses a file (safe mode, `.airflowignore` syntax) and what loading it
# yields; structure.py hands them to the sandbox, and the import timeout defaults to Airflow's own.
STRUCTURE_SETTINGS = (
    ("core", "dag_discovery_safe_mode"),
    ("core", "dag_ignore_file_syntax"),
    ("core", "might_contain_dag_callable"),
    ("core", "dagbag_import_timeout"),
    ("core", "default_timezone"),
    ("core", "default_task_retries"),
    ("core", "executor"),
    ("core", "plugins_folder"),
    ("core", "load_examples"),
    ("operators", "default_owner"),
)


def _per_file_checks() -> dict[str, CheckFn]:
    return {
        "syntax": check_syntax,
        "security": _lazy("security", "check_security"),
        "compat": _lazy("compat", "check_compat"),
        "imports": _lazy("imports", "check_imports"),
        "start-date": policy_rules.check_dynamic_start_date,
        "dependencies": _lazy("dependencies", "check_providers"),  # provider-missing; declarations: release-level
    }


def _lazy(module: str, function: str) -> CheckFn:
    """Import a check on first use: bandit, ruff and detect-secrets cost start-up time a skipped step should not."""

    def run(root: Path, files: list[str]) -> list[Finding]:
        import importlib

        return getattr(importlib.import_module(f"airflow_dagops.validate.{module}"), function)(root, files)

    return run


@dataclass
class PipelineOptions:
    cache_path: Path | None = None
    operator_rules_file: str | None = None
    dag_owners: dict[str, str] = field(default_factory=dict)  # dag_id -> namespace that owns it elsewhere
    structure: bool = True
    skip: set[str] = field(default_factory=set)  # steps the operator switched off ([dagops] validation_skip)
    only_files: set[str] | None = None  # --changed-since: restrict per-file checks to these files
    timeout: float | None = None
    memory_limit: int | None = None


def run_pipeline(root: Path, options: PipelineOptions, *, extra_findings: list[Finding] | None = None) -> Report:
    started = time.perf_counter()
    root = Path(root)
    config, findings = load_config(root, operator_file=options.operator_rules_file)
    findings += list(extra_findings or [])
    files = all_files = list_files(root)
    release = Release(root, all_files, config.fingerprint())
    cache = ResultCache(options.cache_path)
    try:
        if options.only_files is not None:
            # The import graph read here is kept, so the structure step's keys read it from the cache.
            files = with_dependents(all_files, options.only_files, _direct_imports(release, cache))
        file_findings, unreadable = check_files(root, files)
        findings += file_findings
        checkable = [f for f in files if f not in unreadable]
        view = _parse_view(release, cache)
        never_parsed = {f for f in checkable if view is not None and view.never_parsed(f)}
        # Syntax first: files that do not parse are not imported. Then the sandboxed imports run in their
        # worker processes while this process runs the other per-file checks: both halves use the 2+ cores.
        per_file, stats = _run_per_file_checks(release, checkable, cache, options.skip, only={"syntax"})
        broken = {f.file for f in per_file if f.rule == "syntax-error"}
        per_file = [_not_a_dag_file(f, view) if f.file in never_parsed else f for f in per_file]
        python = [f for f in checkable if f.endswith(".py") and f not in broken]
        if view is not None:  # the sandbox would not load the others either (it lists with `parse_view` too)
            python = [f for f in python if f in view.dag_files]
        run_structure = options.structure and "structure" not in options.skip
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="dagops-structure") as pool:
            listed = view is not None  # `python` holds only what Airflow's listing would parse: no second listing
            structure = pool.submit(_run_structure, release, python, options, listed) if run_structure else None
            more, more_stats = _run_per_file_checks(
                release, checkable, cache, options.skip, exclude={"syntax"}, not_dag=never_parsed
            )
            # Declarations are read whole each run (cheap: a substring test per file) so the summary always lists
            # every requirement of the release, cached files included; read while the sandbox still works.
            declared = None if "dependencies" in options.skip else dependency_rules.check_declarations(root, checkable)
            dags, structure_findings, import_seconds, imported = structure.result() if structure else ([], [], {}, 0)
        per_file += [_not_a_dag_file(f, view) if f.file in never_parsed else f for f in more]
        # Airflow collects a file's DAGs through a set (hashes of module objects): its order differs between
        # processes, so the report orders them itself, before anything (duplicates, policies) reads them.
        dags = sorted(dags, key=lambda dag: (dag.file, dag.line or 0, dag.dag_id))
        for key in ("checked", "cached"):
            stats[key].update(more_stats[key])
        stats["structure_imported"] = imported
        stats["import_seconds"] = {file: round(s, 3) for file, s in sorted(import_seconds.items()) if s is not None}
        findings += per_file + structure_findings
        findings += _cross_file_findings(dags, options.dag_owners)
        if "policy" not in options.skip:
            findings += policy_rules.check_dags(dags, config.policy)
            findings += policy_rules.check_import_times(import_seconds, config.policy)
        requirements = []
        if declared is not None:
            findings += declared.findings
            requirements = [r.to_dict() for r in declared.requirements]
    finally:
        cache.close()
    report = Report(findings=_sorted(dependency_rules.without_duplicate_provider_findings(config.apply(findings))))
    report.requirements = requirements
    report.dags = dags
    report.structure = run_structure
    report.config = config
    report.stats = {**stats, "files": len(files), "seconds": round(time.perf_counter() - started, 3)}
    return report


@dataclass
class Release:
    """The release as cache keys see it, computed once per run. `files` is every file, not only those checked:
    `--changed-since` narrows what is checked, never what decides an answer."""

    root: Path
    files: list[str]
    config: str  # ValidationConfig.fingerprint(): every rule in force, per-path exceptions included

    @cached_property
    def fingerprints(self) -> dict[str, str | None]:
        real_root = os.path.realpath(self.root)
        return {f: _fingerprint(self.root / f, real_root) for f in self.files}

    @cached_property
    def root_paths(self) -> re.Pattern[str]:
        return root_pattern(self.root)

    @cached_property
    def local_names(self) -> str:
        """Whether `import helpers` resolves depends on which module names the release itself provides."""

        return _digest(sorted(local_module_names(self.root)))

    @cached_property
    def data(self) -> str | None:
        """Every non-Python file: DAG factories read YAML or SQL at import time, and `.airflowignore` files decide
        whether Airflow parses a file at all. None when one of them has content outside the release."""
        items = [(f, self.fingerprints[f]) for f in self.files if not f.endswith(".py")]
        return None if any(fp is None for _, fp in items) else _digest(items)


def _fingerprint(path: Path, real_root: str) -> str | None:
    """sha256 of a regular file inside the release; a link's target for a link to a folder (its files are listed
    themselves) or to nothing; None for content outside the release or that is not a file (a FIFO would block).

    Always the bytes, never git blob ids from the release manifest: a symlink's blob id is the name of its target,
    not the content the checks read, and a folder validated outside an export can carry a manifest of its own."""
    if not resolves_inside(path, real_root):
        return None
    if os.path.islink(path) and not os.path.isfile(path):
        return f"link:{os.readlink(path)}"
    try:
        return _file_digest(path) if stat.S_ISREG(os.stat(path).st_mode) else None
    except OSError:
        return None


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value).encode()).hexdigest()


def _run_per_file_checks(
    release: Release,
    files: list[str],
    cache: ResultCache,
    skip: set[str],
    *,
    only: set[str] | None = None,
    exclude: frozenset | set = frozenset(),
    not_dag: frozenset | set = frozenset(),
):
    findings: list[Finding] = []
    stats: dict[str, Any] = {"checked": {}, "cached": {}}  # per check: files checked, files from the cache
    for name, check in _per_file_checks().items():
        if (
            name in skip
            or name in exclude
            or (only and name not in only)
            or (name == "start-date" and "policy" in skip)
        ):
            continue
        context = (release.local_names,) if name in ("imports", "dependencies") else ()
        checked = [f for f in files if f not in not_dag] if name in DAG_FILE_CHECKS else files
        keys = {
            f: cache_key(name, f, fingerprint, release.config, *context)
            for f in checked
            if (fingerprint := release.fingerprints.get(f))
        }

        def run(misses: list[str], check: CheckFn = check) -> tuple[dict, list]:
            return _by_file(check(release.root, misses), misses, release.root_paths)

        entries, stray, computed = _reuse_or_run(cache, checked, keys, run)
        findings += stray
        findings += [loaded_finding(item, f) for f in checked for item in entries[f]]
        stats["checked"][name], stats["cached"][name] = computed, len(checked) - computed
    return findings, stats


def _parse_view(release: Release, cache: ResultCache) -> ParseView | None:
    """Which files Airflow parses as DAG files, as the sandbox sees it; None (judge every file as a DAG file) when
    Airflow cannot list the folder (a symlink loop, an unreadable setting): a failing listing must not pass files."""
    try:
        real_root = os.path.realpath(release.root)
        return cached_parse_view(real_root, release.files, release.fingerprints, _airflow_settings(), cache)
    except Exception:  # noqa: BLE001
        log.warning("could not list the files Airflow parses; every Python file is judged as a DAG file", exc_info=True)
        return None


# Rules that judge a file as code Airflow imports when it parses the file. On a file Airflow never parses (ignored,
# skipped by safe mode, a dbt model, vendored code) their errors become warnings that say why: the file cannot break a
# parse, and a DAG that imports it runs its code in the sandbox, which reports what that does on the DAG.
DAG_CODE_RULES = ("syntax-error", "import-time-side-effect", "bandit-", *compat_rules.ERROR_CODES)
_NOT_A_DAG_FILE_HINTS = {
    "syntax-error": "Fix it if a DAG imports it (that DAG's import fails); otherwise it only breaks whoever runs it.",
    "import-time-side-effect": "If a DAG imports this module, the sandbox reports what it does on that DAG.",
}


def _not_a_dag_file(finding: Finding, view: ParseView | None) -> Finding:
    """An error of a `DAG_CODE_RULES` rule on a file Airflow never parses, as a warning with the reason (a secret is
    a leak wherever it is, so secret findings keep their severity)."""
    if (
        finding.severity != "error"
        or view is None
        or finding.file not in view.not_parsed
        or not finding.rule.startswith(DAG_CODE_RULES)
    ):
        return finding
    return replace(
        finding,
        severity="warning",
        message=f"{finding.message}; Airflow never parses this file as a DAG file: {view.not_parsed[finding.file]}",
        hint=_NOT_A_DAG_FILE_HINTS.get(finding.rule, finding.hint),
    )


def _by_file(findings: list[Finding], files: list[str], root_paths: re.Pattern[str]) -> tuple[dict[str, list], list]:
    """Findings as the cache stores them, by the file they are about, and the stray ones: about no file (a tool
    missing) or about a file not in `files`. Every one names paths relative to the release, stored or not."""
    entries: dict[str, list] = {f: [] for f in files}
    stray = []
    for finding in findings:
        # Redacted before the cache keeps it: the cache is a stored copy of what DAG code printed or raised.
        finding = redact_finding(without_root(finding, root_paths))
        if finding.file in entries:
            entries[finding.file].append(stored_finding(finding))
        else:
            stray.append(finding)
    return entries, stray


def _reuse_or_run(cache: ResultCache, files: list[str], keys: dict[str, str], run, settled=lambda entry: True):
    """Each file's entry from the cache, or from `run(misses)` (a file without a key is always run); what the run
    found that belongs to none of its files; and how many files it ran on.

    A run with stray results is not stored at all: they cannot be attributed to a file, and storing the rest would
    make the next run, all cache hits, lose them. Nor is an entry that is not `settled`."""
    cached = cache.get_many(keys.values())
    misses = [f for f in files if keys.get(f) not in cached]
    entries, stray = run(misses) if misses else ({}, [])
    # Fresh entries take the cache's round trip too, so a cached run cannot report differently from a fresh one.
    entries = json.loads(json.dumps(entries))
    if not stray:
        cache.put_many({keys[f]: entries[f] for f in misses if f in keys and settled(entries[f])})
    return {f: entries[f] if f in entries else cached[keys[f]] for f in files}, stray, len(misses)


def _run_structure(release: Release, files: list[str], options: PipelineOptions, listed: bool):
    """Runs in its own thread, so it opens its own cache connection (sqlite connections stay in one thread)."""
    cache = ResultCache(options.cache_path)
    try:
        return _structure_with_cache(release, files, cache, options, listed)
    finally:
        cache.close()


def _structure_with_cache(
    release: Release, files: list[str], cache: ResultCache, options: PipelineOptions, listed: bool
):

    def run(misses: list[str]) -> tuple[dict, list]:
        result = check_structure(
            release.root, misses, timeout=options.timeout, memory_limit=options.memory_limit, listed=listed
        )
        own = [f for f in result.findings if f.rule not in CROSS_FILE_RULES]  # recomputed from all DAGs each run
        findings, stray = _by_file(own, misses, release.root_paths)
        entries: dict[str, dict[str, Any]] = {
            f: {"findings": findings[f], "dags": [], "seconds": result.import_seconds.get(f)} for f in misses
        }
        for dag in result.dags:
            if dag.file in entries:
                entries[dag.file]["dags"].append({k: v for k, v in asdict(dag).items() if k != "file"})
            else:
                stray.append(dag)
        return entries, stray

    def settled(entry: dict) -> bool:
        return not any(item["rule"] in UNSETTLED_RULES for item in entry["findings"])

    keys = _structure_keys(release, files, options, cache)
    entries, stray, imported = _reuse_or_run(cache, files, keys, run, settled)
    dags = [item for item in stray if isinstance(item, DagInfo)]
    findings = [item for item in stray if isinstance(item, Finding)]
    seconds = {}
    for f in files:
        dags += [DagInfo(**dag, file=f) for dag in entries[f]["dags"]]
        findings += [loaded_finding(item, f) for item in entries[f]["findings"]]
        if entries[f]["seconds"] is not None:
            seconds[f] = entries[f]["seconds"]
    return dags, findings, seconds, imported


def _structure_keys(release: Release, files: list[str], options: PipelineOptions, cache: ResultCache) -> dict[str, str]:
    """A key for each file whose import can be cached: none when a data file or a setting cannot be known, and not
    for a file that imports a module whose content lies outside the release."""
    settings = _airflow_settings()
    if release.data is None or settings is None:
        return {}
    limits = f"timeout={options.timeout} memory_limit={options.memory_limit}"
    # Every Python file can be imported, even one that does not parse: it still decides whether its importers load.
    python = [f for f in release.files if f.endswith(".py")]
    depends = local_dependencies(python, _direct_imports(release, cache))
    context = (release.config, release.data, settings, limits)
    keys = {}
    for f in files:
        used = sorted(depends.get(f, ()))
        fingerprint = release.fingerprints.get(f)
        if fingerprint and all(release.fingerprints.get(x) for x in used):
            modules = [f"{m}={release.fingerprints[m]}" for m in used]
            keys[f] = cache_key("structure", f, fingerprint, *context, *modules)
    return keys


def _direct_imports(release: Release, cache: ResultCache) -> dict[str, set[str]]:
    """The module names each Python file of the release imports (local_imports.direct_imports)."""
    python = [f for f in release.files if f.endswith(".py")]
    return direct_imports(release.root, python, release.fingerprints, cache)


def _airflow_settings() -> str | None:
    try:
        from airflow.configuration import conf

        return _digest([conf.get(section, key, fallback=None) for section, key in STRUCTURE_SETTINGS])
    except Exception:  # noqa: BLE001 - an unreadable configuration: import, but cache nothing
        log.warning("could not read Airflow's parse settings; the structure step is not cached", exc_info=True)
        return None


def _cross_file_findings(dags, dag_owners: dict[str, str]) -> list[Finding]:
    """Rules over the DAGs of all files, cached or fresh: recomputed on every run, never cached per file."""
    if not dags:
        return []

    return duplicate_dag_id_findings(dags) + dag_id_taken_findings(dags, dag_owners)


def _sorted(findings: list[Finding]) -> list[Finding]:
    order = {"error": 0, "warning": 1, "info": 2}
    # The message last: two findings of one rule on one line (two DAGs a factory builds there) keep one order.
    return sorted(findings, key=lambda f: (f.file or "", f.line or 0, order.get(f.severity, 3), f.rule, f.message))
