"""Measurement (l): a 1-file change goes live in `publish_mode = bundle`, next to Airflow's GitDagBundle and
clone + cp, all in the same run on the same 500-file repository and commits.

The dagops subject is what GitDagBundle.refresh() does for the dag-processor: the sync publishes the release (a
link in the dags folder and the live set in the state DB) and the dag-processor's `DagopsReleasesBundle.refresh()`
records the new version it parses. Breakdown rows time each of the two alone, in the same repetitions. The worker's
side is timed beside it, not in it, on both sides: `DagopsReleasesBundle(version=...).initialize()` builds that
version's folder (hard links from the release folder: the shared-volume case), `GitDagBundle(version=...)` clones and
checks out the commit.
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

        _expect(sync_repository(NAME, trigger="cli", validator=noop_validator), "published", head)

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
        """The subject: publish, then the dag-processor's refresh (the new version is what it parses); each part's
        time recorded too."""
        for part, action in (("publish", partial(self.publish, head)), ("refresh", self.refresh)):
            elapsed, _ = timed(action)
            if record:
                parts[part].ms.append(elapsed)

    def build_worker_version(self, worker: Samples, record: bool) -> None:
        """A worker's side, after the subject: the new version's folder built (timed), and checked to hold the
        change."""
        elapsed, path = timed(partial(self.materialize, self.versions[-1]))
        if record:
            worker.ms.append(elapsed)
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


def _both_sides_note(subject: Samples, worker: Samples, refresh: Samples, git_worker: Samples) -> str:
    ours, theirs = subject.median + worker.median, refresh.median + git_worker.median
    return (
        "Both goals compare the dag-processor's side: GitDagBundle.refresh() fetches and checks out the change for the "
        "dag-processor, as dagops' publish and bundle refresh make it live for it. A worker that runs a task of the "
        "new version then does work of its own on either side, timed after each repetition (dagops) or after them "
        "all (GitDagBundle, whose checkout writes 500 files that would slow the next subject): dagops builds the "
        "version's folder of hard links, GitDagBundle clones its bare repository and checks out 500 files. Both "
        f"sides together (sums of the medians): dagops {ours:.0f} ms, GitDagBundle {theirs:.0f} ms "
        f"({ours / theirs:.2f}×); dagops with its worker side against GitDagBundle.refresh() alone: "
        f"{ours / refresh.median:.2f}×."
    )


def _measure(work: Path, reps: int) -> Measurement:
    setup = BundleMode(work)
    load_before = os.getloadavg()[0]
    subject = Samples("dagops, bundle mode: publish + the dag-processor's bundle refresh (new version live)")
    git_bundle = Samples("GitDagBundle.refresh() (same 1-file change; the dag-processor's side only)")
    naive = Samples("`git clone --depth 1` + `cp -r dags`")
    copied = Samples("`cp -r dags` alone (the 500 files written again: how fast files are created now)", role="context")
    worker = Samples(
        "dagops' worker side: `DagopsReleasesBundle(version=…).initialize()` (version folder, hard links)",
        role="context",
    )
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
    }
    for rep in range(reps + 1):  # repetition 0 is the warm-up
        head = setup.change_one_file()
        clone_dir = work / "bundle-clones" / str(rep)
        subjects = [
            (subject, partial(setup.go_live, head, parts, rep > 0)),
            (git_bundle, setup.git_bundle.refresh),
            (naive, partial(baselines.clone_and_copy, setup.repo.url, clone_dir / "clone", clone_dir / "dags")),
            (copied, partial(baselines.copy_folder, setup.repo.path / "dags", clone_dir / "copy")),
        ]
        _run_rotated(rep, subjects, record=rep > 0)
        setup.build_worker_version(worker, record=rep > 0)
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
        'is timed: `sync_repository(name, trigger="cli", validator=noop)` (fetch, export by hard links, publish '
        "the link and the live set row), the dag-processor's `DagopsReleasesBundle.refresh()` (reads the live "
        "set, records the new version in the state DB, moves its tracking link). Then, outside the subject, a "
        "worker's `DagopsReleasesBundle(version=…).initialize()` builds the version's folder (hard links to the "
        "release folder: the shared-volume case) and the changed file is checked there. Baselines see the same "
        "commit, interleaved.",
        [subject, git_bundle, naive, copied, worker, git_worker, *parts.values()],
        [
            ratio_goal("≤ 1.0× GitDagBundle.refresh()", subject, git_bundle, 1.0),
            speedup_goal("≥ 5× faster than clone + cp", subject, naive, 5.0),
        ],
        [
            _both_sides_note(subject, worker, git_bundle, git_worker),
            "The subject's extra cost over symlinks mode is the bundle refresh; the sync is the same as (b). Beside "
            "GitDagBundle.refresh() (two fetches and a checkout that rewrites one file), the sync makes 500 hard "
            "links and about 17 new folders per commit (the release folder), and the worker side as many again.",
            "Against clone + cp, the ratio follows how fast this machine creates files at the time (the `cp -r dags` "
            "row), as in (b): when writing files is quick, clone + cp takes ~90 ms and the ratio is that of (b).",
            f"Load average (1 min) when the run started: {load_before:.1f}; when it ended: {os.getloadavg()[0]:.1f} "
            f"(on {os.cpu_count()} CPUs). Other work on the machine slows every subject; the interleaving keeps the "
            "ratios comparable, not the absolute times.",
            cpu_note(subject, [git_bundle, naive]),
        ],
    )
