"""dag_id clashes between repositories are settled by priority: Airflow never sees two files for one dag_id.

The integration test drives three real repositories through real syncs (the sandboxed structure step finds
the dag_ids) and loads what Airflow parses with its own DagBag after every step, in both publish modes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_dagops.bundle.manifest import read_live_set
from airflow_dagops.deploy import conflicts
from airflow_dagops.deploy.conflicts import Claimant
from airflow_dagops.releases.rollback import get_release
from airflow_dagops.repositories.info import get_repository
from airflow_dagops.repositories.registry import add_repository, remove_repository, update_repository
from airflow_dagops.sync.sync import SyncOutcome, sync_repository
from tests.helpers.parsing import namespaces_of
from tests.helpers.repos import dag_source


def test_resolve_keeps_the_higher_priority_and_frees_what_a_hidden_file_defined():
    company = Claimant("company", "company", 1, [("b", "dags/b.py")])
    # team's x.py defines b and c: it loses b to company, so its claim on c goes with it...
    team = Claimant("team", "team", 5, [("b", "dags/x.py"), ("c", "dags/x.py"), ("t", "dags/t.py")])
    # ...and personal's c, ranked lower still, stays visible.
    personal = Claimant("personal", "personal", 10, [("c", "dags/c.py"), ("t", "dags/t2.py")])
    hidden = conflicts.resolve([personal, team, company])
    assert hidden["company"] == {}
    assert list(hidden["team"]) == ["dags/x.py"]
    assert "owned by repository 'company' (namespace company, priority 1, dags/b.py)" in hidden["team"]["dags/x.py"]
    assert list(hidden["personal"]) == ["dags/t2.py"]  # t belongs to team's visible t.py


def test_equal_priority_is_settled_by_name():
    zeta, alpha = Claimant("zeta", "z", 3, [("d", "d.py")]), Claimant("alpha", "a", 3, [("d", "d.py")])
    assert conflicts.resolve([zeta, alpha]) == {
        "alpha": {},
        "zeta": {"d.py": conflicts.resolve([zeta, alpha])["zeta"]["d.py"]},
    }
    assert "repository 'alpha'" in conflicts.resolve([zeta, alpha])["zeta"]["d.py"]


def test_the_managed_airflowignore_section_keeps_the_authors_lines(tmp_path):
    (tmp_path / ".airflowignore").write_text("helpers/\n")
    assert conflicts.write_hidden(tmp_path, ["dags/b.py"])
    assert conflicts.hidden_in(tmp_path) == ["dags/b.py"]
    assert not conflicts.write_hidden(tmp_path, ["dags/b.py"])  # unchanged: not rewritten
    conflicts.write_hidden(tmp_path, [])
    assert (tmp_path / ".airflowignore").read_text() == "helpers/\n"


# -- three repositories through real syncs ----------------------------------------------------------------
@pytest.fixture(params=["bundle", "symlinks"])
def with_structure(dagops_env, monkeypatch, request):
    """The sandboxed structure step on: it is what tells dagops which dag_ids a release defines. In each publish
    mode: the clash is settled the same way whichever bundle Airflow parses the releases through."""
    monkeypatch.setenv("AIRFLOW__DAGOPS__VALIDATION_SKIP", "security,compat,imports,policy")
    monkeypatch.setenv("AIRFLOW__DAGOPS__PUBLISH_MODE", request.param)
    return dagops_env


def _airflow_sees(dags_folder) -> dict[str, str]:
    """dag_id -> namespace, as Airflow's own DagBag loads what its bundles serve (the dags folder, and in bundle mode
    the dagops-releases bundle); a dag_id parsed twice fails. In bundle mode the live set in the state DB carries
    each release's `.airflowignore` as settled (a dag-processor without the release folders builds from it)."""
    for namespace, entry in read_live_set().items():
        ignore = Path(entry["path"]) / ".airflowignore"
        assert entry["airflowignore"] == (ignore.read_text() if ignore.exists() else None), namespace
    return namespaces_of(dags_folder)


def _sync(name: str) -> SyncOutcome:
    return sync_repository(name, force=True)


def test_three_repositories_with_overlapping_dag_ids(with_structure, git_remote):
    env = with_structure
    company = git_remote({"dags/a.py": dag_source("a"), "dags/b.py": dag_source("b")}, name="company")
    team = git_remote(
        {"dags/b.py": dag_source("b"), "dags/c.py": dag_source("c"), "dags/t.py": dag_source("t")}, name="team"
    )
    personal = git_remote({"dags/c.py": dag_source("c"), "dags/p.py": dag_source("p")}, name="personal")
    add_repository("company", company.url, priority=1)
    add_repository("team", team.url, priority=5)
    add_repository("personal", personal.url, priority=10, on_conflict="block")

    # The lowest priority comes first and takes c; team then wins c and personal's file is left out.
    assert _sync("personal").status == "published"
    outcome = _sync("team")
    assert outcome.status == "published"
    shadows = [f for f in outcome.findings if f["rule"] == "dag-id-shadows"]
    assert [f["file"] for f in shadows] == ["dags/c.py"] and "repository 'personal'" in shadows[0]["message"]
    assert _airflow_sees(env.dags_folder) == {"b": "team", "c": "team", "t": "team", "p": "personal"}

    # company (priority 1) takes b from team's live release.
    assert _sync("company").status == "published"
    assert _airflow_sees(env.dags_folder) == {"a": "company", "b": "company", "c": "team", "t": "team", "p": "personal"}
    team_live = get_release(get_repository("team").live_release_id)
    assert list(team_live["hidden_files"]) == ["dags/b.py"]

    # personal has on_conflict: block: a new commit that still defines c does not go live; the error names team.
    personal.commit("touch p", {"dags/p.py": dag_source("p").replace("test", "touched")})
    blocked = _sync("personal")
    assert blocked.status == "failed"
    taken = [f for f in blocked.findings if f["rule"] == "dag-id-taken"]
    assert taken[0]["severity"] == "error" and "repository 'team'" in taken[0]["message"]
    assert "touched" not in (env.dags_folder / "personal" / "dags" / "p.py").read_text()

    # team (skip_files by default) pushes a commit that still defines b: published without that file.
    team.commit("touch t", {"dags/t.py": dag_source("t").replace("test", "touched")})
    outcome = _sync("team")
    assert outcome.status == "published"
    left_out = [f for f in outcome.findings if f["rule"] == "dag-id-taken"]
    assert left_out[0]["severity"] == "warning" and left_out[0]["file"] == "dags/b.py"
    assert _airflow_sees(env.dags_folder)["b"] == "company"

    # team drops c: personal's copy comes back by itself.
    team.commit("drop c", {"dags/c.py": None})
    assert _sync("team").status == "published"
    assert _airflow_sees(env.dags_folder)["c"] == "personal"
    assert get_release(get_repository("personal").live_release_id)["hidden_files"] in (None, {})

    # Priorities change in place: team now outranks company, so b moves over without any sync.
    update_repository("team", priority=0)
    assert _airflow_sees(env.dags_folder)["b"] == "team"

    # And when team leaves, company's b is back.
    remove_repository("team")
    assert _airflow_sees(env.dags_folder) == {"a": "company", "b": "company", "c": "personal", "p": "personal"}
