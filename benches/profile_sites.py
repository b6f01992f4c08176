#!/usr/bin/env python3
"""Summaries of a valgrind profile of `benches/bluebird.rs` (see BENCHMARKS.md, section 5).

    python3 benches/profile_sites.py dhat FILE REQUESTS CALLS
        heap by allocation site, from `valgrind --tool=dhat --dhat-out-file=FILE BIN run W V N`:
        per request, the blocks and bytes each site allocates, and its bytes live at the peak
        (t-gmax); per fake I/O call (CALLS per request: doxbee 7, parallel 26).
    python3 benches/profile_sites.py callgrind FILE REQUESTS CALLS
        instructions by group of functions, from `valgrind --tool=callgrind
        --collect-atstart=no --toggle-collect='*measured_run*' ...` (run through
        callgrind_annotate).

REQUESTS is the measured run's count; the `run` mode also runs 350 warm-up requests, which
dhat's totals and callgrind's toggle include, so totals are divided by REQUESTS + 350 (the peak,
reached in the measured run, by REQUESTS).
"""

import collections
import json
import re
import subprocess
import sys

WARMUP = 350

# Frames that are allocator plumbing, not the site that asked for memory.
PLUMBING = re.compile(
    r"^(malloc|realloc|calloc|memalign|posix_memalign|alloc::|<alloc::|core::|<core::"
    r"|std::thread::local|bluebird::Counting|__rust)"
)


def short(frame):
    frame = re.sub(r"^0x[0-9A-F]+: ", "", frame)
    frame = re.sub(r" \(.*\)$", "", frame)
    frame = frame.replace("deferred_core::shared::chain::", "dc::")
    return frame.replace("deferred_core::", "dc::")[:90]


def dhat(path, requests, calls):
    data = json.load(open(path))
    frames = data["ftbl"]
    sites = collections.defaultdict(lambda: [0, 0, 0])
    for pp in data["pps"]:
        names = [short(frames[f]) for f in pp["fs"]]
        i = 0
        while i < len(names) and PLUMBING.search(names[i]):
            i += 1
        site = sites[" <- ".join(names[i : i + 2])]
        site[0] += pp["tbk"]
        site[1] += pp["tb"]
        site[2] += pp["gb"]
    total = requests + WARMUP
    blocks = sum(s[0] for s in sites.values()) / total
    allocated = sum(s[1] for s in sites.values()) / total
    peak = sum(s[2] for s in sites.values()) / requests
    print(
        f"per request: {blocks:.1f} blocks, {allocated:.0f} B allocated "
        f"({allocated / calls:.0f} B per I/O call); live at the peak {peak:.0f} B "
        f"({peak / calls:.0f} B per I/O call)"
    )
    print(f"{'blocks':>7} {'B/req':>7} {'B each':>7} {'peak B/req':>10}  site <- caller")
    for name, (tbk, tb, gb) in sorted(sites.items(), key=lambda kv: -kv[1][1]):
        if tbk / total < 0.05 and gb / requests < 8:
            continue
        print(f"{tbk / total:7.2f} {tb / total:7.0f} {tb // max(tbk, 1):7d} {gb / requests:10.0f}  {name}")


GROUPS = [
    ("malloc and free (glibc)", r"malloc\.c|arena\.c|alloc_perturb|__rust_alloc|__rust_dealloc"),
    ("the join (gather_results, fan_in)", r"fan_in|gather|list::"),
    ("links: make, add a stage, fire, run, park, wait, drop",
     r"pending::|Link<|set_listener|with_canceller|Deferred<T,E>::|drop_unspent|Resolver|drop_slow"),
    ("stage lists: push, pop, drop", r"Stages<|drop_in_place<\[\(alloc::boxed::Box<dyn"),
    ("steps: run_step, stage run, slot moves", r"run_step|unwound_at|stage::|FnOnce::call_once|type_id"),
    ("run loop: enqueue, drain, deliver", r"run_loop|kind::enqueue"),
    ("memcpy", r"memcpy|memmove"),
    ("tokio: tasks, scheduler, oneshot, wakers", r"tokio::|futures_util::|Waker|waker"),
    ("the benchmark: fakes, queue, Version, split, done",
     r"bluebird::|VecDeque|LocalKey|Split|SystemTime|clock_gettime|vec::|from_iter|IntoIter"),
]


def callgrind(path, requests, calls):
    out = subprocess.run(
        ["callgrind_annotate", "--inclusive=no", "--auto=no", "--threshold=100", path],
        capture_output=True, text=True, check=True,
    ).stdout
    groups = collections.Counter()
    total = 0
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*)", line)
        if not m or "PROGRAM TOTALS" in line:
            continue
        ir, function = int(m.group(1).replace(",", "")), m.group(2)
        total += ir
        for name, pattern in GROUPS:
            if re.search(pattern, function):
                groups[name] += ir
                break
        else:
            groups["other"] += ir
    n = requests + WARMUP
    print(f"{total / n:.0f} Ir per request, {total / n / calls:.0f} per I/O call")
    for name, ir in groups.most_common():
        print(f"{ir / n:8.0f} Ir/req {ir / n / calls:6.0f} Ir/call {100 * ir / total:5.1f}%  {name}")


if __name__ == "__main__":
    mode, path, requests, calls = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    {"dhat": dhat, "callgrind": callgrind}[mode](path, requests, calls)
