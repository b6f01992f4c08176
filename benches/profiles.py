#!/usr/bin/env python3
"""The benches' key rows under three build profiles, side by side: the bench profile as Cargo
ships it (16 codegen units a crate, no cross-crate LTO), one codegen unit, and fat LTO.

    python3 benches/profiles.py           instructions (callgrind): the pending 10-step chains,
                                          a step, and Bluebird's chain! and tokio rows, a request
    python3 benches/profiles.py --time    and the times: `steps -- --interleaved pending` (about
                                          20 s a profile) and `bluebird` (about 15 s)

Each profile builds in a target directory of its own (target/profile-NAME), with line tables,
which do not change the code; the first run builds all three, a few minutes each. Needs
valgrind. BENCHMARKS.md, "The build profile: one codegen unit, and fat LTO", has what it
printed and what it says.
"""

import glob
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PROFILES = [
    ("as shipped", "shipped", {}),
    ("one codegen unit", "one-unit", {"CARGO_PROFILE_BENCH_CODEGEN_UNITS": "1"}),
    ("fat LTO", "fat-lto", {"CARGO_PROFILE_BENCH_LTO": "fat"}),
]

# The rows of `instructions -- pending` and of `steps -- --interleaved pending` to print.
PENDING = [
    "chain!",
    "local chain!",
    "add_callback",
    "local add_callback",
    "futures oneshot+map",
    "tokio oneshot, async",
]

# The rows of `bluebird` to print, for each workload.
BLUEBIRD = ["Deferred chain!", "LocalDeferred chain!", "async/await (tokio)"]


def build(directory, settings, benches):
    env = dict(os.environ)
    env.update(settings)
    env["CARGO_TARGET_DIR"] = os.path.join(ROOT, "target", "profile-" + directory)
    env["CARGO_PROFILE_BENCH_DEBUG"] = "line-tables-only"
    command = ["cargo", "bench", "-q", "-p", "deferred-benches", "--no-run"]
    for bench in benches:
        command += ["--bench", bench]
    subprocess.run(command, cwd=ROOT, env=env, check=True)


def binary(directory, name):
    found = [
        path
        for path in glob.glob(
            os.path.join(ROOT, "target", "profile-" + directory, "release", "deps", name + "-*")
        )
        if not path.endswith(".d") and os.access(path, os.X_OK)
    ]
    return max(found, key=os.path.getmtime)


def output(command):
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True).stdout


def pending_instructions(directory):
    """`instructions pending`: Ir a step, by peer."""
    rows = {}
    for line in output([binary(directory, "instructions"), "pending"]).splitlines():
        found = re.match(r"^pending\s+(.*?)\s+([\d.]+)$", line)
        if found:
            rows[found.group(1)] = float(found.group(2))
    return rows


def bluebird_rows(directory, arguments, column):
    """`bluebird ARGUMENTS`: by workload and variant, the number in `column` (counted after the
    variant's name)."""
    rows = {}
    workload = None
    for line in output([binary(directory, "bluebird")] + arguments).splitlines():
        heading = re.match(r"^(doxbee|parallel):", line)
        if heading:
            workload = heading.group(1)
            continue
        for variant in BLUEBIRD:
            if workload and line.startswith(variant + " "):
                rows[(workload, variant)] = float(line[len(variant):].split()[column])
    return rows


def pending_times(directory):
    """`steps -- --interleaved pending`: ns a step, by peer."""
    rows = {}
    lines = output([binary(directory, "steps"), "--bench", "--interleaved", "pending"])
    for line in lines.splitlines():
        found = re.match(r"^pending\s+(.*?)\s+([\d.]+)\s+[\d.]+\s+[\d.]+$", line)
        if found:
            rows[found.group(1)] = float(found.group(2))
    return rows


def table(title, rows):
    """`rows`: (label, a cell for each profile)."""
    print(f"\n{title}")
    print(f"{'':<36}" + "".join(f"{name:>18}" for name, _, _ in PROFILES))
    for label, cells in rows:
        print(f"{label:<36}" + "".join(f"{cell:>18}" for cell in cells))


def main():
    timed = "--time" in sys.argv[1:]
    benches = ["instructions", "bluebird"] + (["steps"] if timed else [])
    for name, directory, settings in PROFILES:
        print(f"building: {name} (target/profile-{directory})", file=sys.stderr)
        build(directory, settings, benches)

    instructions = [pending_instructions(directory) for _, directory, _ in PROFILES]
    requests = [
        bluebird_rows(directory, ["--instructions", "10000"], 0) for _, directory, _ in PROFILES
    ]
    rows = [(peer, [f"{each[peer]:.1f}" for each in instructions]) for peer in PENDING]
    rows += [
        (f"{workload}: {variant}", [f"{each[(workload, variant)]:,.0f}" for each in requests])
        for workload in ("doxbee", "parallel")
        for variant in BLUEBIRD
    ]
    table("instructions: a step of a pending 10-step chain; a Bluebird request", rows)

    if not timed:
        return
    times = []
    for name, directory, _ in PROFILES:
        print(f"timing: {name}", file=sys.stderr)
        times.append((pending_times(directory), bluebird_rows(directory, ["--bench"], 2)))
    rows = []
    for peer in PENDING:
        cells = []
        for steps, _ in times:
            futures, tokio = steps["futures oneshot+map"], steps["tokio oneshot, async"]
            cells.append(f"{steps[peer]:.2f} {steps[peer] / futures:.2f}f {steps[peer] / tokio:.2f}t")
        rows.append((peer, cells))
    rows += [
        (f"{workload}: {variant}", [f"{bluebird[(workload, variant)]:.2f}x tokio" for _, bluebird in times])
        for workload in ("doxbee", "parallel")
        for variant in BLUEBIRD[:2]
    ]
    table("time (this run): ns a step, x futures-rs (f), x tokio (t); Bluebird x tokio", rows)


if __name__ == "__main__":
    main()
