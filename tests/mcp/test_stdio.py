"""`dagops mcp` over stdio, driven by the `mcp` SDK's own client: the tools are listed, and a local assistant
(the CLI's rights) searches, reads conventions, validates a draft and reads a repository."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from airflow_dagops.mcp.tools import PERMISSION
from airflow_dagops.repositories.registry import add_repository
from airflow_dagops.sync.sync import sync_repository
from tests.helpers.airflow import BIN
from tests.helpers.repos import dag_source

POLICY = "policy:\n  require_owner: true\n  min_retries: 2\n  dag_id_pattern: 'team_[a-z_]+'\n"
S3_DAG = '''"""Copies the orders export to the archive bucket in S3."""
from airflow.sdk import DAG
import pendulum

with DAG("team_orders_archive", schedule="@daily", start_date=pendulum.datetime(2024, 1, 1), tags=["archive"]):
    S3CopyObjectOperator(task_id="copy_export", aws_conn_id="aws_archive")
'''


def _answer(result) -> dict:
    assert not result.isError, result.content
    return json.loads(result.content[0].text)


async def _session_run(env: dict[str, str]) -> dict:
    params = StdioServerParameters(command=str(Path(BIN) / "dagops"), args=["mcp"], env=env)
    seen: dict = {}
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        seen["tools"] = {tool.name for tool in (await session.list_tools()).tools}
        seen["resources"] = {str(r.uri) for r in (await session.list_resources()).resources}
        seen["search"] = _answer(await session.call_tool("search_dags", {"query": "archive orders to S3"}))
        seen["conventions"] = _answer(await session.call_tool("repository_conventions", {"name": "team"}))
        seen["repository"] = _answer(await session.call_tool("get_repository", {"name": "team"}))
        broken = [{"path": "dags/draft.py", "content": "from airflow.sdk import dag\n\ndef broken(:\n"}]
        seen["broken"] = _answer(await session.call_tool("validate_dag", {"files": broken, "repository": "team"}))
        missing = await session.call_tool("get_repository", {"name": "nope"})
        seen["missing"] = (missing.isError, json.loads(missing.content[0].text))
        runs = await session.read_resource("dagops://runs")
        seen["runs"] = json.loads(runs.contents[0].text)
    return seen


def test_stdio_server_lists_tools_and_answers(dagops_env, git_remote):
    remote = git_remote({"dags/hello.py": dag_source("team_hello"), "dags/orders.py": S3_DAG, ".dagops.yaml": POLICY})
    add_repository("team", remote.url)
    assert sync_repository("team").status == "published"

    seen = anyio.run(_session_run, dagops_env.env())

    assert seen["tools"] == set(PERMISSION)
    assert {"dagops://events", "dagops://runs"} <= seen["resources"]
    top = seen["search"]["results"][0]
    assert top["name"] == "team_orders_archive" and top["connections"] == ["aws_archive"]
    assert seen["conventions"]["policy"]["min_retries"] == 2
    assert seen["conventions"]["policy"]["dag_id_pattern"] == "team_[a-z_]+"
    assert any("at least 2" in rule for rule in seen["conventions"]["rules"])
    assert seen["repository"]["name"] == "team" and seen["repository"]["live_release"]["status"] == "live"
    assert seen["broken"]["passed"] is False
    finding = next(f for f in seen["broken"]["findings"] if f["severity"] == "error")
    assert finding["file"] == "dags/draft.py" and finding["line"] == 3 and finding["rule"] and finding["message"]
    assert seen["missing"][0] is True and seen["missing"][1]["error"]["code"] == "not_found"
    assert seen["runs"] == {"runs": [], "next_cursor": None}
