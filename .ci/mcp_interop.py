"""Interop: the official MCP Python SDK (PyPI `mcp`) launches `baton mcp` over stdio, as an
agent CLI would, against the API served on loopback, and checks real results for both roles.

    python mcp_interop.py <baton binary> <api url> <coordinator token> <coordinator id>

The coordinator's server lists its eleven tools and creates a task; a sub-task's server (the
sub-task role: --task-id only) lists signal_done alone and signals done; the coordinator's
wait_for_signal_done then returns that task. The sub-task's server uses the coordinator's token
here (a coordinator may signal its own task): the API under test keeps its files in memory, so
the done token the engine wrote is out of reach. Credentials go in the environment, never argv.
Exits 1 with what differed.
"""

import asyncio
import json
import os
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

COORDINATOR_TOOLS = [
    "create_task", "list_tasks", "get_task_status", "send_prompt", "wait_for_idle",
    "get_task_diff", "get_task_output", "merge_task", "close_task", "wait_for_signal_done",
    "review_and_merge_task",
]


def check(condition, what):
    if not condition:
        print(f"interop: FAILED: {what}", file=sys.stderr)
        sys.exit(1)


def text(result):
    return result.content[0].text if result.content else ""


def failed(result):
    # `is_error` in the SDK's 2.x, `isError` before.
    return bool(getattr(result, "is_error", None) or getattr(result, "isError", None))


def server(baton, args, token):
    env = {"PATH": os.environ.get("PATH", ""), "BATON_MCP_TOKEN": token}
    return stdio_client(StdioServerParameters(command=baton, args=["mcp", *args], env=env))


async def main(baton, url, token, coordinator):
    async with server(baton, ["--url", url, "--coordinator-id", coordinator], token) as (r, w):
        async with ClientSession(r, w) as lead:
            await lead.initialize()
            names = [tool.name for tool in (await lead.list_tools()).tools]
            check(names == COORDINATOR_TOOLS, f"coordinator tools: {names}")
            created = await lead.call_tool("create_task", {"name": "interop check"})
            check(not failed(created), f"create_task: {text(created)}")
            task = json.loads(text(created))
            check(task["name"] == "interop check" and task["coordinatorTaskId"] == coordinator,
                  f"create_task answer: {task}")
            listed = json.loads(text(await lead.call_tool("list_tasks", {})))
            check(task["id"] in [t["id"] for t in listed], f"list_tasks: {listed}")
            async with server(baton, ["--url", url, "--task-id", task["id"]], token) as (sr, sw):
                async with ClientSession(sr, sw) as sub:
                    await sub.initialize()
                    names = [tool.name for tool in (await sub.list_tools()).tools]
                    check(names == ["signal_done"], f"sub-task tools: {names}")
                    refused = await sub.call_tool("create_task", {"name": "x"})
                    check(failed(refused) and "not available to sub-tasks" in text(refused),
                          f"a sub-task's create_task: {text(refused)}")
                    done = await sub.call_tool("signal_done", {})
                    check(not failed(done) and text(done).startswith("Done signal sent"),
                          f"signal_done: {text(done)}")
            waited = await lead.call_tool("wait_for_signal_done", {"timeoutMs": 10_000})
            check(not failed(waited), f"wait_for_signal_done: {text(waited)}")
            signal = json.loads(text(waited))
            check(signal.get("taskId") == task["id"], f"wait_for_signal_done answer: {signal}")
            missing = await lead.call_tool("get_task_status", {"taskId": "no-such-task"})
            check(failed(missing) and "(404)" in text(missing), f"an unknown task: {text(missing)}")
    print(f"interop: ok: {len(COORDINATOR_TOOLS)} coordinator tools, 1 sub-task tool; "
          f"create_task, list_tasks, signal_done and wait_for_signal_done gave real results")


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
