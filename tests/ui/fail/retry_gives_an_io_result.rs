use std::time::Duration;

use deferred::{ManualClock, RetryPolicy, retry};

fn main() {
    let clock = ManualClock::new();
    let policy = RetryPolicy::exponential(Duration::from_millis(10));
    let d = retry(clock, policy, || std::fs::read_to_string("/etc/hostname"));
    let _ = d.wait();
}
