"""The validation pipeline: every check over a release folder, incremental through a result cache.

Per-file checks (syntax, security, Airflow 3 compatibility, imports, start dates) are cached per file
content. The structure step (importing DAG files in a sandbox) is cached per file content plus the
content of the local modules that file imports, so a changed helper re-imports the DAGs that use it.
Cross-file rules (duplicate dag_ids) and policies are recomputed from the cached facts each time.
"""

from __future__ import annotations

import ast
import hashlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from airflow_dagops.validate import dependencies as dependency_rules
from airflow_dagops.validate import policy as policy_rules
from airflow_dagops.validate.cache import ResultCache, cache_key
from airflow_dagops.validate.config import ValidationConfig, load_config
from airflow_dagops.validate.files import check_files, list_files
from airflow_dagops.validate.report import Finding, Report
from airflow_dagops.validate.syntax import check_syntax

log = logging.getLogger(__name__)

CheckFn = Callable[[Path, list[str]], list[Finding]]
CROSS_FILE_RULES = {"duplicate-dag-id", "dag-id-taken"}


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
    files = list_files(root)
    if options.only_files is not None:
        files = _with_dependents(root, files, options.only_files)
    file_findings, unreadable = check_files(root, files)
    findings += file_findings
    checkable = [f for f in files if f not in unreadable]
    hashes = _content_hashes(root, checkable)
    cache = ResultCache(options.cache_path)
    try:
        # Syntax first: files that do not parse are not imported. Then the sandboxed imports run in their
        # worker processes while this process runs the other per-file checks: both halves use the 2+ cores.
        per_file, stats = _run_per_file_checks(root, checkable, hashes, config, cache, options.skip, only={"syntax"})
        broken = {f.file for f in per_file if f.rule == "syntax-error"}
        python = [f for f in checkable if f.endswith(".py") and f not in broken]
        run_structure = options.structure and "structure" not in options.skip
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="dagops-structure") as pool:
            structure = pool.submit(_run_structure, root, python, hashes, options) if run_structure else None
            more, more_stats = _run_per_file_checks(
                root, checkable, hashes, config, cache, options.skip, exclude={"syntax"}
            )
            dags, structure_findings, import_seconds, imported = structure.result() if structure else ([], [], {}, 0)
        per_file += more
        for key in ("checked", "cached"):
            stats[key].update(more_stats[key])
        stats["structure_imported"] = imported
        findings += per_file + structure_findings
        findings += _cross_file_findings(dags, options.dag_owners)
        if "policy" not in options.skip:
            findings += policy_rules.check_dags(dags, config.policy)
            findings += policy_rules.check_import_times(import_seconds, config.policy)
        requirements = []
        if "dependencies" not in options.skip:
            # Declarations are read whole each run (cheap: a substring test per file) so the summary always
            # lists every requirement of the release, cached files included.
            declared = dependency_rules.check_declarations(root, checkable)
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


def _content_hashes(root: Path, files: list[str]) -> dict[str, str]:
    """Git's blob ids from the release manifest when there is one (free), else sha256 of the bytes."""
    from airflow_dagops.deploy.releases import read_manifest

    known = (read_manifest(root) or {}).get("files", {})
    return {f: known.get(f) or hashlib.sha256((root / f).read_bytes()).hexdigest() for f in files}


def _run_per_file_checks(
    root,
    files,
    hashes,
    config: ValidationConfig,
    cache: ResultCache,
    skip: set[str],
    *,
    only: set[str] | None = None,
    exclude: frozenset | set = frozenset(),
):
    config_fp = config.fingerprint()
    # The imports check answers depend on which local modules the release has, not just the file.
    local_modules = hashlib.sha256("\n".join(f for f in hashes if f.endswith(".py")).encode()).hexdigest()[:16]
    findings, stats = [], {"checked": {}, "cached": {}}
    for name, check in _per_file_checks().items():
        if (
            name in skip
            or name in exclude
            or (only and name not in only)
            or (name == "start-date" and "policy" in skip)
        ):
            continue
        extra = (config_fp, local_modules) if name == "imports" else (config_fp,)
        keys = {f: cache_key(name, hashes[f], *extra) for f in files}
        cached = cache.get_many(keys.values())
        misses = [f for f in files if keys[f] not in cached]
        fresh = check(root, misses) if misses else []
        by_file: dict[str, list[dict]] = {f: [] for f in misses}
        for finding in fresh:
            if finding.file in by_file:
                by_file[finding.file].append(asdict(finding))
            else:
                findings.append(finding)  # not about one file (e.g. a tool missing): never cached
        cache.put_many({keys[f]: items for f, items in by_file.items()})
        for f in files:
            items = by_file[f] if f in by_file else cached[keys[f]]
            findings.extend(Finding(**item) for item in items)
        stats["checked"][name], stats["cached"][name] = len(misses), len(files) - len(misses)
    return findings, stats


def _run_structure(root, files, hashes, options: PipelineOptions):
    """Runs in its own thread, so it opens its own cache connection (sqlite connections stay in one thread)."""
    cache = ResultCache(options.cache_path)
    try:
        return _structure_with_cache(root, files, hashes, cache, options)
    finally:
        cache.close()


def _structure_with_cache(root, files, hashes, cache: ResultCache, options: PipelineOptions):
    from airflow_dagops.validate.structure import check_structure

    depends = local_dependencies(root, files)
    keys = {
        f: cache_key(
            "structure",
            hashes[f],
            *sorted(hashes[d] for d in depends[f]),
            str(options.timeout),
            str(options.memory_limit),
        )
        for f in files
    }
    cached = cache.get_many(keys.values())
    misses = [f for f in files if keys[f] not in cached]
    fresh = {f: {"dags": [], "findings": [], "seconds": None} for f in misses}
    if misses:
        result = check_structure(root, misses, timeout=options.timeout, memory_limit=options.memory_limit)
        for dag in result.dags:
            fresh[dag.file]["dags"].append(asdict(dag))
        for finding in result.findings:
            if finding.rule not in CROSS_FILE_RULES and finding.file in fresh:
                fresh[finding.file]["findings"].append(asdict(finding))
        for file, seconds in result.import_seconds.items():
            if file in fresh:
                fresh[file]["seconds"] = seconds
        cache.put_many({keys[f]: entry for f, entry in fresh.items()})
    from airflow_dagops.validate.structure import DagInfo

    dags, findings, seconds = [], [], {}
    for f in files:
        entry = fresh.get(f) or cached[keys[f]]
        dags.extend(DagInfo(**d) for d in entry["dags"])
        findings.extend(Finding(**item) for item in entry["findings"])
        if entry["seconds"] is not None:
            seconds[f] = entry["seconds"]
    return dags, findings, seconds, len(misses)


def local_dependencies(root: Path, files: list[str]) -> dict[str, set[str]]:
    """For each file, the release's own modules it imports, transitively (by module name, leniently)."""
    by_name: dict[str, set[str]] = {}
    for f in files:
        stem = Path(f).stem
        by_name.setdefault(Path(f).parent.name if stem == "__init__" else stem, set()).add(f)
    direct = {f: _imported_names(root / f) for f in files}
    result = {}
    for f in files:
        seen, todo = set(), [f]
        while todo:
            current = todo.pop()
            for name in direct.get(current, ()):
                for dep in by_name.get(name, ()):
                    if dep not in seen and dep != f:
                        seen.add(dep)
                        todo.append(dep)
        result[f] = seen
    return result


def _with_dependents(root: Path, files: list[str], changed: set[str]) -> list[str]:
    """The changed files plus every file that imports one of them (its import may now fail)."""
    python = [f for f in files if f.endswith(".py")]
    depends = local_dependencies(root, python)
    return [f for f in files if f in changed or depends.get(f, set()) & changed]


def _imported_names(path: Path) -> set[str]:
    try:
        tree = ast.parse(path.read_bytes())
    except (SyntaxError, ValueError, OSError):
        return set()
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(part for alias in node.names for part in alias.name.split("."))
        elif isinstance(node, ast.ImportFrom):
            names.update((node.module or "").split("."))
            names.update(alias.name for alias in node.names)
    names.discard("")
    return names


def _cross_file_findings(dags, dag_owners: dict[str, str]) -> list[Finding]:
    """Rules over the DAGs of all files, cached or fresh: recomputed on every run, never cached per file."""
    if not dags:
        return []
    from airflow_dagops.validate.structure import dag_id_taken_findings, duplicate_dag_id_findings

    return duplicate_dag_id_findings(dags) + dag_id_taken_findings(dags, dag_owners)


def _sorted(findings: list[Finding]) -> list[Finding]:
    order = {"error": 0, "warning": 1, "info": 2}
    return sorted(findings, key=lambda f: (f.file or "", f.line or 0, order.get(f.severity, 3), f.rule))
