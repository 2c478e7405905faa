#!/usr/bin/env python3
"""Load generator for the production daemon (`baton daemon`): memory per idle task, CPU under
TUI-style output, and the latency from creating a task to its agent's first output.

Starts its own daemon on a temporary state directory (REST API on 127.0.0.1, port 0; app
channel on DIR/app.sock), registers coordinators on temporary git repositories, drives it over
the app channel and the REST API, reads the daemon's memory and CPU from Linux /proc, and
removes everything at the end (SIGTERM to the daemon, then the temporary directory), also on
failure. Python 3 standard library only; Linux only (/proc). See README.md beside this file.

    cargo build --release --bin baton
    python3 benches/daemon/load.py            # all three phases, about a minute

Results go to stdout, one line each ("name: value unit (parameters)"); progress to stderr.
"""
import argparse
import http.client
import json
import math
import os
import random
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
REPO_ROOT = Path(__file__).resolve().parents[2]
# The daemon's agent terminal (engine::AGENT_COLS x AGENT_ROWS).
COLS, ROWS = 120, 40
MARK = "BATON-LOAD-FIRST-OUTPUT"
FRAMES_FILE = ".baton-load-frames"


class LoadError(Exception):
    pass


def progress(text):
    print(f"# {text}", file=sys.stderr, flush=True)


def result(name, value, unit, params=""):
    tail = f" ({params})" if params else ""
    print(f"{name}: {value} {unit}{tail}", flush=True)


# --- /proc -------------------------------------------------------------------------------------


def proc_status(pid):
    """VmRSS, VmHWM (KiB) and Threads of a process, from /proc/PID/status."""
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "Threads"):
                fields[key] = int(value.split()[0])
    fields["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    return fields


def stat_split(path):
    """(utime, stime) (clock ticks) from a /proc .../stat file (a process: all its threads)."""
    with open(path) as f:
        text = f.read()
    after = text[text.rindex(")") + 2 :].split()  # fields from 3 (state) on
    return int(after[11]), int(after[12])  # fields 14 utime, 15 stime


def stat_ticks(path):
    """utime + stime (clock ticks) from a /proc .../stat file."""
    return sum(stat_split(path))


def thread_ticks(pid):
    """{tid: (name, ticks)} for every thread of the process."""
    out = {}
    base = f"/proc/{pid}/task"
    for tid in os.listdir(base):
        try:
            with open(f"{base}/{tid}/comm") as f:
                name = f.read().strip()
            out[tid] = (name, stat_ticks(f"{base}/{tid}/stat"))
        except (FileNotFoundError, ProcessLookupError):
            pass  # the thread ended meanwhile
    return out


def context_switches(pid):
    """Voluntary + involuntary context switches summed over the process's threads."""
    total = 0
    base = f"/proc/{pid}/task"
    for tid in os.listdir(base):
        try:
            with open(f"{base}/{tid}/status") as f:
                for line in f:
                    key, _, value = line.partition(":")
                    if key in ("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"):
                        total += int(value)
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


def thread_group(name):
    # pty-wait-<agent id> (truncated to 15 bytes by the kernel); pty-read-<agent id> is an older
    # daemon's reader thread (`--baton` may run one).
    for prefix in ("pty-read", "pty-wait"):
        if name.startswith(prefix):
            return prefix + "-*"
    return name


def machine_ticks():
    """(busy, total) jiffies of all cores, from /proc/stat."""
    with open("/proc/stat") as f:
        cpu = [int(v) for v in f.readline().split()[1:]]
    idle = cpu[3] + (cpu[4] if len(cpu) > 4 else 0)  # idle + iowait
    total = sum(cpu[:8])  # guest time is already in user
    return total - idle, total


class CpuWindow:
    """CPU use of the daemon (whole process and per thread group) and of the machine between
    start() and stop()."""

    def __init__(self, pid):
        self.pid = pid

    def start(self):
        self.t0 = time.monotonic()
        self.p0 = stat_split(f"/proc/{self.pid}/stat")
        self.th0 = thread_ticks(self.pid)
        self.m0 = machine_ticks()
        self.cs0 = context_switches(self.pid)

    def stop(self):
        wall = time.monotonic() - self.t0
        p1 = stat_split(f"/proc/{self.pid}/stat")
        th1 = thread_ticks(self.pid)
        m1 = machine_ticks()
        self.switches = (context_switches(self.pid) - self.cs0) / wall
        self.wall = wall
        user, kernel = (b - a for a, b in zip(self.p0, p1))
        self.percent = (user + kernel) / CLK_TCK / wall * 100
        # The kernel's share: the system calls (the terminal reads above all) and what the
        # kernel does on the process's behalf.
        self.kernel_percent = kernel / CLK_TCK / wall * 100
        groups = {}
        for tid, (name, ticks) in th1.items():
            before = self.th0.get(tid, (name, 0))[1]
            g = groups.setdefault(thread_group(name), [0, 0])
            g[0] += ticks - before
            g[1] += 1
        self.groups = {k: (v[0] / CLK_TCK / wall * 100, v[1]) for k, v in groups.items()}
        busy, total = m1[0] - self.m0[0], m1[1] - self.m0[1]
        self.machine = busy / total * 100 if total else 0.0
        return self

    def groups_text(self):
        parts = sorted(self.groups.items(), key=lambda kv: -kv[1][0])
        return ", ".join(f"{k} x{n}: {p:.1f}%" for k, (p, n) in parts if p >= 0.05) or "none"


# --- HTTP --------------------------------------------------------------------------------------


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=30):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.unix_path)
        self.sock = sock


# The daemon closes a keep-alive connection idle for its `api::guard::KEEP_ALIVE_IDLE_MS`
# (10 s); a connection idle for this long is not reused (a DELETE sent on one the daemon just
# closed failed the clean-up after the CPU window).
KEEP_ALIVE_REUSE_S = 8.0


class Client:
    """One keep-alive HTTP/1.1 connection; JSON in and out. GETs are retried once on a
    connection the server closed; other methods are not (a create must not happen twice), so a
    connection idle for KEEP_ALIVE_REUSE_S is replaced before a request, not after."""

    def __init__(self, make, token=None):
        self.make, self.conn, self.used = make, None, 0.0
        self.headers = {"Content-Type": "application/json"}
        if token:
            self.headers["Authorization"] = "Bearer " + token

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def call(self, method, path, body=None, expect=(200,)):
        data = json.dumps(body).encode() if body is not None else None
        if self.conn is not None and time.monotonic() - self.used > KEEP_ALIVE_REUSE_S:
            self.close()
        for attempt in (0, 1):
            try:
                if self.conn is None:
                    self.conn = self.make()
                self.conn.request(method, path, body=data, headers=self.headers)
                response = self.conn.getresponse()
                raw = response.read()
                self.used = time.monotonic()
                break
            except (http.client.HTTPException, OSError):
                self.close()
                if attempt or method != "GET":
                    raise
        if response.will_close:
            self.close()
        payload = json.loads(raw) if raw else None
        if expect and response.status not in expect:
            raise LoadError(f"{method} {path} -> {response.status} {raw[:300]!r}")
        return response.status, payload


# --- fixtures ----------------------------------------------------------------------------------


def run(args, **kw):
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, **kw)


def make_repo(path):
    path.mkdir(parents=True)
    run(["git", "init", "-q", "-b", "main", str(path)])
    run(["git", "-C", str(path), "config", "user.name", "Baton Load"])
    run(["git", "-C", str(path), "config", "user.email", "load@example.invalid"])
    (path / "README.md").write_text("load test repository\n")
    run(["git", "-C", str(path), "add", "README.md"])
    run(["git", "-C", str(path), "-c", "commit.gpgsign=false", "commit", "-q", "-m", "init"])


def cells(text):
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def make_frames(target_bytes, seed=1):
    """Full-screen redraws of a COLS x ROWS terminal, as a TUI writes them: synchronized-update
    brackets, cursor hidden, every row addressed with CUP (no newlines, so the terminal's
    output processing does not change the byte count), 256-colour and attribute SGRs, box
    drawing, mixed-script UTF-8 and a spinner; redraws are appended until target_bytes."""
    rnd = random.Random(seed)
    words = ["baton", "worktree", "agent", "merge", "diff", "café", "naïve", "déjà-vu", "日本語",
             "テスト", "Ελληνικά", "данные", "über", "Grüße", "señal", "✓", "✗", "→", "…", "λ",
             "fn", "let", "0x1f", "42", "ok", "wait", "signal_done", "src/main.rs"]
    spin = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
    out, screen = [], 0
    size = 0
    while size < target_bytes:
        parts = ["\x1b[?2026h\x1b[?25l\x1b[H"]
        title = f" baton load · screen {screen} {spin[screen % len(spin)]} "
        top = "┌─" + title + "─" * (COLS - 3 - cells(title)) + "┐"
        parts.append(f"\x1b[1;1H\x1b[1;38;5;39m{top}\x1b[0m")
        for row in range(2, ROWS):
            parts.append(f"\x1b[{row};1H\x1b[38;5;39m│\x1b[0m")
            width, line = COLS - 2, []
            while True:
                word = rnd.choice(words) + " "
                if cells(word) > width:
                    break
                sgr = [str(rnd.choice((0, 1, 2, 3, 4)))]
                sgr.append(f"38;5;{rnd.randrange(256)}")
                if rnd.random() < 0.2:
                    sgr.append(f"48;5;{rnd.randrange(256)}")
                line.append(f"\x1b[{';'.join(sgr)}m{word}")
                width -= cells(word)
            parts.append("".join(line) + "\x1b[0m" + " " * width)
            parts.append("\x1b[38;5;39m│\x1b[0m")
        bottom = "└" + "─" * (COLS - 2) + "┘"
        parts.append(f"\x1b[{ROWS};1H\x1b[38;5;39m{bottom}\x1b[0m\x1b[?25h\x1b[?2026l")
        chunk = "".join(parts).encode()
        out.append(chunk)
        size += len(chunk)
        screen += 1
    return b"".join(out), screen


# --- daemon ------------------------------------------------------------------------------------


class Daemon:
    def __init__(self, baton, root):
        self.state = root / "state"
        self.out_path, self.err_path = root / "daemon.out", root / "daemon.err"
        self.out, self.err = open(self.out_path, "wb"), open(self.err_path, "wb")
        self.proc = subprocess.Popen(
            [str(baton), "daemon", "--state-dir", str(self.state), "--port", "0"],
            stdin=subprocess.DEVNULL, stdout=self.out, stderr=self.err, start_new_session=True)
        self.pid = self.proc.pid
        deadline = time.monotonic() + 30
        line = ""
        while "\n" not in line:
            if self.proc.poll() is not None:
                raise LoadError(f"the daemon exited ({self.proc.returncode}): {self.stderr_tail()}")
            if time.monotonic() > deadline:
                raise LoadError(f"no start line from the daemon in 30 s: {self.stderr_tail()}")
            time.sleep(0.02)
            line = self.out_path.read_text(errors="replace")
        self.line = line.splitlines()[0]
        found = re.search(r"API http://127\.0\.0\.1:(\d+) · app channel (\S+) · state", self.line)
        if not found:
            raise LoadError(f"unexpected start line: {self.line!r}")
        self.port, self.socket = int(found.group(1)), found.group(2)
        self.app = Client(lambda: UnixHTTPConnection(self.socket))

    def api(self, token):
        return Client(lambda: http.client.HTTPConnection("127.0.0.1", self.port, timeout=30), token)

    def stderr_tail(self):
        return self.err_path.read_text(errors="replace")[-2000:]

    def stop(self):
        """SIGTERM, then wait (its own shutdown ends agents with a grace); SIGKILL past 30 s."""
        if self.proc.poll() is not None:
            return self.proc.returncode, 0.0
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            progress("the daemon did not stop within 30 s of SIGTERM; SIGKILL")
            self.proc.kill()
            code = self.proc.wait()
        self.out.close()
        self.err.close()
        return code, time.monotonic() - t0


class Coordinator:
    def __init__(self, daemon, root, script):
        body = {"projectRoot": str(root), "agent": "sh", "args": ["-c", script, "agent"]}
        _, info = daemon.app.call("POST", "/app/coordinators", body, expect=(201,))
        self.id = info["id"]
        config = json.loads(Path(info["mcpConfig"]).read_text())
        self.api = daemon.api(config["mcpServers"]["baton"]["env"]["BATON_MCP_TOKEN"])
        self.daemon = daemon

    def create(self, name):
        _, task = self.api.call("POST", "/api/tasks", {"name": name}, expect=(201,))
        return task

    def output(self, task_id):
        return self.api.call("GET", f"/api/tasks/{task_id}/output")[1]["output"]

    def close_task(self, task_id):
        self.api.call("DELETE", f"/api/tasks/{task_id}")

    def deregister(self):
        self.api.close()
        self.daemon.app.call("DELETE", f"/app/coordinators/{self.id}", expect=(204,))


class Fleet:
    """Coordinators on their own repositories, enough for `count` tasks at `per` each."""

    def __init__(self, daemon, root, label, script, count, per):
        self.coordinators = []
        for n in range(math.ceil(count / per)):
            repo = root / f"{label}-repo-{n}"
            make_repo(repo)
            self.coordinators.append(Coordinator(daemon, repo, script))
        self.per = per
        self.tasks = []  # (coordinator, task json)

    def create(self, count, label):
        times = []
        for n in range(count):
            c = self.coordinators[n // self.per]
            t0 = time.perf_counter()
            task = c.create(f"{label}-{n}")
            times.append(time.perf_counter() - t0)
            self.tasks.append((c, task))
        return times

    def wait_output(self, needle, timeout):
        pending = list(self.tasks)
        deadline = time.monotonic() + timeout
        while pending:
            if time.monotonic() > deadline:
                raise LoadError(f"{len(pending)} tasks showed no {needle!r} within {timeout} s")
            pending = [(c, t) for c, t in pending if needle not in c.output(t["id"])]
            if pending:
                time.sleep(0.1)

    def close(self):
        t0 = time.perf_counter()
        for c, t in self.tasks:
            c.close_task(t["id"])
        elapsed = time.perf_counter() - t0
        self.tasks = []
        for c in self.coordinators:
            c.deregister()
        return elapsed


def pct(values, q):
    s = sorted(values)
    return s[max(0, math.ceil(q * len(s)) - 1)]


def ms_summary(values):
    return (f"p50 {pct(values, 0.5) * 1e3:.1f} ms, p90 {pct(values, 0.9) * 1e3:.1f} ms, "
            f"max {max(values) * 1e3:.1f} ms")


# --- phases ------------------------------------------------------------------------------------


def phase_memory(args, daemon, root, rss0):
    n = args.tasks
    script = "echo ready; exec sleep 100000"
    fleet = Fleet(daemon, root, "mem", script, n, args.per_coordinator)
    time.sleep(0.5)
    reg = proc_status(daemon.pid)
    result("rss.coordinators_registered", f"{reg['VmRSS'] / 1024:.1f}", "MiB",
           f"VmRSS, {len(fleet.coordinators)} coordinator(s), 0 tasks")
    progress(f"memory: creating {n} idle tasks ({script!r})")
    times = fleet.create(n, "idle")
    result("create_task.latency_filling", ms_summary(times), "",
           f"{n} sequential POST /api/tasks while filling to {n} tasks")
    fleet.wait_output("ready", 60)
    progress(f"memory: all {n} agents printed 'ready'; settling {args.settle} s")
    settle = CpuWindow(daemon.pid)
    settle.start()
    time.sleep(args.settle)
    settle.stop()
    full = proc_status(daemon.pid)
    rss_n = full["VmRSS"]
    result(f"rss.idle_{n}_tasks", f"{rss_n / 1024:.1f}", "MiB",
           f"VmRSS after {args.settle} s settle; threads {full['Threads']}, fds {full['fds']}, "
           f"VmHWM {full['VmHWM'] / 1024:.1f} MiB")
    result("rss.per_task", f"{(rss_n - rss0) / n:.1f}", "KiB",
           f"(rss_{n} - rss_idle_start) / {n}; from the registered baseline: "
           f"{(rss_n - reg['VmRSS']) / n:.1f} KiB")
    result(f"cpu.settling_{n}_tasks", f"{settle.percent:.2f}", "% of one core",
           f"daemon utime+stime over the {settle.wall:.1f} s right after all {n} agents printed; "
           f"{settle.switches:.0f} context switches/s")
    idle = CpuWindow(daemon.pid)
    idle.start()
    time.sleep(args.idle_window)
    idle.stop()
    result(f"cpu.idle_{n}_tasks", f"{idle.percent:.2f}", "% of one core",
           f"daemon utime+stime over the next {idle.wall:.1f} s; "
           f"{idle.switches:.0f} context switches/s")
    progress(f"memory: closing {n} tasks")
    elapsed = fleet.close()
    result("close_task.sequential", f"{elapsed / n * 1e3:.1f}", "ms per task",
           f"{n} sequential DELETE /api/tasks/:id, {elapsed:.1f} s in all")
    time.sleep(1)
    after = proc_status(daemon.pid)
    result("rss.after_close", f"{after['VmRSS'] / 1024:.1f}", "MiB",
           f"VmRSS 1 s after closing all {n} tasks and deregistering; threads {after['Threads']}")


# Bytes one read of the floor reader asks for: the daemon's `PTY_READ_CHUNK_BYTES`.
FLOOR_READ_BYTES = 16 * 1024


def floor_reader(script, cwd, n, warmup, window):
    """What reading the same output costs a process that does nothing else: `n` agents running
    `script` in terminals of the daemon's size, read through one level-triggered epoll, one
    FLOOR_READ_BYTES read per readiness, the bytes dropped. Runs in its own process (see
    `phase_floor`); returns its own CPU over `window` s after `warmup` s, kernel and user apart,
    and the bytes it read."""
    import fcntl
    import pty
    import resource
    import select
    import struct
    import termios

    agents = []
    try:
        for _ in range(n):
            pid, fd = pty.fork()
            if pid == 0:  # the agent: a session and process group of its own, as in the daemon
                try:
                    os.chdir(cwd)
                    os.execvp("sh", ["sh", "-c", script, "agent"])
                finally:
                    os._exit(127)
            fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
            os.set_blocking(fd, False)
            agents.append((pid, fd))
        poller = select.epoll()
        for _, fd in agents:
            poller.register(fd, select.EPOLLIN)

        def read_for(seconds):
            total = reads = 0
            end = time.monotonic() + seconds
            while (left := end - time.monotonic()) > 0:
                for fd, _ in poller.poll(min(left, 0.1)):
                    try:
                        total += len(os.read(fd, FLOOR_READ_BYTES))
                        reads += 1
                    except BlockingIOError:
                        pass
            return total, reads

        read_for(warmup)
        r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
        total, reads = read_for(window)
        r1, wall = resource.getrusage(resource.RUSAGE_SELF), time.monotonic() - t0
        return {"wall": wall, "bytes": total, "reads": reads,
                "user": r1.ru_utime - r0.ru_utime, "kernel": r1.ru_stime - r0.ru_stime}
    finally:
        for pid, fd in agents:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.close(fd)
            os.waitpid(pid, 0)


def phase_floor(args, root, script):
    """The floor under the CPU phase's figure: `floor_reader` in a child process, on the same
    agents' script, just before the daemon's agents start."""
    cwd = root / "floor"
    cwd.mkdir()
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); import load; "
            "print(json.dumps(load.floor_reader(sys.argv[2], sys.argv[3], int(sys.argv[4]), "
            "float(sys.argv[5]), float(sys.argv[6]))))")
    out = subprocess.run(
        [sys.executable, "-c", code, str(Path(__file__).resolve().parent), script, str(cwd),
         str(args.agents), str(args.warmup), str(args.window)],
        capture_output=True, text=True, timeout=args.warmup + args.window + 60)
    if out.returncode != 0:
        raise LoadError(f"the floor reader failed ({out.returncode}): {out.stderr[-500:]}")
    f = json.loads(out.stdout)
    mb = f["bytes"] / 1e6
    if mb == 0:
        raise LoadError("the floor reader read nothing")
    result("cpu.floor_reader", f"{(f['user'] + f['kernel']) * 1e3 / mb:.1f}", "ms CPU per MB",
           f"a process that only reads the same {args.agents} agents' terminals (epoll, one "
           f"{FLOOR_READ_BYTES // 1024} KiB read per readiness, {f['bytes'] / f['reads']:.0f} B "
           f"a read): kernel {f['kernel'] * 1e3 / mb:.1f} ms/MB, its own code "
           f"{f['user'] * 1e3 / mb:.1f} ms/MB; {mb / f['wall']:.2f} MB/s over {f['wall']:.1f} s "
           f"after {args.warmup} s warm-up")


def phase_cpu(args, daemon, root):
    n = args.agents
    # Whole redraws of about rate x 0.1 s; the sleep then makes the target rate (cat's own
    # time and the daemon's back-pressure, if any, make the real rate lower: it is measured).
    frame, screens = make_frames(int(args.rate_kb * 1000 * 0.1))
    interval = round(len(frame) / (args.rate_kb * 1000), 3)
    frame_path = root / "frame.bin"
    frame_path.write_bytes(frame)
    script = (f"F={shlex.quote(str(frame_path))}; while :; do cat \"$F\"; "
              f"printf x >> {FRAMES_FILE}; sleep {interval}; done")
    progress(f"cpu: the floor: {n} agents read by a process that does nothing else, "
             f"{args.warmup} s + {args.window} s")
    phase_floor(args, root, script)
    fleet = Fleet(daemon, root, "cpu", script, n, args.per_coordinator)
    progress(f"cpu: frame {len(frame)} bytes ({screens} redraws of {COLS}x{ROWS}); "
             f"starting {n} agents: {script}")
    fleet.create(n, "tui")
    worktrees = [Path(t["worktreePath"]) for _, t in fleet.tasks]

    def frames():
        out = []
        for w in worktrees:
            try:
                out.append((w / FRAMES_FILE).stat().st_size)
            except FileNotFoundError:
                out.append(0)
        return out

    progress(f"cpu: warm-up {args.warmup} s, then a {args.window} s window")
    time.sleep(args.warmup)
    perf = None
    if args.perf:
        data = root / "perf.data"
        perf = subprocess.Popen(
            ["perf", "record", "-q", "-F", "499", "--call-graph", "dwarf,16384", "-p", str(daemon.pid),
             "-o", str(data), "--",
             "sleep", str(args.window)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    f0 = frames()
    window = CpuWindow(daemon.pid)
    window.start()
    time.sleep(args.window)
    window.stop()
    f1 = frames()
    rates = [(b - a) * len(frame) / window.wall / 1e6 for a, b in zip(f0, f1)]
    total = sum(rates)
    result("machine.cores", os.cpu_count(), "cores", "os.cpu_count()")
    result("output.aggregate", f"{total:.2f}", "MB/s",
           f"{n} agents, frame {len(frame)} B every {interval} s (target {args.rate_kb} kB/s "
           f"each); per agent min {min(rates):.3f} / median {statistics.median(rates):.3f} / "
           f"max {max(rates):.3f} MB/s; measured from frames written over {window.wall:.1f} s")
    result("cpu.daemon_tui_output", f"{window.percent:.1f}", "% of one core",
           f"daemon utime+stime / wall over {window.wall:.1f} s after {args.warmup} s warm-up, "
           f"{n} agents at {total:.2f} MB/s total; "
           f"{window.percent / 100 / total * 1e3 if total else 0:.1f} ms CPU per MB, of which "
           f"kernel {window.kernel_percent / 100 / total * 1e3 if total else 0:.1f}; "
           f"{window.switches:.0f} context switches/s"
           + ("; perf record running: inflated" if args.perf else ""))
    result("cpu.daemon_threads", window.groups_text(), "", "per thread group, % of one core")
    result("cpu.machine_busy", f"{window.machine:.1f}", f"% of all {os.cpu_count()} cores",
           "/proc/stat over the same window (agents, this script, anything else)")
    if perf is not None:
        _, err = perf.communicate()
        if perf.returncode != 0:
            progress(f"perf record failed ({perf.returncode}): {err.decode(errors='replace')[-500:]}")
        else:
            report = subprocess.run(
                ["perf", "report", "-i", str(root / "perf.data"), "--stdio", "--no-children",
                 "--sort", "dso,symbol", "-g", "none", "--percent-limit", "1"],
                capture_output=True, text=True)
            lines = [l for l in report.stdout.splitlines() if l.strip() and not l.startswith("#")]
            print("perf (daemon, self time, >= 1%):")
            for line in lines[:30]:
                print("  " + re.sub(r"[\s-]+$", "", line.strip()))
    progress(f"cpu: closing {n} tasks")
    fleet.close()


def phase_latency(args, daemon, root):
    script = f"echo {MARK}; exec sleep 100000"
    fleet = Fleet(daemon, root, "lat", script, 1, args.per_coordinator)
    c = fleet.coordinators[0]
    posts, firsts, totals, closes, polls, first_poll = [], [], [], [], [], 0
    progress(f"latency: {args.samples} sequential creations ({script!r})")
    for n in range(args.samples):
        t0 = time.perf_counter()
        task = c.create(f"lat-{n}")
        t1 = time.perf_counter()
        deadline = t1 + 10
        count = 0
        while True:
            p0 = time.perf_counter()
            text = c.output(task["id"])
            t2 = time.perf_counter()
            polls.append(t2 - p0)
            count += 1
            if MARK in text:
                break
            if t2 > deadline:
                raise LoadError(f"task {task['id']}: no first output within 10 s")
        first_poll += count == 1
        posts.append(t1 - t0)
        firsts.append(t2 - t1)
        totals.append(t2 - t0)
        t3 = time.perf_counter()
        c.close_task(task["id"])
        closes.append(time.perf_counter() - t3)
    k = args.samples
    result("create_task.post_latency", ms_summary(posts), "",
           f"POST /api/tasks sent -> 201 received (worktree + spawn), {k} sequential")
    result("create_task.first_output_after_post", ms_summary(firsts), "",
           f"201 received -> first GET /api/tasks/:id/output showing the marker, {k} samples; "
           f"poll round trip median {statistics.median(polls) * 1e3:.2f} ms; "
           f"already there at the first poll in {first_poll}/{k}")
    result("create_task.total_to_first_output", ms_summary(totals), "",
           "POST sent -> marker seen")
    result("close_task.latency", ms_summary(closes), "",
           f"DELETE /api/tasks/:id of a just-started idle agent, {k} samples")
    fleet.close()


# --- main --------------------------------------------------------------------------------------


def leftover_processes(root):
    """Processes running in our temporary directory (agents a daemon failed to end)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        if cwd == str(root) or cwd.startswith(str(root) + "/"):
            found.append(int(entry))
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baton", default=str(REPO_ROOT / "target/release/baton"))
    parser.add_argument("--phases", default="memory,cpu,latency",
                        help="comma-separated subset of memory,cpu,latency")
    parser.add_argument("--tasks", type=int, default=50, help="idle tasks (memory phase)")
    parser.add_argument("--settle", type=float, default=5, help="s after the idle tasks started")
    parser.add_argument("--idle-window", type=float, default=3,
                        help="s of idle CPU measured after the settle")
    parser.add_argument("--agents", type=int, default=20, help="TUI agents (cpu phase)")
    parser.add_argument("--rate-kb", type=float, default=1000,
                        help="target output per agent, kB/s (a ~0.1 s frame, then a sleep)")
    parser.add_argument("--warmup", type=float, default=3, help="s before the CPU window")
    parser.add_argument("--window", type=float, default=10, help="CPU window, s")
    parser.add_argument("--samples", type=int, default=20, help="creations (latency phase)")
    parser.add_argument("--per-coordinator", type=int, default=50,
                        help="tasks per coordinator (the daemon allows at most 64)")
    parser.add_argument("--perf", action="store_true",
                        help="also `perf record -g` the daemon during the CPU window")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    unknown = set(phases) - {"memory", "cpu", "latency"}
    if unknown:
        parser.error(f"unknown phases: {', '.join(sorted(unknown))}")
    if not Path(args.baton).is_file():
        parser.error(f"{args.baton} not found; cargo build --release --bin baton")

    # SIGTERM/SIGHUP to this script: unwind through the finally below.
    def stop(signum, _frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)

    started = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="baton-load-", dir="/tmp"))
    daemon = None
    failed = True
    try:
        progress(f"temporary directory {root}; daemon {args.baton}")
        daemon = Daemon(args.baton, root)
        progress(daemon.line)
        _, status = daemon.app.call("GET", "/app/status")
        result("daemon.version", status["version"], "", f"pid {daemon.pid}, {daemon.line}")
        result("machine.loadavg", Path("/proc/loadavg").read_text().split()[0], "",
               f"1-minute load average at start, {os.cpu_count()} cores (a busy machine skews "
               f"every figure)")
        time.sleep(1)
        idle = proc_status(daemon.pid)
        rss0 = idle["VmRSS"]
        result("rss.idle_start", f"{rss0 / 1024:.1f}", "MiB",
               f"VmRSS 1 s after start, no coordinators; threads {idle['Threads']}, "
               f"fds {idle['fds']}")
        if "memory" in phases:
            phase_memory(args, daemon, root, rss0)
        if "cpu" in phases:
            phase_cpu(args, daemon, root)
        if "latency" in phases:
            phase_latency(args, daemon, root)
        result("machine.loadavg_end", Path("/proc/loadavg").read_text().split()[0], "",
               "1-minute load average at the end")
        failed = False
    finally:
        if daemon is not None:
            daemon.app.close()
            code, took = daemon.stop()
            result("daemon.shutdown", f"{took:.2f}", "s", f"SIGTERM -> exit, exit code {code}")
            warnings = [l for l in daemon.err_path.read_text(errors="replace").splitlines()
                        if " WARN " in l or " ERROR " in l]
            if warnings:
                progress(f"daemon stderr: {len(warnings)} WARN/ERROR lines, e.g. {warnings[0]}")
            if failed:
                progress(f"daemon stderr tail:\n{daemon.stderr_tail()}")
        left = leftover_processes(root)
        if left:
            progress(f"processes still running in {root} after the daemon stopped: {left}; SIGKILL")
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.2)
        if args.keep:
            progress(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
        progress(f"total {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    try:
        main()
    except LoadError as error:
        print(f"load.py: {error}", file=sys.stderr)
        sys.exit(1)
