"""Measurement (l): a 1-file change goes live in `publish_mode = bundle`, next to Airflow's GitDagBundle and
clone + cp, all in the same run on the same 500-file repository and commits.

The dagops subject is everything between a commit and a task able to run it: the sync publishes the release (a
link in the dags folder and the live set in the state DB), the dag-processor's `DagopsReleasesBundle.refresh()`
records the new version, and a worker's `DagopsReleasesBundle(version=...).initialize()` builds that version's
folder (hard links from the release folder: the shared-volume case). Breakdown rows time each of the three alone,
in the same repetitions.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial
from pathlib import Path

from benchmarks import baselines
from benchmarks.engine import BIG_REPO_FILES, _expect, _run_rotated, noop_validator
from benchmarks.env import use_installation
from benchmarks.repos import dag_path, dag_source, make_dag_repo
from benchmarks.timing import Measurement, Samples, cpu_note, ratio_goal, speedup_goal, timed

NAME = "bundled"
PUBLISH_MODE = "AIRFLOW__DAGOPS__PUBLISH_MODE"


class BundleMode:
    """One installation in bundle mode with the 500-file repository published, its dag-processor bundle, and a
    GitDagBundle on the same remote."""

    def __init__(self, work: Path):
        from airflow_dagops import paths
        from airflow_dagops.bundle.releases_bundle import DagopsReleasesBundle
        from airflow_dagops.repositories.registry import add_repository
        from airflow_dagops.sync.sync import sync_repository

        use_installation(work / "bundle-mode")
        self.repo = make_dag_repo(work / "remotes" / NAME, BIG_REPO_FILES)
        add_repository(NAME, self.repo.url, namespace=NAME)
        _expect(sync_repository(NAME, trigger="schedule", validator=noop_validator), "published")
        self.processor = DagopsReleasesBundle(name=paths.RELEASES_BUNDLE, refresh_interval=0)
        self.processor.initialize()
        self.git_bundle = baselines.BundleBaseline(NAME, self.repo)
        self.revision = 0
        self.versions: list[str] = []

    def change_one_file(self) -> str:
        self.revision += 1
        index = (self.revision * 37) % BIG_REPO_FILES
        text = dag_source(f"bench_{index:04d}", index, revision=self.revision)
        return self.repo.commit({dag_path(index): text}, f"change {dag_path(index)}")

    def publish(self, head: str) -> None:
        from airflow_dagops.sync.sync import sync_repository

        _expect(sync_repository(NAME, trigger="schedule", validator=noop_validator), "published", head)

    def refresh(self) -> str:
        self.processor.refresh()
        version = self.processor.get_current_version().version
        self.versions.append(version)
        return version

    def materialize(self, version: str) -> Path:
        from airflow_dagops import paths
        from airflow_dagops.bundle.releases_bundle import DagopsReleasesBundle

        worker = DagopsReleasesBundle(name=paths.RELEASES_BUNDLE, version=version, refresh_interval=0)
        worker.initialize()
        return worker.path

    def go_live(self, head: str, parts: dict[str, Samples], record: bool) -> None:
        """The subject: publish, refresh, build the version; each part's time recorded too."""
        steps: list[tuple[str, Callable[[], object]]] = [
            ("publish", partial(self.publish, head)),
            ("refresh", self.refresh),
        ]
        for part, action in steps:
            elapsed, _ = timed(action)
            if record:
                parts[part].ms.append(elapsed)
        elapsed, path = timed(partial(self.materialize, self.versions[-1]))
        if record:
            parts["materialize"].ms.append(elapsed)
        changed = path / NAME / dag_path((self.revision * 37) % BIG_REPO_FILES)
        if f"Revision {self.revision}." not in changed.read_text():
            raise RuntimeError(f"version {self.versions[-1]} does not hold revision {self.revision}")


def measure_bundle_mode(work: Path, reps: int, progress: Callable[[str], None]) -> Measurement:
    progress(f"(l) running, {reps} repetitions after a warm-up")
    os.environ[PUBLISH_MODE] = "bundle"
    try:
        return _measure(work, reps)
    finally:
        del os.environ[PUBLISH_MODE]


def _time_git_workers(setup: BundleMode, published: list[tuple[str, int]], samples: Samples) -> None:
    """GitDagBundle's worker side: a version checkout of each commit the repetitions published, timed after them all
    (each writes 500 files, whose write-back would otherwise slow whichever subject comes next)."""
    for head, revision in published:
        elapsed, path = timed(partial(setup.git_bundle.worker_checkout, head))
        changed = Path(path) / dag_path((revision * 37) % BIG_REPO_FILES)
        if f"Revision {revision}." not in changed.read_text():
            raise RuntimeError(f"GitDagBundle's checkout of {head[:12]} does not hold revision {revision}")
        samples.ms.append(elapsed)


def _both_sides_note(subject: Samples, refresh: Samples, worker: Samples) -> str:
    both = refresh.median + worker.median
    return (
        "The goal compares with GitDagBundle.refresh(), which is only the dag-processor's side: a worker running a "
        "task of the new version also makes a version checkout of its own (`GitDagBundle(version=…).initialize()`: "
        "a clone of the bundle's bare repository and a checkout of 500 files), which that row does not include, "
        "while dagops' subject does include its worker side (the last breakdown row). The context row times that "
        "checkout for each published commit after the repetitions (on this machine, where the bare repository is "
        f"already fetched): GitDagBundle's two sides together take {both:.0f} ms (sum of the medians), and dagops' "
        f"subject is {subject.median / both:.2f}× that."
    )


def _measure(work: Path, reps: int) -> Measurement:
    setup = BundleMode(work)
    load_before = os.getloadavg()[0]
    subject = Samples("dagops, bundle mode: publish + bundle refresh + version folder built")
    git_bundle = Samples("GitDagBundle.refresh() (same 1-file change; the dag-processor's side only)")
    naive = Samples("`git clone --depth 1` + `cp -r dags`")
    git_worker = Samples(
        "GitDagBundle's worker side: `GitDagBundle(version=…).initialize()` (timed after the repetitions)",
        role="context",
    )
    published: list[tuple[str, int]] = []
    parts = {
        "publish": Samples("↳ `sync_repository` (publish: link and live set)", role="breakdown"),
        "refresh": Samples(
            "↳ `DagopsReleasesBundle.refresh()` (dag-processor: new version recorded)", role="breakdown"
        ),
        "materialize": Samples(
            "↳ `DagopsReleasesBundle(version=…).initialize()` (worker: version folder, hard links)", role="breakdown"
        ),
    }
    for rep in range(reps + 1):  # repetition 0 is the warm-up
        head = setup.change_one_file()
        clone_dir = work / "bundle-clones" / str(rep)
        subjects = [
            (subject, partial(setup.go_live, head, parts, rep > 0)),
            (git_bundle, setup.git_bundle.refresh),
            (naive, partial(baselines.clone_and_copy, setup.repo.url, clone_dir / "clone", clone_dir / "dags")),
        ]
        _run_rotated(rep, subjects, record=rep > 0)
        if setup.git_bundle.version() != head:
            raise RuntimeError("GitDagBundle did not move to the new commit")
        if rep > 0:
            published.append((head, setup.revision))
    baselines.remove_tree(work / "bundle-clones")  # once, after the last repetition (see (b))
    _time_git_workers(setup, published, git_worker)
    return Measurement(
        "l",
        "(l) A 1-file change goes live in bundle mode, 500-file repository",
        "`[dagops] publish_mode = bundle`. A commit changing one DAG file is made outside the timer, then the subject "
        'is timed: `sync_repository(name, trigger="schedule", validator=noop)` (fetch, export by hard links, publish '
        "the link and the live set row), the dag-processor's `DagopsReleasesBundle.refresh()` (reads the live "
        "set, records the new version in the state DB, moves its tracking link), and a worker's "
        "`DagopsReleasesBundle(version=…).initialize()` (builds the version's folder as hard links to the release "
        "folder). Baselines see the same commit, interleaved.",
        [subject, git_bundle, naive, git_worker, *parts.values()],
        [
            ratio_goal("≤ 1.0× GitDagBundle.refresh()", subject, git_bundle, 1.0),
            speedup_goal("≥ 5× faster than clone + cp", subject, naive, 5.0),
        ],
        [
            _both_sides_note(subject, git_bundle, git_worker),
            "The subject's extra cost over symlinks mode is the last two breakdown rows; the first is the same sync "
            "as (b). Beside GitDagBundle.refresh() (two fetches and a checkout that rewrites one file), the subject "
            "does file-system work of its own: 1000 hard links and about 17 new folders per commit (the release "
            "folder, then the worker's version folder), and a `git ls-remote` before its one fetch.",
            f"Load average (1 min) when the run started: {load_before:.1f}; when it ended: {os.getloadavg()[0]:.1f} "
            f"(on {os.cpu_count()} CPUs). Other work on the machine slows every subject; the interleaving keeps the "
            "ratios comparable, not the absolute times.",
            cpu_note(subject, [git_bundle, naive]),
        ],
    )
