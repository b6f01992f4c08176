//! Instructions per step of each chain in `common/mod.rs`, counted by callgrind: unlike time,
//! they do not depend on what else the machine is doing.
//!
//! `cargo bench -p deferred-benches --bench instructions` runs this binary under `valgrind
//! --tool=callgrind` twice per chain, running the chain `SHORT` and then `LONG` times, and prints
//! `(Ir(LONG) - Ir(SHORT)) / ((LONG - SHORT) * 10)`: the instructions of one step, start-up and
//! one-time costs cancelled out. Without valgrind it says so and does nothing.
//! `cargo bench -p deferred-benches --bench instructions -- FILTER` keeps the chains whose
//! "shape peer" contains FILTER.

use std::hint::black_box;
use std::process::Command;

mod common;

use common::{CASES, STEPS};

const SHORT: u64 = 2_000;
const LONG: u64 = 6_000;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [mode, index, count] = &args[..]
        && mode == "run"
    {
        let (_, _, chain) = CASES[index.parse::<usize>().expect("a case index")];
        let count: u64 = count.parse().expect("a count");
        for i in 0..count {
            black_box(chain(black_box(i)));
        }
        return;
    }
    let filter = args.iter().find(|arg| !arg.starts_with("--"));
    if Command::new("valgrind").arg("--version").output().is_err() {
        println!("instructions: valgrind not found, skipped (apt-get install valgrind)");
        return;
    }
    let me = std::env::current_exe().expect("the bench binary");
    println!("instructions per step (callgrind, Ir)");
    println!("{:<8} {:<30} {:>10}", "shape", "peer", "Ir/step");
    for (index, (shape, peer, _)) in CASES.iter().enumerate() {
        if filter.is_some_and(|filter| !format!("{shape} {peer}").contains(filter.as_str())) {
            continue;
        }
        let count = |n: u64| -> f64 {
            let mut valgrind = Command::new("valgrind");
            if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
                // Failures capture no backtrace: the production default (see benches/steps.rs).
                valgrind.env("RUST_LIB_BACKTRACE", "0");
            }
            let output = valgrind
                .args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
                .arg(&me)
                .args(["run", &index.to_string(), &n.to_string()])
                .output()
                .expect("valgrind runs");
            let stderr = String::from_utf8_lossy(&output.stderr);
            collected(&stderr).unwrap_or_else(|| panic!("no callgrind total in:\n{stderr}"))
        };
        let per_step = (count(LONG) - count(SHORT)) / ((LONG - SHORT) * STEPS) as f64;
        println!("{shape:<8} {peer:<30} {per_step:>10.1}");
    }
}

/// The total callgrind prints at exit: `==PID== Collected : 123456`.
fn collected(stderr: &str) -> Option<f64> {
    stderr.lines().find_map(|line| {
        let (_, total) = line.split_once("Collected :")?;
        total.trim().parse().ok()
    })
}
