#!/usr/bin/env python3
"""Atomic read-modify-write operations executed per chain or per request, counted, not timed.

On a machine where an atomic operation costs tens of cycles (about 5 ns on the AMD Zen 5 machine
of BENCHMARKS.md), their number decides the `Send` kind's pending chains more than the
instructions do. Valgrind runs the bench binary twice, N and 2N times, under callgrind with one
count per instruction; objdump lists the binary's atomic instructions (`lock`-prefixed, or
`xchg` with memory, which is atomic without the prefix); the difference of their executed
counts, divided by N, is the atomic operations of one chain (one request). A failed
compare-and-swap counts: it costs what a successful one does.

    python3 benches/atomic_ops.py chains [FILTER] [--functions]
        each chain of benches/common/mod.rs (`instructions` bench binary) whose "shape peer"
        contains FILTER: atomic operations per chain (10 steps); with --functions, also each
        function's share (where the atomic instruction is, after inlining) and the instruction.
    python3 benches/atomic_ops.py bluebird WORKLOAD VARIANT... [--functions]
        Bluebird's workloads (`bluebird` bench binary, `run WORKLOAD VARIANT N`): per request.
        WORKLOAD: doxbee or parallel; VARIANT: the numbers of `benches/bluebird.rs`'s `run` mode
        (2 Deferred chain!, 4 LocalDeferred chain!, 5 tokio, ...).

Build the binaries first (`cargo bench -p deferred-benches --bench instructions --no-run`, the
same with `--bench bluebird`); needs valgrind and objdump.
"""

import collections
import glob
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The mnemonic after the address: `lock ...`, or `xchg` with a memory operand.
ATOMIC = re.compile(r"^\s*([0-9a-f]+):\s+(lock\s|xchg\s.*\()")


def newest_binary(name):
    found = [
        path
        for path in glob.glob(os.path.join(ROOT, "target", "release", "deps", name + "-*"))
        if not path.endswith(".d") and os.access(path, os.X_OK)
    ]
    if not found:
        sys.exit(f"no {name} bench binary: cargo bench -p deferred-benches --bench {name} --no-run")
    return max(found, key=os.path.getmtime)


def atomic_addresses(binary):
    """Every atomic instruction in `binary`: its address, and the function and instruction
    there."""
    listing = subprocess.run(
        ["objdump", "-d", "-C", "--no-show-raw-insn", binary],
        capture_output=True, text=True, check=True,
    ).stdout
    addresses = {}
    function = "?"
    for line in listing.splitlines():
        symbol = re.match(r"^[0-9a-f]+ <(.*)>:$", line)
        if symbol:
            function = symbol.group(1)
            continue
        atomic = ATOMIC.match(line)
        if atomic:
            addresses[int(atomic.group(1), 16)] = (function, line.split("\t")[-1].strip())
    return addresses


def executed(profile, binary):
    """Executions of each instruction address of `binary` in a callgrind profile made with
    `--dump-instr=yes --compress-pos=no --compress-strings=no`: its Ir. Only the cost lines of
    the binary's own object count (`ob=`: a library's addresses may coincide with the
    binary's), and the cost line after `calls=` is a call's inclusive cost, not the
    instruction's own."""
    counts = collections.Counter()
    skip = False
    ours = False
    name = os.path.realpath(binary)
    with open(profile) as lines:
        for line in lines:
            if line.startswith("ob="):
                ours = os.path.realpath(line[3:].strip()) == name
                continue
            if line.startswith("calls="):
                skip = True
                continue
            if not line.startswith("0x"):
                continue
            if skip:
                skip = False
                continue
            fields = line.split()
            if ours and len(fields) >= 3:
                counts[int(fields[0], 16)] += int(fields[2])
    return counts


def atomics_of_run(binary, args, addresses):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        env = dict(os.environ)
        env.setdefault("RUST_LIB_BACKTRACE", "0")
        subprocess.run(
            ["valgrind", "--tool=callgrind", "--dump-instr=yes", "--compress-pos=no",
             "--compress-strings=no", f"--callgrind-out-file={out}", binary, *args],
            env=env, check=True, capture_output=True,
        )
        counts = executed(out, binary)
    # A position-independent binary runs where valgrind loads it: find the offset at which the
    # listed atomic instructions were executed.
    best = max(
        (0, 0x108000, 0x400000, 0x4000000),
        key=lambda offset: sum(1 for a in addresses if counts.get(a + offset)),
    )
    return collections.Counter({a: counts[a + best] for a in addresses if counts.get(a + best)})


def per_run(binary, args_of, n, addresses, functions):
    """Atomic operations of one run (the count of 2N runs less that of N, over N), and, with
    `functions`, the lines of each atomic instruction's share."""
    once = atomics_of_run(binary, args_of(n), addresses)
    twice = atomics_of_run(binary, args_of(2 * n), addresses)
    total = (sum(twice.values()) - sum(once.values())) / n
    lines = []
    if functions:
        shares = sorted(
            ((twice[a] - once[a]) / n, a) for a in twice.keys() | once.keys()
        )
        for share, a in reversed(shares):
            if share >= 0.05:
                function, instruction = addresses[a]
                lines.append(f"    {share:6.2f}  {instruction[:30]:<30} {function[:110]}")
    return total, lines


def chains(filter_, functions):
    binary = newest_binary("instructions")
    addresses = atomic_addresses(binary)
    source = open(os.path.join(ROOT, "benches", "common", "mod.rs")).read()
    cases = re.findall(r'^\s*\((sync|pending|nested|error|raised), "([^"]+)", \w+\),', source, re.M)
    if not cases:
        sys.exit("no CASES found in benches/common/mod.rs")
    print("atomic operations per chain (callgrind, executed lock-prefixed and xchg instructions)")
    print(f"{'shape':<8} {'peer':<44} {'atomics':>8}")
    for index, (shape, peer) in enumerate(cases):
        if filter_ and filter_ not in f"{shape} {peer}":
            continue
        count, lines = per_run(
            binary, lambda n: ["run", str(index), str(n)], 2000, addresses, functions
        )
        print(f"{shape:<8} {peer:<44} {count:>8.1f}")
        if lines:
            print("\n".join(lines))


def bluebird(workload, variants, functions):
    binary = newest_binary("bluebird")
    addresses = atomic_addresses(binary)
    print(f"{workload}: atomic operations per request (callgrind)")
    for variant in variants:
        count, lines = per_run(
            binary, lambda n: ["run", workload, variant, str(n)], 1000, addresses, functions
        )
        print(f"variant {variant:<4} {count:>8.1f}")
        if lines:
            print("\n".join(lines))


def main():
    args = sys.argv[1:]
    functions = "--functions" in args
    args = [arg for arg in args if arg != "--functions"]
    if args[:1] == ["chains"] and len(args) <= 2:
        chains(args[1] if len(args) == 2 else None, functions)
    elif args[:1] == ["bluebird"] and len(args) >= 3:
        bluebird(args[1], args[2:], functions)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
