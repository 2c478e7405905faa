#!/usr/bin/env python3
"""The real daemon as `wake_load`'s server: `baton daemon` with its real journal (the state file,
written and fsynced before a wait's answer goes out), one coordinator on a fresh repository and
one sub-task, so that the wake-up is measured where a user meets it, not only over the in-memory
ports (`api_on_fakes`).

    cargo build --release --bin baton -p baton-runtime && cargo build --release -p baton-benches --bin wake_load
    target/release/wake_load --server benches/daemon/wake_server.py

It takes `api_on_fakes`'s arguments (`TASKS --done-tokens`; one task is made whatever TASKS
says) and prints its lines: `<base url> <coordinator token> <coordinator id> pid=<daemon pid>`
(the daemon's CPU is the server's, not this wrapper's), then `<task id> <done token>`. It serves
until SIGTERM or SIGKILL of itself, then stops the daemon and removes its temporary directory
(`/tmp/baton-wake-*`). Only loopback is used.
"""

import json
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import Coordinator, Daemon, LoadError, make_repo  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
# The sub-task's agent prints the MCP config Baton gave it (`--mcp-config PATH` follows the
# script's own arguments), then idles.
AGENT = 'echo "CONFIG $2"; exec sleep 100000'
# How long the sub-task's agent may take to print its config line, in seconds.
AGENT_READY_S = 30
# How often the watcher looks whether this process is gone, in seconds.
WATCH_S = 0.2
# How long the daemon may take to stop on SIGTERM before SIGKILL, in seconds.
STOP_S = 30


def done_token(config):
    """The done token a sub-task's `baton mcp` presents, from its MCP config."""
    env = config["mcpServers"]["baton"].get("env", {})
    for name in ("BATON_DONE_TOKEN", "PARALLEL_CODE_MCP_DONE_TOKEN"):
        if env.get(name):
            return env[name]
    raise LoadError(f"no done token in the sub-task's MCP config (env has {sorted(env)})")


def serve(daemon, root):
    """Prints the ready lines and waits for the end; returns to have the daemon stopped."""
    repo = root / "repo"
    make_repo(repo)
    coordinator = Coordinator(daemon, repo, AGENT)
    task = coordinator.create("wake")
    deadline = time.monotonic() + AGENT_READY_S
    path = None
    while path is None:
        for line in coordinator.output(task["id"]).splitlines():
            if line.startswith("CONFIG /"):
                path = line.split(" ", 1)[1].strip()
        if path is None:
            if time.monotonic() > deadline:
                raise LoadError(f"the sub-task printed no config line in {AGENT_READY_S} s")
            time.sleep(0.05)
    token = done_token(json.loads(Path(path).read_text()))
    api_token = coordinator.api.headers["Authorization"].split(" ", 1)[1]
    print(f"http://127.0.0.1:{daemon.port} {api_token} {coordinator.id} pid={daemon.pid}\n"
          f"{task['id']} {token}", flush=True)
    # The client ends its server with SIGKILL: a watcher process outlives this one and stops the
    # daemon once this process is gone (its parent changes); SIGTERM ends both here and now.
    parent = os.getpid()
    if os.fork() == 0:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        while os.getppid() == parent:
            time.sleep(WATCH_S)
        stop(daemon.pid)
        shutil.rmtree(root, ignore_errors=True)
        os._exit(0)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    while True:
        time.sleep(3600)


def stop(pid):
    """SIGTERM to a daemon that is not this process's child, then SIGKILL past STOP_S."""
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_S
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(WATCH_S)
    os.kill(pid, signal.SIGKILL)


def main():
    baton = Path(os.environ.get("BATON", ROOT / "target/release/baton"))
    root = Path(tempfile.mkdtemp(prefix="baton-wake-", dir="/tmp"))
    daemon = None
    try:
        daemon = Daemon(baton, root)
        serve(daemon, root)
    finally:
        if daemon is not None:
            daemon.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
