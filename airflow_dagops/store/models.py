"""State DB models. Secrets never land here: URLs are credential-free by construction."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class Repository(Base):
    __tablename__ = "dagops_repository"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    url: Mapped[str] = mapped_column(String(2048))
    ref: Mapped[str] = mapped_column(String(255), default="main")
    namespace: Mapped[str] = mapped_column(String(63), unique=True)
    priority: Mapped[int] = mapped_column(Integer, default=100)
    conn_id: Mapped[str | None] = mapped_column(String(250), nullable=True)
    # Airflow connection whose password is this repository's webhook secret (else the global one).
    webhook_conn_id: Mapped[str | None] = mapped_column(String(250), nullable=True)
    subdir: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    poll_interval: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # airflow_dagops/repo_options.py: dag_id clashes, FAB access control, staged rollout.
    on_conflict: Mapped[str] = mapped_column(String(20), default="skip_files", server_default="skip_files")
    access_control: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    promotion: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    isolated_env: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    live_release_id: Mapped[int | None] = mapped_column(
        ForeignKey("dagops_release.id", use_alter=True, name="fk_repo_live_release", ondelete="SET NULL"),
        nullable=True,
    )
    pinned_release_id: Mapped[int | None] = mapped_column(
        ForeignKey("dagops_release.id", use_alter=True, name="fk_repo_pinned_release", ondelete="SET NULL"),
        nullable=True,
    )
    # The last commit a sync fully processed (published or rejected): the sense step compares the
    # remote with it, so a broken commit is validated once, not once a minute.
    last_seen_commit: Mapped[str | None] = mapped_column(String(64), nullable=True)
    last_checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    live_release: Mapped[Release | None] = relationship(foreign_keys=[live_release_id], post_update=True)
    pinned_release: Mapped[Release | None] = relationship(foreign_keys=[pinned_release_id], post_update=True)


class SyncRun(Base):
    __tablename__ = "dagops_sync_run"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("dagops_repository.id", ondelete="CASCADE"), index=True)
    trigger: Mapped[str] = mapped_column(String(20))  # schedule / manual / webhook / cli
    airflow_run_id: Mapped[str | None] = mapped_column(String(250), nullable=True, index=True)
    # queued (triggered in Airflow, task not started) / running / success / unchanged / failed
    status: Mapped[str] = mapped_column(String(20), default="running")
    commit_sha: Mapped[str | None] = mapped_column(String(64), nullable=True)
    release_id: Mapped[int | None] = mapped_column(ForeignKey("dagops_release.id", ondelete="SET NULL"), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(40), nullable=True)  # DagOpsError.code
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Release(Base):
    __tablename__ = "dagops_release"
    __table_args__ = (UniqueConstraint("repository_id", "commit_sha", name="uq_release_repo_commit"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("dagops_repository.id", ondelete="CASCADE"), index=True)
    namespace: Mapped[str] = mapped_column(String(63))
    commit_sha: Mapped[str] = mapped_column(String(64))
    ref: Mapped[str] = mapped_column(String(255))
    author: Mapped[str | None] = mapped_column(String(512), nullable=True)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    committed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    status: Mapped[str] = mapped_column(String(20))  # validated / testing / failed / live / retired
    path: Mapped[str] = mapped_column(String(4096))
    file_count: Mapped[int] = mapped_column(Integer, default=0)
    validation_summary: Mapped[dict] = mapped_column(JSON, default=dict)
    # Set when the release folder was removed to save space; the row (its history) stays.
    pruned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # {file: reason}: files kept out of Airflow (via .airflowignore) because a repository with a higher
    # priority owns one of their dag_ids (airflow_dagops/conflicts.py). Recomputed on every publish.
    hidden_files: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    # The repository's own tests run against this release (airflow_dagops/release_tests.py), with JUnit XML.
    tests: Mapped[dict | None] = mapped_column(JSON, nullable=True)

    findings: Mapped[list[Finding]] = relationship(
        back_populates="release", cascade="all, delete-orphan", order_by="Finding.id"
    )


class Finding(Base):
    __tablename__ = "dagops_finding"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    release_id: Mapped[int] = mapped_column(ForeignKey("dagops_release.id", ondelete="CASCADE"), index=True)
    rule: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(10))  # error / warning / info
    file: Mapped[str | None] = mapped_column(String(4096), nullable=True)
    line: Mapped[int | None] = mapped_column(Integer, nullable=True)
    message: Mapped[str] = mapped_column(Text)
    hint: Mapped[str | None] = mapped_column(Text, nullable=True)

    release: Mapped[Release] = relationship(back_populates="findings")


class DeployEvent(Base):
    __tablename__ = "dagops_deploy_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("dagops_repository.id", ondelete="CASCADE"), index=True)
    from_release_id: Mapped[int | None] = mapped_column(
        ForeignKey("dagops_release.id", ondelete="SET NULL"), nullable=True
    )
    to_release_id: Mapped[int | None] = mapped_column(
        ForeignKey("dagops_release.id", ondelete="SET NULL"), nullable=True
    )
    actor: Mapped[str] = mapped_column(String(250))
    reason: Mapped[str] = mapped_column(String(512))
    # What went live compared with what was live before (airflow_dagops/diff.py); None for pin/unpin.
    diff: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class WebhookDelivery(Base):
    """One received webhook delivery: its id dedupes replays."""

    __tablename__ = "dagops_webhook_delivery"
    __table_args__ = (UniqueConstraint("provider", "delivery_id", name="uq_webhook_delivery"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider: Mapped[str] = mapped_column(String(20))  # github / gitlab / gitea / bitbucket
    delivery_id: Mapped[str] = mapped_column(String(200))
    event: Mapped[str] = mapped_column(String(64))  # push / pull_request / ping / ...
    outcome: Mapped[str] = mapped_column(String(40))  # triggered / coalesced / ignored / ...
    detail: Mapped[dict | None] = mapped_column(JSON, nullable=True)  # repositories, runs, ref, sha
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CheckRun(Base):
    """Validation of a pull/merge request head, reported back to the provider as a commit status."""

    __tablename__ = "dagops_check_run"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("dagops_repository.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(20))
    number: Mapped[int] = mapped_column(Integer)  # pull / merge request number
    ref: Mapped[str] = mapped_column(String(255))  # refs/pull/N/head, refs/merge-requests/N/head
    head_sha: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20))  # queued / running / success / failure / error
    airflow_run_id: Mapped[str | None] = mapped_column(String(250), nullable=True)
    summary: Mapped[dict | None] = mapped_column(JSON, nullable=True)  # Report.summary()
    findings: Mapped[list | None] = mapped_column(JSON, nullable=True)  # [Finding.to_dict()]
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    reported: Mapped[bool] = mapped_column(Boolean, default=False)  # commit status accepted by the provider
    report_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Promotion(Base):
    """One release's way through a repository's promotion stages (airflow_dagops/promotion.py)."""

    __tablename__ = "dagops_promotion"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("dagops_repository.id", ondelete="CASCADE"), index=True)
    release_id: Mapped[int | None] = mapped_column(ForeignKey("dagops_release.id", ondelete="SET NULL"), nullable=True)
    stage: Mapped[str] = mapped_column(String(63))  # the stage the release is live in (or was, once promoted)
    status: Mapped[str] = mapped_column(String(20))  # soaking / promoted / blocked / superseded
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)  # went live in `stage`
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    successes: Mapped[int] = mapped_column(Integer, default=0)  # successful runs counted in `stage`
    # failed_dag_id / failed_run_id when blocked; promoted_by / forced; stages: [{stage, at, by}]
    detail: Mapped[dict | None] = mapped_column(JSON, nullable=True)
