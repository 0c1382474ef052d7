"""The MCP face on a real api-server, driven by the `mcp` SDK's own client (streamable HTTP): an assistant lists the
tools, validates a broken DAG and gets the finding, fixes it, proposes it (a branch and a pull request on a local
git repository with a fake pull-request API), triggers a published DAG and reads how its run went; a viewer's
token is refused the write tools; no answer holds a secret."""

from __future__ import annotations

import json
import subprocess
from contextlib import suppress

import anyio
import pytest
import requests
from mcp import ClientSession
from mcp.client.streamable_http import streamablehttp_client

from airflow_dagops.mcp.tools import PERMISSION, WRITE_TOOLS
from tests.helpers.airflow import BIN
from tests.helpers.repos import Bare
from tests.helpers.servers import wait_for

pytestmark = pytest.mark.e2e

REPOSITORY, DAG_ID = "mcpteam", "mcp_hello"
GIT_TOKEN = "ghp_" + "McpT0kenNeverShown" * 2  # noqa: S105 - a fake token, searched for in every answer
JWT_SECRET = "e2e-test-secret-not-for-production"  # noqa: S105 - the shared instance's, searched for too
MARKER = "failing on purpose: MCP-LOG-MARKER"
PUBLISHED_DAG = f'''"""Says hello, or fails on purpose when its conf asks to (the MCP test reads its log)."""
import pendulum
from airflow.sdk import dag, get_current_context, task


@dag(dag_id="{DAG_ID}", schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False, tags=["test"],
     default_args={{"owner": "mcp-team", "retries": 0}})
def {DAG_ID}():
    @task
    def greet():
        if (get_current_context()["dag_run"].conf or {{}}).get("fail"):
            raise RuntimeError("{MARKER}")
        return "hello"

    greet()


{DAG_ID}()
'''
BROKEN = "from airflow.sdk import dag\n\n\ndef nightly_export(:\n    pass\n"
FIXED = PUBLISHED_DAG.replace(DAG_ID, "mcp_nightly_export").replace("Says hello", "Exports nightly")


@pytest.fixture
def published(real_airflow, git_remote, tmp_path, fake_host):
    """Repository `mcpteam` on a bare remote, with a GitHub connection pointing at the fake PR API, published in
    the shared real Airflow, its DAG parsed and unpaused."""
    source = git_remote({"dags/mcp_hello.py": PUBLISHED_DAG})
    bare = tmp_path / "mcpteam.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(source.path), str(bare)], check=True)
    extra = json.dumps({"provider": "github", "api_url": fake_host.url})
    connection = {"connection_id": "mcp_git", "conn_type": "git", "login": "bot", "password": GIT_TOKEN, "extra": extra}
    assert real_airflow.api("POST", "connections", json=connection).status_code in (201, 409)
    real_airflow.run(str(BIN / "dagops"), "repos", "add", REPOSITORY, f"file://{bare}", "--conn-id", "mcp_git")
    try:
        real_airflow.run(str(BIN / "dagops"), "sync", REPOSITORY, timeout=300)
        wait_for(lambda: DAG_ID in real_airflow.dag_ids(), timeout=120, what=f"{DAG_ID} parsed by Airflow")
        assert real_airflow.api("PATCH", f"dags/{DAG_ID}", json={"is_paused": False}).status_code == 200
        yield Bare(bare)
    finally:
        with suppress(RuntimeError):
            real_airflow.run(str(BIN / "dagops"), "repos", "remove", REPOSITORY)
        real_airflow.api("DELETE", "connections/mcp_git")


def viewer_token(airflow) -> str:
    """A SimpleAuthManager VIEWER's JWT, signed by the instance's own auth manager and secret."""
    code = (
        "from airflow.api_fastapi.app import create_auth_manager\n"
        "from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser\n"
        "print(create_auth_manager().generate_jwt(SimpleAuthManagerUser(username='viewer', role='VIEWER')))\n"
    )
    return airflow.run(str(BIN / "python"), "-c", code).stdout.strip().splitlines()[-1]


class Assistant:
    """An MCP client session as one Airflow user; keeps every answer's text for the secret scan."""

    def __init__(self, session: ClientSession, texts: list[str]):
        self.session, self.texts = session, texts

    async def call(self, tool: str, **arguments) -> tuple[bool, dict]:
        result = await self.session.call_tool(tool, arguments)
        text = result.content[0].text
        self.texts.append(text)
        return result.isError, json.loads(text)

    async def ok(self, tool: str, **arguments) -> dict:
        failed, answer = await self.call(tool, **arguments)
        assert not failed, answer
        return answer


async def _as(url: str, token: str, work, texts: list[str]):
    headers = {"Authorization": f"Bearer {token}"}
    async with streamablehttp_client(url, headers=headers) as (read, write, _), ClientSession(read, write) as session:
        await session.initialize()
        return await work(Assistant(session, texts))


async def _wait_for_run(assistant: Assistant, run_id: str) -> dict:
    with anyio.fail_after(180):
        while True:
            status = await assistant.ok("dag_run_status", dag_id=DAG_ID, run_id=run_id)
            if status["state"] in ("success", "failed"):
                return status
            await anyio.sleep(1)  # a run in Airflow: nothing to wait on but its state


def test_an_assistant_writes_proposes_and_runs_dags(real_airflow, published, fake_host):
    url = f"{real_airflow.url}/dagops/mcp"
    texts: list[str] = []

    async def as_admin(assistant: Assistant) -> dict:
        seen: dict = {"tools": {t.name for t in (await assistant.session.list_tools()).tools}}
        draft = [{"path": "dags/nightly_export.py", "content": BROKEN}]
        seen["broken"] = await assistant.ok("validate_dag", files=draft, repository=REPOSITORY)
        fixed = [{"path": "dags/nightly_export.py", "content": FIXED}]
        seen["fixed"] = await assistant.ok("validate_dag", files=fixed, repository=REPOSITORY)
        seen["proposal"] = await assistant.ok(
            "propose_files", repository=REPOSITORY, files=fixed, title="Nightly export", description="From a chat."
        )
        seen["repository"] = await assistant.ok("get_repository", name=REPOSITORY)
        seen["search"] = await assistant.ok("search_dags", query="say hello")
        seen["rollback_dry_run"] = await assistant.call("rollback_repository", name=REPOSITORY)
        triggered = await assistant.ok("trigger_dag", dag_id=DAG_ID, conf={"fail": True})
        seen["triggered"] = triggered
        seen["run"] = await _wait_for_run(assistant, triggered["run_id"])
        return seen

    seen = anyio.run(_as, url, real_airflow.token, as_admin, texts)

    assert seen["tools"] == set(PERMISSION)
    assert seen["broken"]["passed"] is False
    error = next(f for f in seen["broken"]["findings"] if f["severity"] == "error")
    assert error["file"] == "dags/nightly_export.py" and error["line"] == 4 and error["rule"] and error["message"]
    assert seen["fixed"]["passed"] is True, seen["fixed"]["findings"]
    proposal = seen["proposal"]
    assert proposal["branch"] == f"dagops/proposal-{proposal['proposal_id']}" and proposal["commit"]
    assert proposal["pr_url"].startswith("https://git.example.com/pull/")
    assert f"refs/heads/{proposal['branch']}" in published.branches()
    assert published.git("show", f"{proposal['branch']}:dags/nightly_export.py") == FIXED.rstrip("\n")
    assert fake_host.calls and fake_host.calls[0]["body"]["head"] == proposal["branch"]
    assert proposal["actor"] == "admin"
    assert [d["dag_id"] for d in seen["repository"]["dags"]] == [DAG_ID]
    assert seen["search"]["results"][0]["name"] == DAG_ID
    assert seen["triggered"]["repository"] == REPOSITORY and seen["triggered"]["run_id"]
    run = seen["run"]
    assert run["state"] == "failed" and run["failed_task"] == "greet", run
    assert any(MARKER in line for line in run["log_tail"]), run["log_tail"]

    async def as_viewer(assistant: Assistant) -> dict:
        refused = {}
        files = [{"path": "dags/x.py", "content": FIXED}]
        refused["propose_files"] = await assistant.call("propose_files", repository=REPOSITORY, files=files, title="x")
        refused["sync_repository"] = await assistant.call("sync_repository", name=REPOSITORY)
        refused["rollback_repository"] = await assistant.call("rollback_repository", name=REPOSITORY, dry_run=False)
        refused["validate_dag"] = await assistant.call("validate_dag", files=files)
        refused["install_package"] = await assistant.call("install_package", name="anything")
        refused["trigger_dag"] = await assistant.call("trigger_dag", dag_id=DAG_ID)
        return {"refused": refused, "read": await assistant.ok("list_repositories")}

    viewer = anyio.run(_as, url, viewer_token(real_airflow), as_viewer, texts)

    assert set(viewer["refused"]) == WRITE_TOOLS | {"trigger_dag"}
    for tool, (failed, answer) in viewer["refused"].items():
        assert failed and answer["error"]["code"] == "forbidden", (tool, answer)
    assert REPOSITORY in [r["name"] for r in viewer["read"]["repositories"]]
    assert len(published.branches()) == 2  # main and the admin's proposal: nothing from the viewer

    unauthenticated = requests.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, timeout=30)
    assert unauthenticated.status_code == 401 and unauthenticated.headers["WWW-Authenticate"].startswith("Bearer")

    for text in texts:
        assert GIT_TOKEN not in text and JWT_SECRET not in text and real_airflow.token not in text
