"""What happens on a sync, step by step (the git-sync manner; each step is a small function in `sync.py`):

1. sense (`sense.py`, the dagops_sync DAG's first task): a cheap `git ls-remote` of every due repository,
   concurrently in one process; only changed ones get a sync task. A run that names its repository (a webhook,
   "Sync Now") skips this step: its first task runs the steps below itself (meta_dags/dagops_sync.py).
2. sync (`sync.py`, `sync_repository`): check the remote again; if nothing changed, stop. When a change is
   expected (a webhook, "Sync Now", `dagops sync`, a head the sense step saw), the repository lock is free and
   the mirror knows the ref's full name from its last fetch, the check is the fetch itself (step 4 under the
   lock, one remote command in all; step 3 records the run meanwhile); otherwise (a blind poll: an ls-remote
   that finds nothing costs less than a fetch) a lock-free `git ls-remote`, then steps 3-4.
3. take the repository lock (deploy/locks.py), record a sync run (`runs.py`) and repair what a killed sync
   left behind (temp exports, a DB that lags behind the namespace link).
4. fetch into the repository's bare mirror (git/mirror.py), with its Airflow Connection's credentials; after an
   ls-remote, git fetches in a thread while step 3 records the run, and the lock is held until it is done.
5. export the commit into an immutable release folder, hard-linking unchanged files from the live release
   (releases/candidate.py, deploy/releases.py).
6. the release gate (releases/gate.py): validate in the OS sandbox (validate/), dag_id clashes with other
   repositories, skip-files, dependency conflicts with other namespaces, the isolated environment.
7. the repository's own tests when its `.dagops.yaml` asks (releases/tests.py), here or in dagops_test.
8. roll out (releases/rollout.py): into the first promotion stage, or live: swap the namespace link
   atomically, record it, resolve dag_id clashes, prune old releases (releases/golive.py).
9. close the sync run and record events (events/feed.py). A failed step never touches what is live:
   the last good release keeps serving.

`runs.py` also holds on-demand syncs (`request_sync`: "Sync Now", webhooks) and their bookkeeping.
"""
