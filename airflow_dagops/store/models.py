"""State DB models. Secrets never land here: URLs are credential-free by construction.

Size: one module on purpose. Every table of the state DB is declared here, beside the others, so that Alembic's
migrations (store/migrations) and a reader of the schema find it whole in one place; each class is a plain
declaration with no behaviour to split out.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from airflow_dagops.statuses import (
    CheckStatus,
    DiscoveryStatus,
    ExperimentStatus,
    PromotionStatus,
    ReleaseStatus,
    SyncRunStatus,
)

# Plain values, defined in values.py (no SQLAlchemy there, for the reads of store/reads.py); kept importable from here.
from airflow_dagops.store.values import DEFAULT_ON_CONFLICT as DEFAULT_ON_CONFLICT
from airflow_dagops.store.values import ON_CONFLICT as ON_CONFLICT
from airflow_dagops.store.values import aware as aware
from airflow_dagops.store.values import iso_time as iso_time
from airflow_dagops.store.values import utcnow as utcnow

# A status column names its enum in `info["enum"]` (airflow_dagops/statuses.py): the values it may hold. The DB
# column stays a plain string, so adding a status needs no migration; tests/test_statuses.py keeps them in step.


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
    # `scheme://host:port` of the URL when `conn_id` was attached: its credentials go nowhere else
    # (git/credentials.py). Changing only `url` leaves it, so a new host gets no credentials until re-attached.
    conn_origin: Mapped[str | None] = mapped_column(String(300), nullable=True)
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
    # airflow_dagops/alerts: who is told (Airflow notifiers) of which events; the rule that rolls a bad release back.
    alerts: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    auto_rollback: Mapped[dict | None] = mapped_column(JSON, nullable=True)
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
    # queued (triggered in Airflow, task not started) / running / success / unchanged / rejected / failed
    status: Mapped[str] = mapped_column(String(20), default=SyncRunStatus.RUNNING.value, info={"enum": SyncRunStatus})
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
    # validated / testing / failed / live / retired
    status: Mapped[str] = mapped_column(String(20), info={"enum": ReleaseStatus})
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
    # queued / running / success / failure / error
    status: Mapped[str] = mapped_column(String(20), info={"enum": CheckStatus})
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
    # soaking / promoted / blocked / superseded
    status: Mapped[str] = mapped_column(String(20), info={"enum": PromotionStatus})
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)  # went live in `stage`
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    successes: Mapped[int] = mapped_column(Integer, default=0)  # successful runs counted in `stage`
    # failed_dag_id / failed_run_id when blocked; promoted_by / forced; stages: [{stage, at, by}]
    detail: Mapped[dict | None] = mapped_column(JSON, nullable=True)


# -- marketplace (airflow_dagops/marketplace package) -----------------------------------------------------
class MarketplaceCatalog(Base):
    """A git repository of shareable packages: one folder per package, versions by `<package>/v<version>` tags."""

    __tablename__ = "dagops_marketplace_catalog"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    url: Mapped[str] = mapped_column(String(2048))
    ref: Mapped[str] = mapped_column(String(255), default="main")
    priority: Mapped[int] = mapped_column(Integer, default=100)  # lower wins a package name two catalogs share
    conn_id: Mapped[str | None] = mapped_column(String(250), nullable=True)
    conn_origin: Mapped[str | None] = mapped_column(String(300), nullable=True)  # as Repository.conn_origin
    last_commit: Mapped[str | None] = mapped_column(String(64), nullable=True)
    last_refreshed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    problems: Mapped[list | None] = mapped_column(JSON, nullable=True)  # package folders the last refresh skipped
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    packages: Mapped[list[MarketplacePackage]] = relationship(
        back_populates="catalog", cascade="all, delete-orphan", passive_deletes=True
    )


class MarketplacePackage(Base):
    """One version of one package of a catalog, as its dagops-package.yaml describes it (rebuilt on refresh)."""

    __tablename__ = "dagops_marketplace_package"
    __table_args__ = (UniqueConstraint("catalog_id", "name", "version", name="uq_marketplace_package_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    catalog_id: Mapped[int] = mapped_column(ForeignKey("dagops_marketplace_catalog.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(63), index=True)
    version: Mapped[str] = mapped_column(String(64))
    tag: Mapped[str | None] = mapped_column(String(255), nullable=True)  # None: on the catalog ref, not released
    commit_sha: Mapped[str] = mapped_column(String(64))
    folder: Mapped[str] = mapped_column(String(1024))
    # The package yaml's fields plus readme and example_config text: everything `package_info` shows.
    meta: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    catalog: Mapped[MarketplaceCatalog] = relationship(back_populates="packages")


class MarketplaceRating(Base):
    """1-5 stars; one per author and package (re-rating replaces)."""

    __tablename__ = "dagops_marketplace_rating"
    __table_args__ = (UniqueConstraint("package", "author", name="uq_marketplace_rating_author"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    package: Mapped[str] = mapped_column(String(63), index=True)
    author: Mapped[str] = mapped_column(String(250))
    stars: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class MarketplaceReview(Base):
    """Plain text as the author gave it (stripped); every face escapes it when rendering."""

    __tablename__ = "dagops_marketplace_review"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    package: Mapped[str] = mapped_column(String(63), index=True)
    author: Mapped[str] = mapped_column(String(250))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class MarketplaceInstall(Base):
    """A package installed as a repository; `removed_at` is set on uninstall (the row stays: install counts)."""

    __tablename__ = "dagops_marketplace_install"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    package: Mapped[str] = mapped_column(String(63), index=True)
    catalog: Mapped[str] = mapped_column(String(63))
    version: Mapped[str] = mapped_column(String(64))
    repository: Mapped[str] = mapped_column(String(63))
    namespace: Mapped[str] = mapped_column(String(63))
    actor: Mapped[str] = mapped_column(String(250))
    status: Mapped[str] = mapped_column(String(20))  # registered / published / blocked
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    removed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class MarketplaceBadge(Base):
    """The last automated check of a package's newest version (dagops_marketplace_check)."""

    __tablename__ = "dagops_marketplace_badge"
    __table_args__ = (UniqueConstraint("catalog", "package", name="uq_marketplace_badge_package"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    catalog: Mapped[str] = mapped_column(String(63))
    package: Mapped[str] = mapped_column(String(63), index=True)
    version: Mapped[str] = mapped_column(String(64))
    commit_sha: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20))  # passing / failing
    checks: Mapped[dict] = mapped_column(JSON, default=dict)  # step -> passed / failed / skipped
    findings: Mapped[int] = mapped_column(Integer, default=0)  # error-level findings
    warnings: Mapped[int] = mapped_column(Integer, default=0)
    detail: Mapped[list | None] = mapped_column(JSON, nullable=True)  # the error findings (to_dict), at most 20
    checked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


# -- event feed and proposals (airflow_dagops/events.py, airflow_dagops/proposals.py) --------------------------
class Event(Base):
    """One thing that happened (sync, validation, publish, ...): the feed assistants and scripts read. The id is
    the feed's cursor. Repository is a name, not a key: the history outlives a removed repository."""

    __tablename__ = "dagops_event"
    # The feed pages by id, filtered by repository or kind; time filters use created_at.
    __table_args__ = (
        Index("ix_dagops_event_repository_id", "repository", "id"),
        Index("ix_dagops_event_kind_id", "kind", "id"),
        Index("ix_dagops_event_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    kind: Mapped[str] = mapped_column(String(20))  # sync / validation / publish / rollback / deploy / ...
    repository: Mapped[str | None] = mapped_column(String(63), nullable=True)
    release_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    actor: Mapped[str] = mapped_column(String(250))
    outcome: Mapped[str] = mapped_column(String(40))  # success / failed / unchanged / passed / ...
    summary: Mapped[str] = mapped_column(String(1000))
    detail: Mapped[dict | None] = mapped_column(JSON, nullable=True)


class Proposal(Base):
    """Files an assistant or script proposed: validated, then pushed as a branch with a pull request."""

    __tablename__ = "dagops_proposal"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repository: Mapped[str] = mapped_column(String(63), index=True)
    title: Mapped[str] = mapped_column(String(250))
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    files: Mapped[list] = mapped_column(JSON, default=list)  # [{path, size, sha256}]: never the content
    status: Mapped[str] = mapped_column(String(20))  # validating / refused / pushed / opened / failed
    base_commit: Mapped[str | None] = mapped_column(String(64), nullable=True)
    branch: Mapped[str | None] = mapped_column(String(255), nullable=True)
    commit_sha: Mapped[str | None] = mapped_column(String(64), nullable=True)
    pr_url: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    pr_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    findings: Mapped[list | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    actor: Mapped[str] = mapped_column(String(250))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class StoredState(Base):
    """Small named values a system DAG keeps between runs (dagops_events: the last DAG run end date seen)."""

    __tablename__ = "dagops_state"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class BundleVersion(Base):
    """One version of the dagops-releases DAG bundle (airflow_dagops/bundle/): the set of live releases, one
    entry per namespace, under a short id derived from it. Airflow records the id on every DAG version and DAG
    run; a worker that has never seen it rebuilds the folder from this manifest (the commits are in git)."""

    __tablename__ = "dagops_bundle_version"

    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    # {"namespaces": {namespace: {"repository", "url", "conn_id", "subdir", "commit", "airflowignore", "meta"}}}
    manifest: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # When a dag-processor last made it current (a rollback can make an older set current again).
    current_since: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


class LiveNamespace(Base):
    """The live set of `publish_mode = bundle` (airflow_dagops/deploy/live_set.py): which release of which repository
    is live in each namespace, promotion stages included. Written in the transaction that makes a release live; the
    dagops-releases bundle reads it instead of links on disk, so its dag-processor needs no shared volume."""

    __tablename__ = "dagops_live_namespace"

    namespace: Mapped[str] = mapped_column(String(63), primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("dagops_repository.id", ondelete="CASCADE"), index=True)
    release_id: Mapped[int | None] = mapped_column(ForeignKey("dagops_release.id", ondelete="SET NULL"), nullable=True)
    commit_sha: Mapped[str] = mapped_column(String(64))
    # The release folder on the machines that publish: a dag-processor sharing their dagops_home parses it in place.
    path: Mapped[str] = mapped_column(Text)
    # What decides the parsed files besides the commit, as they were when it went live (from the release's manifest).
    release_namespace: Mapped[str | None] = mapped_column(String(63), nullable=True)  # a stage's: its prod namespace
    subdir: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    ref: Mapped[str | None] = mapped_column(String(255), nullable=True)
    airflowignore: Mapped[str | None] = mapped_column(Text, nullable=True)  # dag_id clashes, skipped files
    meta: Mapped[dict | None] = mapped_column(JSON, nullable=True)  # what the cluster policy applies (namespace_meta)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class AlertState(Base):
    """What a repository's alerts last said (airflow_dagops/alerts/state.py): the health state they last knew and
    the last commit whose failed validation was announced. Each change is claimed with a compare-and-set update of
    this row, so exactly one process sends each message."""

    __tablename__ = "dagops_alert_state"

    repository_id: Mapped[int] = mapped_column(ForeignKey("dagops_repository.id", ondelete="CASCADE"), primary_key=True)
    health: Mapped[str] = mapped_column(String(20))  # a HealthState
    failed_commit: Mapped[str | None] = mapped_column(String(64), nullable=True)
    rolled_back_release_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # the last auto-rollback
    last_event: Mapped[str | None] = mapped_column(String(40), nullable=True)  # an AlertEvent
    last_sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)  # why a notifier failed (no secrets)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


# -- discovery and marketplace download statistics (airflow_dagops/discovery, marketplace/stats.py) -------------
class DiscoverySource(Base):
    """A Git host organization (GitHub org, GitLab group, Gitea org) dagops scans for repositories matching a rule;
    set by the `discovery:` block of dagops.yaml. `conn_origin` as Repository.conn_origin: the token goes there only."""

    __tablename__ = "dagops_discovery_source"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    provider: Mapped[str] = mapped_column(String(20))  # github / gitlab / gitea
    url: Mapped[str] = mapped_column(String(2048))  # the organization's URL: https://github.com/acme
    conn_id: Mapped[str | None] = mapped_column(String(250), nullable=True)
    conn_origin: Mapped[str | None] = mapped_column(String(300), nullable=True)
    rule: Mapped[dict] = mapped_column(JSON, default=dict)  # topic / name_pattern / require_file
    register: Mapped[bool] = mapped_column(Boolean, default=False)  # register matches, not only propose them
    namespace_prefix: Mapped[str | None] = mapped_column(String(30), nullable=True)
    last_scanned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class DiscoveredRepository(Base):
    """A repository of a source's organization that matched its rule once. Rows are never deleted by a scan: one
    that stops matching is flagged `removed`, and its registration (if any) stays."""

    __tablename__ = "dagops_discovered_repository"
    __table_args__ = (UniqueConstraint("source", "full_name", name="uq_discovered_repository"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(63), index=True)
    full_name: Mapped[str] = mapped_column(String(512))  # owner/repo, group/subgroup/project
    name: Mapped[str] = mapped_column(String(63))  # the repository (and namespace) name derived from it
    url: Mapped[str] = mapped_column(String(2048))
    ref: Mapped[str] = mapped_column(String(255), default="main")
    topics: Mapped[list | None] = mapped_column(JSON, nullable=True)
    status: Mapped[str] = mapped_column(String(20), info={"enum": DiscoveryStatus})
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)  # why it cannot be registered as proposed
    repository: Mapped[str | None] = mapped_column(String(63), nullable=True)  # the dagops repository, once registered
    first_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    removed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class MarketplaceEvent(Base):
    """One install, update or uninstall of a marketplace package version: the download statistics."""

    __tablename__ = "dagops_marketplace_event"
    __table_args__ = (Index("ix_dagops_marketplace_event_package", "package", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # install / update / uninstall
    package: Mapped[str] = mapped_column(String(63))
    version: Mapped[str] = mapped_column(String(64))  # installed / updated to / uninstalled
    catalog: Mapped[str | None] = mapped_column(String(63), nullable=True)
    repository: Mapped[str | None] = mapped_column(String(63), nullable=True)
    actor: Mapped[str] = mapped_column(String(250))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


# -- A/B experiments (airflow_dagops/experiments, the gate in airflow_dagops/airflow/experiment_gate.py) ----------
class Experiment(Base):
    """Two releases of one DAG side by side on a split of its scheduled runs: A (prod's live release) as `<dag_id>`,
    B (a candidate) as `<dag_id>__ab` in the namespace `<namespace>--ab`. At most one running per repository."""

    __tablename__ = "dagops_experiment"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("dagops_repository.id", ondelete="CASCADE"), index=True)
    dag_id: Mapped[str] = mapped_column(String(250))  # as the release defines it (without `__ab`)
    release_a_id: Mapped[int | None] = mapped_column(
        ForeignKey("dagops_release.id", ondelete="SET NULL"), nullable=True
    )
    release_b_id: Mapped[int | None] = mapped_column(
        ForeignKey("dagops_release.id", ondelete="SET NULL"), nullable=True
    )
    split: Mapped[dict] = mapped_column(JSON)  # {"mode": "alternate"} or {"mode": "percent", "b": 30}
    rule: Mapped[dict] = mapped_column(JSON)  # {"min_runs", "max_p", "auto_promote"}
    # running / promoted / kept / stopped / aborted
    status: Mapped[str] = mapped_column(String(20), info={"enum": ExperimentStatus})
    # Scheduled runs split so far. Every gate's first statement increments it: that locks the row, so assignments
    # are made one at a time (the alternate split is by this count).
    assigned: Mapped[int] = mapped_column(Integer, default=0)
    winner: Mapped[str | None] = mapped_column(String(1), nullable=True)  # A / B once decided
    verdict: Mapped[dict | None] = mapped_column(JSON, nullable=True)  # the last comparison (experiments/stats.py)
    detail: Mapped[dict | None] = mapped_column(JSON, nullable=True)  # why it ended, who ended it, notes
    actor: Mapped[str] = mapped_column(String(250))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ExperimentRun(Base):
    """Which variant owns one run of an experiment's DAG: one row per scheduled logical date (written by the first
    variant's gate to ask), or per run of another type (manual, backfill, ...), which runs where it was started.
    Each variant's gate writes the run id of its own DAG run, so outcomes are found by (dag_id, run_id)."""

    __tablename__ = "dagops_experiment_run"
    __table_args__ = (UniqueConstraint("experiment_id", "run_key", name="uq_experiment_run"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("dagops_experiment.id", ondelete="CASCADE"))
    run_key: Mapped[str] = mapped_column(String(300))  # the logical date (ISO) of a split run; else variant:run_id
    kind: Mapped[str] = mapped_column(String(20))  # split, or the run type of a run that was not split (manual, ...)
    logical_date: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    owner: Mapped[str] = mapped_column(String(1))  # A / B: the variant that runs it (the other skips it)
    a_run_id: Mapped[str | None] = mapped_column(String(250), nullable=True)
    b_run_id: Mapped[str | None] = mapped_column(String(250), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
