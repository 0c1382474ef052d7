"""`DagopsReleasesBundle`: the live dagops releases as one versioned Airflow DAG bundle.

Registered by `dagops init` (`[dagops] publish_mode = bundle`, the default):

    {"name": "dagops-releases", "classpath": "airflow_dagops.bundle.releases_bundle.DagopsReleasesBundle",
     "kwargs": {"refresh_interval": 5}}

In the dag-processor (no `version`), `path` is a tracking folder of namespace links under Airflow's bundle
storage, changed only by `refresh()`, as GitDagBundle's tracking clone is changed only by its refresh: the files
Airflow parses after a refresh are the ones of the version it records, whatever is published meanwhile. A
refresh reads the live set from the state DB (one query: deploy/live_set.py) and writes only when it changed:
the version's row, then each changed namespace's link, pointed at the release folder when this machine's
dagops_home has it, else at a build of the commit exported from git once (materialize.py). So the dag-processor
needs the state DB and the Git hosts, not the publishers' volume. Adding a repository at run time is one more row:
no restart, no configuration change.

On a worker (`version` given), `path` is `<versions_dir>/<version>`, built on first use by `initialize()` from
the version's manifest in the state DB (materialize.py), with the isolated environments its namespaces record
(built into this machine's dagops_home when missing), and kept while DAG runs use it: Airflow's own
BundleUsageTrackingManager removes version folders the way it removes GitDagBundle's (cleanup.py says what else
goes, and when: the state DB's rows of versions Airflow no longer names, from the dag-processor's refresh).

`view_url_template()` leads to the dagops API's page of a version, which links each namespace's commit on its
Git host (view_url.py): one bundle spans many repositories, so no single Git host URL fits every version.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import shutil
import time
from datetime import timedelta
from pathlib import Path

from airflow.configuration import conf
from airflow.dag_processing.bundles.base import BaseDagBundle, BundleVersion

from airflow_dagops import settings
from airflow_dagops.airflow import namespace_meta
from airflow_dagops.airflow.bundle_usage import versions_in_use
from airflow_dagops.bundle import manifest as live_sets
from airflow_dagops.bundle.cleanup import forget_unused_versions, remove_unfinished_builds
from airflow_dagops.bundle.materialize import build_version, provide_environments, tracked_folder
from airflow_dagops.bundle.view_url import version_page_template
from airflow_dagops.deploy.publish import mark_changed_files
from airflow_dagops.errors import DagOpsError, NotFound
from airflow_dagops.store import bundle_versions

log = logging.getLogger(__name__)


class DagopsReleasesBundle(BaseDagBundle):
    """The releases dagops put live, versioned by the set of them (airflow_dagops/bundle/)."""

    supports_versioning = True

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.tracking_dir = self.base_dir / "tracking"
        self.builds_dir = self.base_dir / "builds"  # commits exported from git for the tracking folder
        self.mirrors_dir = self.base_dir / "mirrors"
        self._current: str | None = None
        self._entries: dict[str, dict] = {}
        self._targets: dict[str, Path] = {}  # namespace -> the folder its tracking link leads to
        self._last_cleanup = -math.inf  # monotonic time of the last cleanup of unused versions: none yet

    @property
    def path(self) -> Path:
        return self.versions_dir / self.version if self.version else self.tracking_dir

    def initialize(self) -> None:
        if self.version:
            self._materialize()
            # Every time, not only when the folder is built: an environment pruned since is built again.
            provide_environments(self.path)
        else:
            self.refresh()
        super().initialize()

    def get_current_version(self) -> BundleVersion | None:
        if self.version:
            return BundleVersion(version=self.version)
        if self._current is None:
            self.refresh()
        return BundleVersion(version=self._current or live_sets.version_of({}))

    def refresh(self) -> None:
        if self.version:
            raise DagOpsError("a versioned dagops-releases bundle is never refreshed: its version is fixed")
        with self.lock():
            self._follow_live_set()
        self._forget_unused_versions()

    def _follow_live_set(self) -> None:
        """Make the live set in the state DB this bundle's current version, if it is not already."""
        entries = live_sets.read_live_set()
        version = live_sets.version_of(entries)
        if version == self._current:
            return
        # Every folder first: a commit that cannot be fetched leaves the previous version serving, whole.
        targets = {ns: self._folder_of(ns, entry) for ns, entry in entries.items()}
        changed = live_sets.changed(self._previous_entries(), entries)
        # Recorded before Airflow sees the id, so every DAG version and run that names it can be rebuilt.
        created = bundle_versions.record(version, {"namespaces": entries, "changed": changed})
        self._track(entries, targets)
        log.info(
            "bundle %s: version %s (%s)%s",
            self.name,
            version,
            live_sets.describe(entries),
            "" if created else ", seen before",
        )
        self._prune_builds(keep={*targets.values(), *self._targets.values()})
        self._current, self._entries, self._targets = version, entries, targets

    def _forget_unused_versions(self) -> None:
        """Every `[dag_processor] stale_bundle_cleanup_interval`, as Airflow removes stale version folders: the
        rows of versions Airflow no longer names (cleanup.py). Failures are logged, never raised."""
        interval = conf.getint("dag_processor", "stale_bundle_cleanup_interval", fallback=1800)
        if interval <= 0 or time.monotonic() - self._last_cleanup < interval:
            return
        self._last_cleanup = time.monotonic()
        keep_for = timedelta(seconds=conf.getint("dag_processor", "stale_bundle_cleanup_age_threshold", fallback=21600))
        try:
            forget_unused_versions(functools.partial(versions_in_use, self.name), keep_for=keep_for)
        except Exception as err:  # the state DB unreachable, say: the next round tries again
            log.warning("bundle %s: could not forget unused versions: %s", self.name, err)

    def _folder_of(self, namespace: str, entry: dict) -> Path:
        return tracked_folder(namespace, entry, builds_dir=self.builds_dir, mirrors_dir=self.mirrors_dir)

    def _previous_entries(self) -> dict[str, dict]:
        """What was served before: this process's last set, or after a restart the one a dag-processor recorded
        last (so the first version after a restart still knows which namespace it changed)."""
        if self._entries or self._current is not None:
            return self._entries
        current = bundle_versions.current()
        return (current[1].get("namespaces") or {}) if current else {}

    def view_url_template(self) -> str | None:
        return self._view_url_template or version_page_template(settings.public_base_url())

    def _track(self, entries: dict[str, dict], targets: dict[str, Path]) -> None:
        """Point the tracking folder's namespace links at their folders: each namespace's settings snapshot first
        (the cluster policy reads it when it parses; written when it changed since this process's last version),
        then one atomic rename per link that changed; links of namespaces that left are removed."""
        self.tracking_dir.mkdir(parents=True, exist_ok=True)
        for namespace, target in targets.items():
            meta = entries[namespace].get("meta")
            if namespace not in self._entries or self._entries[namespace].get("meta") != meta:
                namespace_meta.write_snapshot(self.tracking_dir, namespace, meta)
            link = self.tracking_dir / namespace
            previous = Path(os.readlink(link)) if link.is_symlink() else None
            if previous == target:
                continue
            # A build of an older commit (a rollback, here with no shared volume) holds files older than their
            # last parse: marked, the dag-processor parses them at once (deploy/publish.py says why).
            mark_changed_files(previous, target)
            temp = self.tracking_dir / f".{namespace}.tmp-{os.getpid()}"
            temp.unlink(missing_ok=True)
            os.symlink(target, temp)
            os.replace(temp, link)
        for name in os.listdir(self.tracking_dir):
            if not name.startswith(".") and name not in targets:
                (self.tracking_dir / name).unlink(missing_ok=True)
                namespace_meta.write_snapshot(self.tracking_dir, name, None)

    def _prune_builds(self, *, keep: set[Path]) -> None:
        """Remove the builds neither this version nor the previous one uses (a parse of the previous version may
        still be reading its files). Failures are logged, never raised: cleanup must not fail a refresh."""
        if not self.builds_dir.is_dir():
            return
        for build in self.builds_dir.glob("*/*"):
            if build.is_dir() and build not in keep and not build.name.startswith("."):
                try:
                    shutil.rmtree(build)
                except OSError as err:
                    log.warning("bundle %s: could not remove the old build %s: %s", self.name, build, err)

    def _materialize(self) -> None:
        assert self.version is not None
        if self.path.is_dir():
            return  # built before, by this task's predecessors on this machine: version folders never change
        with self.lock():
            if self.path.is_dir():
                return
            remove_unfinished_builds(self.versions_dir)
            manifest = bundle_versions.load(self.version)
            if manifest is None:
                raise NotFound(
                    f"bundle {self.name} has no version {self.version!r} in the dagops state DB "
                    f"({settings.sql_alchemy_conn().split('://')[0]}); is this worker's [dagops] sql_alchemy_conn "
                    "the dag-processor's?"
                )
            build_version(manifest, self.path, mirrors_dir=self.mirrors_dir)
            log.info("bundle %s: built version %s at %s", self.name, self.version, self.path)
