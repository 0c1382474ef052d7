"""dagops.yaml: load with line-numbered errors, plan like terraform, apply idempotently, export round-trip."""

from __future__ import annotations

import json

import pytest

from airflow_dagops.releases.rollback import pin
from airflow_dagops.repositories import declarative
from airflow_dagops.repositories.declarative import ConfigInvalid
from airflow_dagops.repositories.info import get_repository, list_repositories


@pytest.fixture
def remotes(git_remote):
    return [git_remote(name=f"r{i}") for i in range(3)]


def three(remotes, *, priority_b: int = 50) -> str:
    a, b, c = remotes
    return f"""\
repositories:
  - name: company-workflows
    url: {a.url}
    branch: main
    priority: 1
    namespace: company
  - name: team-b
    url: {b.url}
    priority: {priority_b}
  - name: team-c
    url: {c.url}
    ref: main
    namespace: cee
    poll_interval: 120
    enabled: false
"""


def write(tmp_path, text: str):
    path = tmp_path / "dagops.yaml"
    path.write_text(text)
    return str(path)


def registry() -> dict:
    return {i.name: (i.namespace, i.priority, i.ref, i.enabled, i.poll_interval) for i in list_repositories()}


def test_three_repositories_from_one_file_then_apply_again_is_a_no_op(cli, remotes, tmp_path):
    path = write(tmp_path, three(remotes))
    dry = cli("repos", "apply", "-f", path, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "+ company-workflows" in dry.stdout and "Plan: 3 to add, 0 to change, 0 to remove." in dry.stdout
    assert registry() == {}  # the dry run changed nothing

    first = cli("repos", "apply", "-f", path)
    assert first.exit_code == 0, first.output
    assert registry() == {
        "company-workflows": ("company", 1, "main", True, 60),
        "team-b": ("team-b", 50, "main", True, 60),
        "team-c": ("cee", 100, "main", False, 120),
    }
    again = cli("repos", "apply", "-f", path, "--json")
    assert again.exit_code == 0
    assert json.loads(again.stdout)["actions"] == [] and json.loads(again.stdout)["applied"] == []


def test_a_priority_change_shows_as_tilde_and_applies(cli, remotes, tmp_path):
    cli("repos", "apply", "-f", write(tmp_path, three(remotes)))
    path = write(tmp_path, three(remotes, priority_b=7))
    dry = cli("repos", "apply", "-f", path, "--dry-run")
    assert "~ team-b: priority 50 → 7" in dry.stdout and "1 to change" in dry.stdout
    assert get_repository("team-b").priority == 50
    assert cli("repos", "apply", "-f", path).exit_code == 0
    assert get_repository("team-b").priority == 7
    assert "No changes" in cli("repos", "apply", "-f", path).stdout


def test_prune_removes_what_left_the_file_and_without_it_the_plan_says_kept(cli, remotes, tmp_path, dagops_env):
    cli("repos", "apply", "-f", write(tmp_path, three(remotes)))
    cli("sync", "team-b")
    assert (dagops_env.dags_folder / "team-b").exists()
    two = "\n".join(three(remotes).splitlines()[:6]) + "\n"  # only company-workflows
    path = write(tmp_path, two)
    kept = cli("repos", "apply", "-f", path)
    assert "team-b: not in dagops.yaml, kept (use --prune to remove it)" in kept.stdout
    assert set(registry()) == {"company-workflows", "team-b", "team-c"}

    pruned = cli("repos", "apply", "-f", path, "--prune")
    assert pruned.exit_code == 0 and "- team-b" in pruned.stdout and "- team-c" in pruned.stdout
    assert set(registry()) == {"company-workflows"}
    assert not (dagops_env.dags_folder / "team-b").exists()


def test_export_round_trips(cli, remotes, tmp_path):
    cli("repos", "apply", "-f", write(tmp_path, three(remotes, priority_b=3)))
    cli("sync", "team-b")
    pin("team-b", actor="test")
    out = tmp_path / "exported.yaml"
    assert cli("repos", "export", "-o", str(out)).exit_code == 0
    text = out.read_text()
    assert "pin: " + remotes[1].head() in text and "poll_interval: 120" in text
    assert cli("repos", "export").stdout == text
    dry = cli("repos", "apply", "-f", str(out), "--dry-run", "--prune")
    assert "No changes" in dry.stdout, dry.stdout


def test_pin_and_unpin_from_the_file(cli, remotes, tmp_path):
    a = remotes[0]
    base = f"repositories:\n  - name: team\n    url: {a.url}\n"
    cli("repos", "apply", "-f", write(tmp_path, base))
    cli("sync", "team")
    first = a.head()
    a.commit("second", {"dags/two.py": "x = 1\n"})
    cli("sync", "team")
    pinned = cli("repos", "apply", "-f", write(tmp_path, base + f"    pin: {first[:10]}\n"))
    assert pinned.exit_code == 0 and f"~ team: pin (none) → {first[:12]}" in pinned.stdout
    info = get_repository("team")
    assert info.pinned_release_id and info.live_commit == first
    assert "No changes" in cli("repos", "apply", "-f", write(tmp_path, base + f"    pin: {first}\n")).stdout
    unpinned = cli("repos", "apply", "-f", write(tmp_path, base + "    pin: false\n"))
    assert "~ team: pin" in unpinned.stdout and get_repository("team").pinned_release_id is None


BAD = [
    ("repositories:\n  - name: a\n    url: file:///x\n   priority: 1\n", 4, "not valid YAML"),
    (
        "repositories:\n  - name: a\n    url: file:///x\n    colour: blue\n",
        4,
        "repositories[0].colour: is not a known key",
    ),
    (
        "repositories:\n  - name: a\n    url: file:///x\n  - name: a\n    url: file:///y\n    namespace: other\n",
        4,
        "repositories[1].name: duplicate name 'a' (also at line 2)",
    ),
    (
        "repositories:\n  - name: a\n    url: file:///x\n  - name: b\n    url: file:///y\n    namespace: a\n",
        6,
        "repositories[1].namespace: duplicate namespace 'a' (also at line 2)",
    ),
    (
        "repositories:\n  - name: a\n    url: file:///x\n  - name: b\n    url: file:///y\n    priority: high\n",
        6,
        "repositories[1].priority: 'high' is not of type 'integer'",
    ),
    (
        "repositories:\n  - name: a\n    url: file:///x\n    on_invalid: skip_files\n",
        4,
        "repositories[0].on_invalid: not supported yet in dagops.yaml; put it in the repository's .dagops.yaml",
    ),
    ("repositories:\n  - name: a\n    url: file:///x\n    on_conflict: drop\n", 4, "on_conflict: 'drop' is not one of"),
    (
        "repositories:\n  - name: a\n    url: file:///x\n    access_control:\n      Viewer: [can_fly]\n",
        5,
        "access_control.Viewer[0]: 'can_fly' is not one of",
    ),
    (
        "repositories:\n  - name: a\n    url: file:///x\n    promotion: {stages: [staging, staging]}\n",
        4,
        "promotion: promotion: stage names must be unique",
    ),
    (
        "repositories:\n  - name: a\n    url: file:///x\n    promotion: {stages: [prod], soak_runs: 2}\n",
        4,
        "promotion.stages: ['prod'] is too short",
    ),
    ("repositories:\n  - name: Bad Name\n    url: file:///x\n", 2, "repositories[0].name: invalid repository name"),
    ("repos:\n  - name: a\n", 1, "'repositories' is a required property"),
]


@pytest.mark.parametrize(("text", "line", "message"), BAD)
def test_bad_files_name_the_line_and_key(dagops_env, text, line, message):
    with pytest.raises(ConfigInvalid) as caught:
        declarative.parse(text, source="dagops.yaml")
    assert any(p.startswith(f"dagops.yaml:{line}: ") and message in p for p in caught.value.problems), (
        caught.value.problems
    )


def test_bad_input_changes_nothing(cli, remotes, tmp_path, dagops_env):
    cli("repos", "apply", "-f", write(tmp_path, three(remotes)))
    before = registry()
    # One good change (priority) and one bad line: nothing is applied.
    bad = three(remotes, priority_b=9) + "    rules: {disable: [x]}\n"
    result = cli("repos", "apply", "-f", write(tmp_path, bad), "--prune")
    assert result.exit_code == 2 and "dagops.yaml:16: repositories[2].rules: not supported yet" in result.output
    assert registry() == before
    # A namespace change is refused for the whole plan, with a way out.
    moved = three(remotes, priority_b=9).replace("namespace: cee", "namespace: sea")
    refused = cli("repos", "apply", "-f", write(tmp_path, moved))
    assert refused.exit_code == 2 and "cannot be changed in place" in refused.output
    assert registry() == before
    # A namespace folder dagops does not manage is refused before anything changes.
    (dagops_env.dags_folder / "newcomer").mkdir()
    taken = three(remotes, priority_b=9) + f"  - name: newcomer\n    url: {remotes[0].url}\n"
    occupied = cli("repos", "apply", "-f", write(tmp_path, taken))
    assert occupied.exit_code == 2 and "not managed by dagops" in occupied.output
    assert registry() == before
    # An unreachable new remote is found before anything changes.
    extra = three(remotes, priority_b=9) + f"  - name: gone\n    url: file://{tmp_path}/missing\n"
    unreachable = cli("repos", "apply", "-f", write(tmp_path, extra))
    assert unreachable.exit_code != 0 and "nothing was changed" in unreachable.output
    assert registry() == before


def test_export_round_trips_the_repository_options(cli, remotes, tmp_path):
    a, b, _c = remotes
    text = f"""\
repositories:
  - name: guarded
    url: {a.url}
    on_conflict: block
    access_control:
      data-eng: [can_read, can_edit]
      viewers: [can_read]
  - name: rolled
    url: {b.url}
    promotion:
      stages: [staging, prod]
      soak_runs: 3
"""
    applied = cli("repos", "apply", "-f", write(tmp_path, text))
    assert applied.exit_code == 0, applied.output
    guarded, rolled = get_repository("guarded"), get_repository("rolled")
    assert guarded.on_conflict == "block" and guarded.access_control["viewers"] == ["can_read"]
    assert rolled.promotion == {"stages": ["staging", "prod"], "soak_runs": 3} and rolled.on_conflict == "skip_files"
    assert "No changes" in cli("repos", "apply", "-f", write(tmp_path, text)).stdout

    out = tmp_path / "exported.yaml"
    assert cli("repos", "export", "-o", str(out)).exit_code == 0
    exported = out.read_text()
    assert "on_conflict: block" in exported and "data-eng:" in exported and "soak_runs: 3" in exported
    dry = cli("repos", "apply", "-f", str(out), "--dry-run", "--prune")
    assert dry.exit_code == 0 and "No changes" in dry.stdout, dry.stdout

    # And the other way: a change of each option shows in the plan.
    changed = exported.replace("on_conflict: block", "on_conflict: skip_files").replace("soak_runs: 3", "soak_runs: 5")
    plan = cli("repos", "apply", "-f", write(tmp_path, changed), "--dry-run")
    assert "~ guarded: on_conflict" in plan.stdout and "~ rolled: promotion" in plan.stdout, plan.stdout
