"""Structural diff between two releases: DAGs added/removed, and per DAG tasks added/removed and changes of
schedule, owners, retries and tags. Built from each release's `validation_summary["dags"]` (what the structure
step loaded), so it needs no release folder and works for pruned releases too.

Shown by `dagops diff`, and by `dagops rollback/deploy --dry-run` before anything changes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_dagops.errors import Conflict
from airflow_dagops.store import reads

if TYPE_CHECKING:
    from airflow_dagops.store.models import Release

# Scalar attributes compared as [old, new]; tags are compared as sets.
SCALARS = ("schedule", "owners", "retries")


def has_structure(summary: dict | None) -> bool:
    """Whether a validation summary records what the structure step loaded (task ids included)."""
    if not summary or not summary.get("structure"):
        return False
    return all("task_ids" in dag for dag in summary.get("dags") or [])


def _by_id(summary: dict) -> dict[str, dict]:
    return {dag["dag_id"]: dag for dag in summary.get("dags") or []}


def diff_dag(old: dict, new: dict) -> dict[str, Any]:
    """What changed in one DAG (only the keys that changed)."""
    changes: dict[str, Any] = {}
    old_tasks, new_tasks = set(old.get("task_ids") or []), set(new.get("task_ids") or [])
    if new_tasks - old_tasks:
        changes["tasks_added"] = sorted(new_tasks - old_tasks)
    if old_tasks - new_tasks:
        changes["tasks_removed"] = sorted(old_tasks - new_tasks)
    for key in SCALARS:
        if old.get(key) != new.get(key):
            changes[key] = [old.get(key), new.get(key)]
    old_tags, new_tags = set(old.get("tags") or []), set(new.get("tags") or [])
    if old_tags != new_tags:
        changes["tags"] = {"added": sorted(new_tags - old_tags), "removed": sorted(old_tags - new_tags)}
    return changes


def diff_summaries(old: dict, new: dict) -> dict[str, Any]:
    """The structural difference between two releases' validation summaries."""
    old_dags, new_dags = _by_id(old or {}), _by_id(new or {})
    changed = {}
    for dag_id in sorted(old_dags.keys() & new_dags.keys()):
        changes = diff_dag(old_dags[dag_id], new_dags[dag_id])
        if changes:
            changed[dag_id] = changes
    return {
        "dags_added": sorted(new_dags.keys() - old_dags.keys()),
        "dags_removed": sorted(old_dags.keys() - new_dags.keys()),
        "changed": changed,
    }


def is_empty(diff: dict) -> bool:
    return not (diff.get("dags_added") or diff.get("dags_removed") or diff.get("changed"))


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "none"
    return str(value)


def describe(diff: dict) -> list[str]:
    """Human lines: '+ dag report_daily', '- dag old', '~ dag etl: schedule @daily → @hourly; tasks +load -extract'."""
    lines = [f"+ dag {dag_id}" for dag_id in diff.get("dags_added", [])]
    lines += [f"- dag {dag_id}" for dag_id in diff.get("dags_removed", [])]
    for dag_id, changes in (diff.get("changed") or {}).items():
        parts = []
        for key in SCALARS:
            if key in changes:
                old, new = changes[key]
                parts.append(f"{key} {_show(old)} → {_show(new)}")
        tasks = [f"+{t}" for t in changes.get("tasks_added", [])] + [f"-{t}" for t in changes.get("tasks_removed", [])]
        if tasks:
            parts.append("tasks " + " ".join(tasks))
        if "tags" in changes:
            tags = changes["tags"]
            parts.append("tags " + " ".join([f"+{t}" for t in tags["added"]] + [f"-{t}" for t in tags["removed"]]))
        lines.append(f"~ dag {dag_id}: " + "; ".join(parts))
    return lines


def _release_info(release: Release | None) -> dict[str, Any] | None:
    if release is None:
        return None
    return {"id": release.id, "commit": release.commit_sha, "status": release.status}


def _note(release: Release) -> str | None:
    summary = release.validation_summary or {}
    if has_structure(summary):
        return None
    if "structure" in summary:
        return f"no structure recorded for release {release.id} (the structure step was skipped when it was validated)"
    return f"no structure recorded for release {release.id} (validated before structural diffs existed)"


def diff_releases(old: Release | None, new: Release) -> dict[str, Any]:
    """The diff between two release rows, with notes for a side that has no structure data (its DAGs unknown)."""
    notes = []
    if old is None:
        notes.append("nothing is live: every DAG of the target is new")
    for release in (old, new):
        note = _note(release) if release is not None else None
        if note:
            notes.append(note)
    old_summary = old.validation_summary if old is not None and has_structure(old.validation_summary) else {}
    new_summary = new.validation_summary if has_structure(new.validation_summary) else {}
    known = (old is None or has_structure(old.validation_summary)) and has_structure(new.validation_summary)
    diff = diff_summaries(old_summary, new_summary) if known else {"dags_added": [], "dags_removed": [], "changed": {}}
    return {"from": _release_info(old), "to": _release_info(new), "complete": known, "notes": notes, **diff}


def release_diff(name: str, from_release: int | str, to_release: int | str) -> dict[str, Any]:
    """The structural diff between two releases of repository `name` (ids or commit shas)."""
    return diff_releases(reads.find_release(name, from_release), reads.find_release(name, to_release))


def live_diff(name: str, target: int | str | None, *, rollback: bool = True) -> dict[str, Any]:
    """The diff from the live release to `target` (a release id or sha; for a rollback, None means the release
    `dagops rollback` would pick). Changes nothing."""
    from airflow_dagops.store.db import session_scope  # lazy: `dagops diff` reads without the ORM (store/reads.py)
    from airflow_dagops.store.models import Release  # lazy: as above
    from airflow_dagops.store.queries import find_release, load_repository, previous_good_release  # lazy: as above

    with session_scope() as session:
        repo = load_repository(session, name)
        if target is not None:
            new = find_release(session, repo, target)
        elif rollback:
            new = previous_good_release(session, repo)
        else:
            raise Conflict("give a version to diff against")
        live = session.get(Release, repo.live_release_id) if repo.live_release_id else None
        return diff_releases(live, new)


def describe_release_diff(result: dict[str, Any]) -> list[str]:
    """Header, notes and change lines of `release_diff` / `live_diff` output."""

    def label(info: dict | None) -> str:
        return f"release {info['id']} ({info['commit'][:12]})" if info else "nothing"

    lines = [f"{label(result['from'])} → {label(result['to'])}"]
    lines += [f"note: {note}" for note in result.get("notes", [])]
    changes = describe(result)
    if changes:
        lines += changes
    elif result.get("complete"):
        lines.append("no structural changes")
    return lines
