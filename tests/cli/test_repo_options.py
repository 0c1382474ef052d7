"""`dagops repos add --on-conflict / --access-control` and how `dagops repos show` prints the options."""

from __future__ import annotations

import json

import pytest

from airflow_dagops.airflow import namespace_meta
from airflow_dagops.repositories.info import get_repository, list_repositories
from airflow_dagops.repositories.registry import add_repository


def test_add_with_on_conflict_and_access_control_then_show(cli, git_remote):
    remote = git_remote()
    added = cli(
        "repos", "add", "team", remote.url,
        "--on-conflict", "block",
        "--access-control", "data-eng=can_read,can_edit",
        "--access-control", "viewers=can_read",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    info = get_repository("team")
    assert info.on_conflict == "block"
    assert info.access_control == {"data-eng": ["can_edit", "can_read"], "viewers": ["can_read"]}
    # What the cluster policy will apply to the namespace's DAGs (written at once, before the first sync).
    assert namespace_meta.read("team")["access_control"] == info.access_control

    shown = cli("repos", "show", "team")
    assert shown.exit_code == 0, shown.output
    lines = _lines(shown.stdout)
    assert "on_conflict: block" in lines
    assert "access_control: data-eng=can_edit,can_read; viewers=can_read" in lines
    assert "promotion: none" in lines
    as_json = json.loads(cli("repos", "show", "team", "--json").stdout)
    assert as_json["on_conflict"] == "block" and as_json["access_control"]["viewers"] == ["can_read"]


def test_show_prints_defaults_and_a_promotion(cli, git_remote):
    add_repository("team", git_remote().url, promotion={"stages": ["staging", "prod"], "soak_runs": 3})
    shown = cli("repos", "show", "team")
    assert shown.exit_code == 0, shown.output
    lines = _lines(shown.stdout)
    assert "on_conflict: skip_files" in lines
    assert "access_control: none (Airflow's defaults)" in lines
    assert "promotion: stages staging → prod, soak_runs 3" in lines


def _lines(text: str) -> list[str]:
    """`repos show`'s lines with the alignment spaces taken out."""
    return [" ".join(line.split()) for line in text.splitlines()]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--on-conflict", "overwrite"], "on_conflict must be one of skip_files, block"),
        (["--access-control", "data-eng"], "--access-control takes ROLE=PERMISSION"),
        (["--access-control", "=can_read"], "--access-control takes ROLE=PERMISSION"),
        (["--access-control", "data-eng="], "--access-control takes ROLE=PERMISSION"),
        (["--access-control", "data-eng=can_fly"], "unknown permission 'can_fly'"),
    ],
)
def test_bad_option_values_exit_2_and_register_nothing(cli, git_remote, args, message):
    result = cli("repos", "add", "team", git_remote().url, *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert list_repositories() == []
