"""Where a repository's releases stand in its promotion stages (`dagops promotion`, `GET .../promotion`): the
stages, what is live in each, the open promotion and recent history. It only reads, through store/reads.py without
the ORM: `dagops promotion` is a new process each time (issue 19, "Fast CLI"). Moving releases is promotion.py.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from airflow_dagops import paths
from airflow_dagops.releases.stages import dag_id_suffix, stage_namespace
from airflow_dagops.statuses import PromotionStatus
from airflow_dagops.store import reads
from airflow_dagops.store.reads import Reader
from airflow_dagops.store.values import iso_time

OPEN = PromotionStatus.waiting()  # a promotion still waiting for something; at most one per repository
HISTORY = 10


def status(name: str) -> dict:
    """The repository's stages, what is live in each, the open promotion and recent history."""
    with reads.reading() as reader:
        repo = reads.repository_row(reader, name)
        config = repo.promotion or {}
        newest = "WHERE repository_id = :id ORDER BY id DESC LIMIT :limit"
        promotions = reader.rows("dagops_promotion", newest, id=repo.id, limit=HISTORY)
        current = next((p for p in promotions if p.status in OPEN), None)
        return {
            "repository": repo.name,
            "stages": _stages_live(reader, repo),
            "soak_runs": config.get("soak_runs"),
            "current": status_dict(reader, repo, current) if current else None,
            "history": [status_dict(reader, repo, p) for p in promotions],
        }


def _stages_live(reader: Reader, repo: Any) -> list[dict]:
    stages = (repo.promotion or {}).get("stages") or []
    rows = []
    for index, stage in enumerate(stages):
        last = index == len(stages) - 1
        namespace = repo.namespace if last else stage_namespace(repo.namespace, stage)
        if last:
            release = reader.first("dagops_release", "WHERE id = :id", id=repo.live_release_id)
        else:
            target = _link_target(paths.namespace_link(namespace))
            # A stage view is named after its release's commit (promotion.py `_stage_view`).
            release = (
                reader.first(
                    "dagops_release", "WHERE repository_id = :id AND commit_sha = :sha", id=repo.id, sha=target.name
                )
                if target
                else None
            )
        rows.append(
            {
                "stage": stage,
                "namespace": namespace,
                "dag_id_suffix": None if last else dag_id_suffix(stage),
                "release_id": release.id if release else None,
                "commit": release.commit_sha if release else None,
            }
        )
    return rows


def _link_target(link: Path) -> Path | None:
    """What a namespace link points at (deploy/publish.py `current_target`, which loads the deploy machinery)."""
    try:
        return Path(os.readlink(link))
    except OSError:
        return None


def status_dict(reader: Reader, repo: Any, promotion: Any) -> dict:
    """One promotion as the faces show it (repository and promotion rows, ORM or plain)."""
    release = None
    if promotion.release_id:
        release = reader.first("dagops_release", "WHERE id = :id", id=promotion.release_id)
    config = repo.promotion or {}
    return {
        "id": promotion.id,
        "repository": repo.name,
        "release_id": promotion.release_id,
        "commit": release.commit_sha if release else None,
        "stage": promotion.stage,
        "status": promotion.status,
        "successes": promotion.successes,
        "soak_runs": config.get("soak_runs"),
        "started_at": iso_time(promotion.started_at),
        "updated_at": iso_time(promotion.updated_at),
        "detail": promotion.detail or {},
        "message": in_words(repo, promotion),
    }


def in_words(repo: Any, promotion: Any) -> str:
    if promotion.status == PromotionStatus.BLOCKED:
        return f"{blocked_reason(repo, promotion)}; override with `dagops promote {repo.name} --force`"
    if promotion.status == PromotionStatus.PROMOTED:
        return f"release {promotion.release_id} was promoted to {promotion.stage} (prod)"
    if promotion.status == PromotionStatus.SUPERSEDED:
        return f"release {promotion.release_id} was superseded by a newer release"
    soak = (repo.promotion or {}).get("soak_runs") or 0
    if not soak:
        return f"release {promotion.release_id} is live in {promotion.stage}; promote it by hand (`dagops promote`)"
    return (
        f"release {promotion.release_id} is soaking in {promotion.stage}: "
        f"{promotion.successes} of {soak} successful runs, no failure"
    )


def blocked_reason(repo: Any, promotion: Any) -> str:
    """Why a blocked promotion waits (repository and promotion rows, ORM or plain)."""
    found = failure(promotion)
    return (
        f"promotion of {repo.name!r} release {promotion.release_id} is blocked: run {found['failed_run_id']} of "
        f"{found['failed_dag_id']} failed in stage {promotion.stage}"
    )


def failure(promotion: Any) -> dict:
    detail = promotion.detail or {}
    return {key: detail.get(key) for key in ("failed_dag_id", "failed_run_id")}
