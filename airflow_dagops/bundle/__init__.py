"""The dagops-releases DAG bundle: Airflow-native releases, every DAG run pinned to the release it started on.

With `[dagops] publish_mode = bundle` (the default), publishing keeps the namespace links in the dags folder
(left out of Airflow's `dags-folder` bundle by its `.airflowignore`, deploy/dags_folder.py) and records the live
set in the state DB in the transaction that makes a release live (deploy/live_set.py). Airflow reads the releases
through `DagopsReleasesBundle` (releases_bundle.py), a versioned DAG bundle registered by `dagops init`:

- manifest.py: the live set (one entry per namespace: repository, commit, its `.airflowignore`, its settings)
  read from the state DB, and its version id, a hash of that set. The same set always gets the same id.
- releases_bundle.py: the bundle. In the dag-processor, `refresh()` reads the live set, records its version in
  the state DB (store/bundle_versions.py) and points its tracking folder at each namespace's release folder, or
  at a build of its commit from git when this machine has no such folder; Airflow stores the version on every DAG
  version and DAG run. On a worker, the bundle gets the run's version and `initialize()` builds that version's
  folder once (materialize.py), so a task runs the code its run started on. Neither needs a shared volume.
- materialize.py: folders of a version or of one namespace, atomically (temp folder + rename), from this
  machine's release folders (hard links) or from git (the commit from a mirror, fetched with the repository's
  connection when missing).
- cleanup.py: old versions go the way Airflow's own go, never while a run uses one: version folders by Airflow's
  BundleUsageTrackingManager, what killed builds left by the bundle, and the state DB's rows of versions Airflow's
  metadata DB no longer names by the dag-processor's refresh.
- view_url.py: links from a version to the commits on the Git host.
- migrate.py: `dagops bundle migrate --to bundle|symlinks`.
"""
