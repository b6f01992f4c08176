use deferred::defer_to_thread;

fn main() {
    // The closure gives an `io::Result`, so the Deferred's error type would be `io::Error`,
    // which cannot hold a panic or a cancel. Write
    // `let d: Deferred<String> = defer_to_thread(|| Ok(std::fs::read_to_string(..)?))`.
    let d = defer_to_thread(|| std::fs::read_to_string("/etc/hostname"));
    drop(d);
}
