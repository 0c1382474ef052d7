"""The dagops-releases DAG bundle: Airflow-native releases, every DAG run pinned to the release it started on.

With `[dagops] publish_mode = bundle`, publishing writes the namespace links into `<dagops_home>/live` instead of
the dags folder, and Airflow reads them through `DagopsReleasesBundle` (releases_bundle.py), a versioned DAG
bundle registered by `dagops init`:

- manifest.py: the live set (one entry per namespace: repository, commit, its `.airflowignore`, its settings)
  and its version id, a hash of that set. The same set always gets the same id.
- releases_bundle.py: the bundle. In the dag-processor, `refresh()` reads the live set, records its version in
  the state DB (store/bundle_versions.py) and points its tracking folder at the live releases; Airflow stores the
  version on every DAG version and DAG run. On a worker, the bundle gets the run's version and `initialize()`
  builds that version's folder once (materialize.py), so a task runs the code its run started on.
- materialize.py: a version's folder, atomically (temp folder + rename). Each namespace is a hard-linked copy of
  its release folder when this machine has it (shared-volume mode), or exported from git otherwise (the commit
  from a mirror, fetched with the repository's connection when missing): workers need no shared volume.
- view_url.py: links from a version to the commits on the Git host.
- cleanup.py: version folders and rows no DAG run can use any more.
- migrate.py: `dagops bundle migrate --to bundle|symlinks`.
"""
