"""Airflow's listing kept between validations (validate/listing_cache.py) answers as Airflow listing the folder anew.

Each case edits a release the ways that change what Airflow parses (a file stops or starts saying "airflow" and
"dag", `.airflowignore`, a new file, a dbt project, a link, Airflow's settings), then compares the kept listing with
`files.parse_view` on the folder as it is. The tests also check that the kept listing is used when only the content
of Python files changed, and that Airflow lists the folder again otherwise.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from airflow_dagops.validate import listing_cache
from airflow_dagops.validate.cache import ResultCache
from airflow_dagops.validate.files import list_files, parse_view
from airflow_dagops.validate.pipeline import Release, _airflow_settings
from tests.validate.test_cache_truth import write

DAGISH = "from airflow.sdk import DAG\n\nwith DAG('d', schedule=None):\n    pass\n"
PLAIN = "def helper():\n    return 1\n"  # never says "airflow": safe mode skips it


@pytest.fixture
def listing(tmp_path, monkeypatch):
    """`view(root)`: the kept listing's view of `root`, checked against Airflow listing it anew; `kept` counts the
    views that came from a kept listing brought up to date rather than from Airflow listing the folder."""
    cache = ResultCache(tmp_path / "cache.db")
    kept = []
    real = listing_cache._brought_up_to_date

    def brought_up_to_date(*args):
        record = real(*args)
        kept.extend([record] if record is not None else [])
        return record

    monkeypatch.setattr(listing_cache, "_brought_up_to_date", brought_up_to_date)

    def view(root: Path):
        files = list_files(root)
        release = Release(root, files, "config")
        kept = listing_cache.cached_parse_view(
            os.path.realpath(root), files, release.fingerprints, _airflow_settings(), cache
        )
        fresh = parse_view(root, files)
        assert (kept.dag_files, kept.not_parsed) == (fresh.dag_files, fresh.not_parsed)
        return kept

    view.kept = kept
    yield view
    cache.close()


def test_a_file_that_stops_or_starts_saying_airflow_is_listed_as_airflow_would(tmp_path, listing):
    root = write(tmp_path / "release", {"dags/a.py": DAGISH, "dags/b.py": DAGISH, "helpers/c.py": PLAIN})
    assert listing(root).dag_files == {"dags/a.py", "dags/b.py"}
    write(root, {"dags/a.py": PLAIN, "helpers/c.py": DAGISH})
    assert listing(root).dag_files == {"dags/b.py", "helpers/c.py"}
    write(root, {"dags/a.py": DAGISH + "# edited\n"})
    assert listing(root).dag_files == {"dags/a.py", "dags/b.py", "helpers/c.py"}
    assert len(listing.kept) == 2  # only Python content changed: the kept listing, brought up to date


def test_an_ignored_file_stays_unlisted_whatever_its_content(tmp_path, listing):
    root = write(tmp_path / "release", {"a.py": DAGISH, "wip.py": PLAIN, ".airflowignore": "wip.py\n"})
    assert listing(root).not_parsed["wip.py"].startswith("matched by .airflowignore")
    write(root, {"wip.py": DAGISH})
    view = listing(root)
    assert "wip.py" not in view.dag_files and len(listing.kept) == 1


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({".airflowignore": "a.py\n"}, id="airflowignore"),
        pytest.param({"new.py": DAGISH}, id="a-new-file"),
        pytest.param({"dbt_project.yml": "name: x\n", "models/m.py": DAGISH}, id="a-dbt-project"),
        pytest.param({"pkg/setup.py": "", "pkg/mod.py": DAGISH}, id="a-vendored-package"),
    ],
)
def test_anything_but_python_content_has_airflow_list_the_folder_again(tmp_path, listing, change):
    root = write(tmp_path / "release", {"a.py": DAGISH, "b.py": DAGISH})
    listing(root)
    write(root, change)
    listing(root)
    assert listing.kept == []


def test_safe_mode_off_is_another_listing(tmp_path, listing, monkeypatch):
    root = write(tmp_path / "release", {"a.py": DAGISH, "plain.py": PLAIN})
    assert listing(root).dag_files == {"a.py"}
    monkeypatch.setenv("AIRFLOW__CORE__DAG_DISCOVERY_SAFE_MODE", "False")
    assert listing(root).dag_files == {"a.py", "plain.py"}
    assert listing.kept == []


def test_a_link_out_of_the_release_is_never_judged_from_a_kept_listing(tmp_path, listing):
    outside = write(tmp_path / "outside", {"shared.py": PLAIN})
    root = write(tmp_path / "release", {"a.py": DAGISH})
    (root / "shared.py").symlink_to(outside / "shared.py")
    listing(root)
    write(outside, {"shared.py": DAGISH})  # changed where the release cannot see it
    listing(root)
    assert listing.kept == []


def test_a_file_airflow_lists_but_the_release_listing_leaves_out_keeps_nothing(tmp_path, listing):
    """Airflow walks `__pycache__` folders; the release listing (and so the fingerprints) leaves them out."""
    root = write(tmp_path / "release", {"a.py": DAGISH, "__pycache__/odd.py": PLAIN})
    listing(root)
    write(root, {"__pycache__/odd.py": DAGISH})
    listing(root)
    assert listing.kept == []


def test_a_hundred_random_edits_list_as_airflow_does(tmp_path, listing):
    chooser = random.Random(20261204)
    root = write(tmp_path / "release", {f"dags/f{i}.py": DAGISH for i in range(8)})
    contents = [DAGISH, PLAIN, "# airflow\n", "# a DAG\n", "x = 'AIRFLOW dag'\n", "asset = 'airflow'\n"]
    for _ in range(100):
        kind = chooser.random()
        if kind < 0.7:
            write(root, {f"dags/f{chooser.randrange(8)}.py": chooser.choice(contents)})
        elif kind < 0.85:
            write(root, {"dags/.airflowignore": "\n".join(f"f{chooser.randrange(8)}.py" for _ in range(2))})
        else:
            extra = root / "dags" / f"extra{chooser.randrange(3)}.py"
            extra.unlink() if extra.exists() else write(root, {str(extra.relative_to(root)): chooser.choice(contents)})
        listing(root)
