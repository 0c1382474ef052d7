"""Old versions of the dagops-releases bundle go the way Airflow's own bundle versions go, never while a run uses
one. What each place keeps, and who removes the rest:

- A version's folder on a worker (`<storage>/dagops-releases/versions/<version>`: `get_bundle_version_path`, as
  for GitDagBundle) is Airflow's: every task holds its version's usage file under `<storage>/_tracking` with a
  shared lock while it runs (`BundleVersionLock`), and `BundleUsageTrackingManager` (in the scheduler of a local
  executor, each Celery worker and the dag-processor, every `[dag_processor] stale_bundle_cleanup_interval`)
  removes the folders beyond `stale_bundle_cleanup_min_versions` not used for `stale_bundle_cleanup_age_threshold`,
  skipping any whose lock a running task holds. A later task of that version builds the folder again.
- A build killed halfway leaves a temp folder that no version names, and nothing of Airflow's would ever remove
  it: `remove_unfinished_builds`, under the bundle's lock (so no build is under way on this machine).
- The dag-processor's builds of commits (`builds/<namespace>/<sha>`): its refresh keeps those of the current and
  the previous version (releases_bundle.py).
- A version's row in `dagops_bundle_version` (its manifest: how any machine builds the folder) is kept while
  Airflow's metadata DB names the version (airflow/bundle_usage.py: a DAG run on it, finished ones included, or a
  DAG version parsed from it), so it goes once `airflow db clean` has removed those. The current version, and any
  made current within `stale_bundle_cleanup_age_threshold` (a parse or a new run may be about to name it), always
  stay. The dag-processor checks every `stale_bundle_cleanup_interval`, from its refresh (`forget_unused_versions`).

Cleanup failures are logged, never raised: they must not fail a refresh or a task.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Collection
from datetime import datetime, timedelta
from pathlib import Path

from airflow_dagops.deploy.releases import TMP_PREFIX
from airflow_dagops.store import bundle_versions
from airflow_dagops.store.models import utcnow

log = logging.getLogger(__name__)

# (versions) -> those Airflow still names, or None when this process cannot tell (airflow/bundle_usage.py).
InUse = Callable[[Collection[str]], "set[str] | None"]


def remove_unfinished_builds(versions_dir: Path) -> list[str]:
    """Remove what killed builds left in `versions_dir` (temp folders: a complete version is renamed out of its
    temp folder in one step). The caller holds the bundle's lock, so no build of this machine is under way."""
    removed = []
    for leftover in versions_dir.glob(f"{TMP_PREFIX}*") if versions_dir.is_dir() else []:
        try:
            shutil.rmtree(leftover)
        except OSError as err:
            log.warning("bundle: could not remove the unfinished build %s: %s", leftover, err)
            continue
        removed.append(leftover.name)
    return removed


def forget_unused_versions(in_use: InUse, *, keep_for: timedelta, now: datetime | None = None) -> list[str]:
    """Delete the rows of the versions no dag-processor made current within `keep_for` and that Airflow's metadata
    DB no longer names (see the module doc); returns them. Nothing when Airflow cannot say which it names."""
    candidates = bundle_versions.not_current_since((now or utcnow()) - keep_for)
    if not candidates:
        return []
    used = in_use(candidates)
    if used is None:
        return []
    unused = sorted(set(candidates) - used)
    bundle_versions.forget(unused)
    if unused:
        log.info("bundle: forgot %d version(s) no DAG run or DAG version names any more", len(unused))
    return unused
