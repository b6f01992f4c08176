use std::time::Duration;

use deferred::{Deferred, Inbox};

fn main() {
    let inbox = Inbox::new(|| {});
    let (d, _resolver) = Deferred::<u32>::pending();
    let d = d.add_timeout(Duration::from_secs(1), &inbox.clock());
    let _ = d.wait();
}
