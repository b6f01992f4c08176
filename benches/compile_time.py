#!/usr/bin/env python3
"""Compile-time scaling of chain! (docs/rules.md: "a 200-step chain! compiles, and its build time
grows linearly with the step count").

Generates a scratch crate under target/compile-time/ (a path dependency on this workspace) whose
lib.rs is one chain of N `+1` steps on a pending start, written either with chain! or as the same
chain hand-written with `add_callback`, for N in 25, 50, 100, 200. Each is built in debug
(`cargo build` of just that crate; its dependencies are built once beforehand; incremental
compilation off, so that a touch means a full build of the crate), best of 3 after a `touch`.
Prints wall and CPU seconds (CPU time of cargo and rustc, which other processes on a shared
machine disturb much less), the chain!/hand-written ratio, and the CPU cost of each added step,
which stays constant when growth is linear. A chain that stops at rustc's recursion limit is
reported as such, and timed with the limit raised, as a user would have to.

    python3 benches/compile_time.py            # 25 50 100 200
    python3 benches/compile_time.py 25 50 400  # other sizes
"""

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZES = [int(arg) for arg in sys.argv[1:]] or [25, 50, 100, 200]
RUNS = 3  # best of


def target_dir() -> Path:
    env = os.environ.get("CARGO_TARGET_DIR")
    return Path(env) if env else ROOT / "target"


SCRATCH = target_dir() / "compile-time"
# Incremental compilation off: a touch alone would otherwise let rustc reuse all its work.
ENV = dict(os.environ, CARGO_TARGET_DIR=str(SCRATCH / "target"), CARGO_INCREMENTAL="0")


def source(kind: str, steps: int, recursion_limit: int | None = None) -> str:
    header = "use deferred::{Deferred, chain};\n\n" if kind == "chain!" else "use deferred::Deferred;\n\n"
    if recursion_limit is not None:
        header = f"#![recursion_limit = \"{recursion_limit}\"]\n" + header
    if kind == "empty":
        return header + "pub fn run(start: Deferred<u64>) -> Deferred<u64> {\n    start\n}\n"
    if kind == "chain!":
        body = "".join(f"        then |v{k}| v{k} + 1\n" for k in range(steps))
        return (
            header
            + "pub fn run(start: Deferred<u64>) -> Deferred<u64> {\n    chain! {\n        start\n"
            + body
            + "    }\n}\n"
        )
    body = "".join("        .add_callback(|v| Ok(v + 1))\n" for _ in range(steps))
    return header + "pub fn run(start: Deferred<u64>) -> Deferred<u64> {\n    start\n" + body + "}\n"


def write_crate(kind: str, steps: int, recursion_limit: int | None = None) -> None:
    (SCRATCH / "src").mkdir(parents=True, exist_ok=True)
    (SCRATCH / "Cargo.toml").write_text(
        "[package]\n"
        'name = "compile-time-scratch"\n'
        'version = "0.0.0"\n'
        'edition = "2024"\n'
        "publish = false\n\n"
        "[dependencies]\n"
        f'deferred = {{ package = "deferred-chain", path = "{ROOT}" }}\n\n'
        "[workspace]\n"
    )
    (SCRATCH / "src" / "lib.rs").write_text(source(kind, steps, recursion_limit))


class BuildFailed(Exception):
    pass


def cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def build() -> tuple[float, float]:
    """Wall and CPU seconds (cargo and rustc, user + system) of `cargo build` of the scratch
    crate after a touch. CPU time depends much less on the other processes of a shared machine."""
    lib = SCRATCH / "src" / "lib.rs"
    lib.touch()
    cpu = cpu_of_children()
    start = time.perf_counter()
    result = subprocess.run(
        ["cargo", "build", "--quiet", "--offline"],
        cwd=SCRATCH,
        env=ENV,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise BuildFailed(result.stderr)
    return elapsed, cpu_of_children() - cpu


def best_build(kind: str, steps: int, recursion_limit: int | None = None) -> tuple[float, float]:
    """The best wall and the best CPU seconds of RUNS builds."""
    write_crate(kind, steps, recursion_limit)
    build()  # the first build after a source change may also rebuild metadata
    runs = [build() for _ in range(RUNS)]
    return min(wall for wall, _ in runs), min(cpu for _, cpu in runs)


def best_build_or_raise_limit(kind: str, steps: int) -> tuple[tuple[float, float], str]:
    """Builds as written; if rustc stops at its recursion limit, says so and times the build
    with `#![recursion_limit]` raised, as a user would have to."""
    try:
        return best_build(kind, steps), ""
    except BuildFailed as failure:
        if "recursion limit" not in failure.args[0]:
            sys.exit(f"the scratch crate did not build:\n{failure.args[0][-4000:]}")
        limit = 128
        while True:
            limit *= 2
            try:
                return best_build(kind, steps, limit), f"needs #![recursion_limit = \"{limit}\"]"
            except BuildFailed as again:
                if "recursion limit" not in again.args[0] or limit >= 8192:
                    sys.exit(f"the scratch crate did not build:\n{again.args[0][-4000:]}")


def main() -> None:
    print(f"scratch crate: {SCRATCH}")
    write_crate("empty", 0)
    subprocess.run(["cargo", "build", "--quiet"], cwd=SCRATCH, env=ENV, check=True)
    empty_wall, empty_cpu = best_build("empty", 0)
    print(f"empty crate (fixed cost of cargo + rustc): {empty_wall:.2f} s wall, {empty_cpu:.2f} s CPU")
    print(
        f"{'steps':>6} {'chain! wall':>12} {'hand wall':>10} {'chain! CPU':>11} {'hand CPU':>9} "
        f"{'ratio':>6} {'chain! ms/step':>15} {'hand ms/step':>13}  note"
    )
    rows = []
    previous = (0, empty_cpu, empty_cpu)
    for steps in SIZES:
        (chain_wall, chain_cpu), chain_note = best_build_or_raise_limit("chain!", steps)
        (hand_wall, hand_cpu), hand_note = best_build_or_raise_limit("hand", steps)
        notes = [("chain!", chain_note), ("hand", hand_note)]
        note = "; ".join(f"{who} {what}" for who, what in notes if what)
        # The marginal CPU cost of a step since the previous size.
        p_steps, p_chain, p_hand = previous
        slope_chain = (chain_cpu - p_chain) / (steps - p_steps) * 1e3
        slope_hand = (hand_cpu - p_hand) / (steps - p_steps) * 1e3
        rows.append((steps, chain_cpu, hand_cpu, slope_chain, slope_hand))
        print(
            f"{steps:>6} {chain_wall:>12.2f} {hand_wall:>10.2f} {chain_cpu:>11.2f} {hand_cpu:>9.2f} "
            f"{chain_cpu / hand_cpu:>6.2f} {slope_chain:>15.1f} {slope_hand:>13.1f}  {note}"
        )
        previous = (steps, chain_cpu, hand_cpu)
    # Linear growth: an added step costs the same however long the chain already is. Compare the
    # marginal CPU cost per step over the last interval with that over the second one (the first
    # includes the crate's fixed cost of instantiating the core's generics once).
    for who, column in [("chain!", 3), ("hand-written", 4)]:
        if len(rows) < 3:
            break
        first, last = rows[1][column], rows[-1][column]
        growth = last / first if first > 0 else float("inf")
        verdict = "linear" if growth <= 1.5 else "SUPERLINEAR"
        print(
            f"{who}: {last:.1f} ms CPU per added step at {rows[-1][0]} steps vs {first:.1f} at "
            f"{rows[1][0]} steps ({growth:.1f}x): {verdict}"
        )


if __name__ == "__main__":
    main()
