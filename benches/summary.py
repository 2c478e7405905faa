#!/usr/bin/env python3
"""Every figure issue 23 sets a bar for, measured in one run and printed as one table, each beside
its in-run baseline; compared with the last accepted figures (benches/figures.json), naming every
figure that fell by more than 20 %.

    python3 benches/summary.py                 # build what is needed, measure all, print, compare
    python3 benches/summary.py --only detector,sim
    python3 benches/summary.py --accept        # also write the figures as the new accepted ones

What each row runs (loopback only; everything started is stopped, temporary files removed):
- detector: criterion (`cargo bench -p baton-benches --bench detector`, the 4 KiB groups), read
  back from target/criterion; baseline `reference_regex` in the same run.
- rest_list: `list_load` (benches/src/bin/list_load.rs): server CPU per `GET /api/tasks` of 50
  tasks beside an unauthenticated 401 on the same server, and the list's p99 at 4 connections.
- wake_up: `wake_load` (benches/src/bin/wake_load.rs): from a sub-task's `done` to the answer of
  the coordinator's pending `wait-signal`, p99 over 2,000 rounds, beside the same client's round
  trip for an unauthenticated 401 on the same kind of connection; the API over the in-memory
  ports (the bar), then 500 rounds against the real daemon, whose state file is written and
  fsynced before each answer (benches/daemon/wake_server.py; informative, no bar).
- output_path: benches/daemon/load.py's CPU phase (20 agents at ~1 MB/s each): daemon CPU per MB,
  beside what a process that only reads the same agents' terminals pays (its floor, most of it
  the kernel's), and the daemon's own code's share (its CPU less its kernel time; informative).
- sim: `baton-sim run sim/speed/five-agents-ten-minutes.toml`: simulated seconds per wall second.

Python 3 standard library only. Exit status 0 whatever the figures (a report, not a test); 2 if a
measurement could not be made.
"""
import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
FIGURES = ROOT / "benches" / "figures.json"
# A figure that fell by more than this fraction against the accepted one is named.
FALL_MAX = 0.20
MIB = 1024 * 1024
PARTS = ("detector", "rest_list", "wake_up", "output_path", "sim")


def run(cmd, **kw):
    print("# " + " ".join(str(c) for c in cmd), file=sys.stderr, flush=True)
    done = subprocess.run(cmd, cwd=ROOT, text=True, capture_output=True, **kw)
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
        raise SystemExit(f"summary: {cmd[0]} failed (exit {done.returncode})")
    return done.stdout


def criterion_mib_s(group, function):
    """MiB/s of `function` in criterion's group `group` (its mean), from the last run."""
    base = TARGET / "criterion" / group / function / "new"
    estimates = json.loads((base / "estimates.json").read_text())
    bench = json.loads((base / "benchmark.json").read_text())
    bytes_ = bench["throughput"]["Bytes"]
    mean_ns = estimates["mean"]["point_estimate"]
    return bytes_ / (mean_ns / 1e9) / MIB


def detector():
    run(["cargo", "bench", "--locked", "-p", "baton-benches", "--bench", "detector", "--",
         "--noplot", "4KiB/(baton|reference_regex)"])
    rows = []
    bars = {"claude_redraws": (1000 * 1e6 / MIB, 20), "codex_output": (1000 * 1e6 / MIB, 20),
            "build_logs": (2000 * 1e6 / MIB, None)}
    for corpus, (bar_mib, bar_ratio) in bars.items():
        group = f"detector_{corpus}_4KiB"
        baton = criterion_mib_s(group, "baton")
        reference = criterion_mib_s(group, "reference_regex")
        ratio = baton / reference
        met = baton >= bar_mib and (bar_ratio is None or ratio >= bar_ratio)
        bar = f">= {bar_mib:.0f} MiB/s" + (f" and >= {bar_ratio}x" if bar_ratio else "")
        rows.append((f"detector {corpus}/4KiB", f"{baton:.0f} MiB/s",
                     f"reference_regex {reference:.0f} MiB/s ({ratio:.1f}x)", bar, met,
                     {f"detector.{corpus}.mib_s": baton, f"detector.{corpus}.ratio": ratio}))
    return rows


def rest_list():
    run(["cargo", "build", "--locked", "--release", "-p", "baton-runtime", "--features", "fakes",
         "--example", "api_on_fakes"])
    out = run(["cargo", "run", "--locked", "--release", "-q", "-p", "baton-benches", "--bin",
               "list_load", "--", "--connections", "4"])
    cpu = dict(re.findall(r"^(401|list) .*?server CPU\s+([\d.]+) µs/req", out, re.M))
    p99 = re.search(r"^list .*?p99 ([\d.]+) ms", out, re.M)
    if len(cpu) != 2 or not p99:
        raise SystemExit(f"summary: list_load printed no figures:\n{out}")
    floor, listed, p99 = float(cpu["401"]), float(cpu["list"]), float(p99.group(1))
    ratio = listed / floor
    return [("REST list, 50 tasks, server CPU", f"{listed:.1f} µs/req",
             f"401 {floor:.1f} µs/req ({ratio:.2f}x)", "<= 1.5x the 401",
             ratio <= 1.5, {"rest_list.ratio_to_401": 1 / ratio}),
            ("REST list p99, 4 connections", f"{p99:.3f} ms", "-", "< 2 ms", p99 < 2,
             {"rest_list.p99_inverse": 1 / p99})]


def wake_figures(args):
    """wake_load's wake-up p99 and p50 and its 401's p99, in ms."""
    out = run([str(TARGET / "release" / "wake_load"), *args])
    found = dict(re.findall(r"^(wake-up|401) .*?p99 ([\d.]+) ms", out, re.M))
    p50 = re.search(r"^wake-up .*?p50 ([\d.]+) ms", out, re.M)
    if len(found) != 2 or not p50:
        raise SystemExit(f"summary: wake_load printed no figures:\n{out}")
    return float(found["wake-up"]), float(p50.group(1)), float(found["401"])


def wake_up():
    run(["cargo", "build", "--locked", "--release", "-p", "baton-runtime", "-p", "baton-benches",
         "--features", "baton-runtime/fakes", "--example", "api_on_fakes", "--bin", "wake_load",
         "--bin", "baton"])
    p99, p50, floor = wake_figures([])
    # The real daemon: the same rounds, with each answer's save written and fsynced first
    # (benches/daemon/wake_server.py). No bar of issue 23's: the disk's flush sets it.
    real99, real50, real_floor = wake_figures(
        ["--rounds", "500", "--server", str(ROOT / "benches/daemon/wake_server.py")])
    return [("wake-up p99, done -> waiting wait", f"{p99:.3f} ms",
             f"401 p99 {floor:.3f} ms, wake p50 {p50:.3f} ms", "< 1 ms",
             p99 < 1, {"wake_up.p99_inverse": 1 / p99}),
            ("  the same, real daemon (fsync)", f"{real99:.3f} ms",
             f"401 p99 {real_floor:.3f} ms, wake p50 {real50:.3f} ms", "- (informative)",
             None, {"wake_up.real_daemon_p99_inverse": 1 / real99})]


def output_path():
    run(["cargo", "build", "--locked", "--release", "-p", "baton-runtime", "--bin", "baton"])
    out = run([sys.executable, "benches/daemon/load.py", "--phases", "cpu"])
    values = dict(re.findall(r"^([\w.]+): ([\d.]+)", out, re.M))
    kernel = re.search(r"^cpu\.daemon_tui_output: .* of which kernel ([\d.]+);", out, re.M)
    floor_kernel = re.search(r"^cpu\.floor_reader: .*: kernel ([\d.]+) ms/MB", out, re.M)
    try:
        percent = float(values["cpu.daemon_tui_output"])
        rate = float(values["output.aggregate"])
        floor = float(values["cpu.floor_reader"])
        kernel, floor_kernel = float(kernel[1]), float(floor_kernel[1])
    except (KeyError, TypeError):
        raise SystemExit(f"summary: load.py printed no CPU figures:\n{out}")
    # % of one core = 10 ms of CPU per wall second; per MB of output at `rate` MB/s.
    ms_per_mb = percent * 10 / rate
    return [("output path, daemon CPU per MB", f"{ms_per_mb:.1f} ms/MB",
             f"reader alone {floor:.1f} ms/MB (kernel {floor_kernel:.1f})", "<= 4 ms/MB",
             ms_per_mb <= 4, {"output_path.mb_per_cpu_s": 1000 / ms_per_mb}),
            ("  of which the daemon's own code", f"{ms_per_mb - kernel:.1f} ms/MB",
             f"kernel {kernel:.1f}; {rate:.1f} MB/s at {percent:.1f} % of a core", "- (informative)",
             None, {"output_path.own_mb_per_cpu_s": 1000 / (ms_per_mb - kernel)})]


def sim():
    run(["cargo", "build", "--locked", "--release", "-p", "baton-sim"])
    best = 0.0
    for _ in range(3):
        out = run([str(TARGET / "release" / "baton-sim"), "run",
                   "sim/speed/five-agents-ten-minutes.toml"])
        found = re.search(r"([\d.]+) simulated s per wall s", out)
        if not found:
            raise SystemExit(f"summary: baton-sim printed no speed:\n{out}")
        best = max(best, float(found.group(1)))
    return [("simulator, five agents ten minutes", f"{best:.0f}x real time", "best of 3",
             ">= 5,000x", best >= 5000, {"sim.speed": best})]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(PARTS), help="comma-separated: " + ", ".join(PARTS))
    parser.add_argument("--accept", action="store_true", help="write the figures to " + str(FIGURES))
    args = parser.parse_args()
    chosen = [p for p in args.only.split(",") if p]
    unknown = [p for p in chosen if p not in PARTS]
    if unknown:
        parser.error(f"unknown part(s): {', '.join(unknown)}")
    rows = []
    for part in chosen:
        rows.extend(globals()[part]())
    load = Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "?"
    print(f"{'figure':<38} {'now':>18}  {'in-run baseline':<42} {'bar':<26} met")
    for name, now, baseline, bar, met, _ in rows:
        verdict = "-" if met is None else "yes" if met else "NO"
        print(f"{name:<38} {now:>18}  {baseline:<42} {bar:<26} {verdict}")
    print(f"(machine: {os.cpu_count()} cores, load average {load} at the end)")
    figures = {k: v for *_, keyed in rows for k, v in keyed.items()}
    if FIGURES.exists():
        accepted = json.loads(FIGURES.read_text())
        fallen = [f"{k}: {v:.3g} against {accepted['figures'][k]:.3g} accepted"
                  for k, v in figures.items()
                  if k in accepted["figures"] and v < accepted["figures"][k] * (1 - FALL_MAX)]
        print(f"against the figures accepted on {accepted['date']} ({accepted['machine']}):")
        print("\n".join("  FELL " + line for line in fallen) if fallen
              else f"  none fell by more than {FALL_MAX:.0%}")
    if args.accept:
        old = json.loads(FIGURES.read_text())["figures"] if FIGURES.exists() else {}
        old.update(figures)
        FIGURES.write_text(json.dumps({
            "date": datetime.date.today().isoformat(),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, load {load}",
            "note": "higher is better for every figure (times are kept as their inverses)",
            "figures": old}, indent=2, sort_keys=True) + "\n")
        print(f"written: {FIGURES}")


if __name__ == "__main__":
    main()
