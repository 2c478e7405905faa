// Interop: the official MCP TypeScript SDK (npm `@modelcontextprotocol/sdk`) launches
// `baton mcp` over stdio, as an agent CLI built on it would, against the API served on
// loopback, and checks that nothing is lost when a client gives up on a call:
//
//   node mcp_interop_ts.mjs <baton binary> <api url> <coordinator token> <coordinator id>
//
// 1. A wait_for_signal_done aborted by the client (an AbortSignal: what a user's Esc does)
//    consumes nothing: a sub-task then signals, and the next wait returns that task.
// 2. The same when the client dies mid-wait (its transport closed: baton mcp's stdin ends).
// 3. A 65 s wait with the SDK's default 60 s request timeout, reset on progress: baton mcp's
//    progress notifications keep it alive, and it returns its own timeout, not the SDK's.
// The sub-tasks' servers use the coordinator's token (a coordinator may signal its own task):
// the API under test keeps its files in memory. Credentials go in the environment, never argv.
// The SDK is the one installed in BATON_TS_SDK_DIR (.ci/run puts it under target/ci). Exits 1
// with what differed.

import { setTimeout as sleep } from "node:timers/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";

const sdk = path.resolve(
  process.env.BATON_TS_SDK_DIR ?? "target/ci/ts-mcp",
  "node_modules/@modelcontextprotocol/sdk/dist/esm",
);
const load = (module) => import(pathToFileURL(path.join(sdk, module)).href);
const { Client } = await load("client/index.js");
const { StdioClientTransport } = await load("client/stdio.js");

const [baton, url, token, coordinator] = process.argv.slice(2);

function check(condition, what) {
  if (!condition) {
    console.error(`interop (TypeScript SDK): FAILED: ${what}`);
    process.exit(1);
  }
}

const text = (result) => result?.content?.[0]?.text ?? "";

async function connect(args) {
  const transport = new StdioClientTransport({
    command: baton,
    args: ["mcp", ...args],
    env: { PATH: process.env.PATH ?? "", BATON_MCP_TOKEN: token },
    stderr: "ignore",
  });
  const client = new Client({ name: "baton-interop-ts", version: "1.0.0" });
  await client.connect(transport);
  return { client, transport };
}

const lead = await connect(["--url", url, "--coordinator-id", coordinator]);

async function task(name) {
  const created = await lead.client.callTool({ name: "create_task", arguments: { name } });
  check(!created.isError, `create_task: ${text(created)}`);
  const id = JSON.parse(text(created)).id;
  const sub = await connect(["--url", url, "--task-id", id]);
  return { id, sub };
}

async function signal(sub) {
  const done = await sub.client.callTool({ name: "signal_done", arguments: {} });
  check(!done.isError, `signal_done: ${text(done)}`);
  await sub.client.close();
}

async function nextSignal(what) {
  const waited = await lead.client.callTool({
    name: "wait_for_signal_done",
    arguments: { timeoutMs: 5000 },
  });
  check(!waited.isError, `${what}: ${text(waited)}`);
  return JSON.parse(text(waited));
}

// 1. An aborted wait.
{
  const { id, sub } = await task("ts interop aborted");
  const abort = new AbortController();
  const waiting = lead.client
    .callTool({ name: "wait_for_signal_done", arguments: { timeoutMs: 120000 } }, undefined, {
      signal: abort.signal,
    })
    .then(() => "answered", (error) => `rejected: ${error}`);
  await sleep(500);
  abort.abort("the user pressed Esc");
  check((await waiting).startsWith("rejected"), "the aborted wait was answered");
  await sleep(300);
  await signal(sub);
  const got = await nextSignal("the wait after an aborted one");
  check(got.taskId === id, `the wait after an aborted one returned ${JSON.stringify(got)}`);
}

// 2. A client that dies mid-wait.
{
  const { id, sub } = await task("ts interop client gone");
  const doomed = await connect(["--url", url, "--coordinator-id", coordinator]);
  const waiting = doomed.client
    .callTool({ name: "wait_for_signal_done", arguments: { timeoutMs: 120000 } })
    .then(() => "answered", () => "gone");
  await sleep(500);
  await doomed.transport.close();
  await waiting;
  await sleep(300);
  await signal(sub);
  const got = await nextSignal("the wait after a client died mid-wait");
  check(got.taskId === id, `the wait after a dead client's returned ${JSON.stringify(got)}`);
}

// 3. A wait longer than the SDK's default request timeout, kept alive by progress.
{
  let told = 0;
  const started = Date.now();
  const waited = await lead.client.callTool(
    { name: "wait_for_signal_done", arguments: { timeoutMs: 65000 } },
    undefined,
    { onprogress: () => { told += 1; }, resetTimeoutOnProgress: true },
  );
  const took = Date.now() - started;
  check(!waited.isError, `the 65 s wait: ${text(waited)}`);
  check(JSON.parse(text(waited)).timedOut === true, `the 65 s wait: ${text(waited)}`);
  check(took >= 64000, `the 65 s wait ended after ${took} ms`);
  check(told >= 4, `the 65 s wait told progress ${told} times`);
}

await lead.client.close();
console.log("interop (TypeScript SDK): a wait given up consumes nothing; progress keeps a long wait alive");
