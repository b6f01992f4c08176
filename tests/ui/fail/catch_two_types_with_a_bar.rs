use deferred::{Deferred, Failure, chain};

#[derive(Debug)]
struct NotFound;
impl std::fmt::Display for NotFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not found")
    }
}
impl std::error::Error for NotFound {}

#[derive(Debug)]
struct Timeout;
impl std::fmt::Display for Timeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("timed out")
    }
}
impl std::error::Error for Timeout {}

fn main() {
    // Python's `except (NotFound, Timeout)`.
    let d = chain! {
        Deferred::<u32>::fail(Failure::new(NotFound))
        catch |e: NotFound | Timeout| 0
    };
    let _ = d.wait();
}
