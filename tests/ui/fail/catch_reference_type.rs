use deferred::{Deferred, Failure, chain};

#[derive(Debug)]
struct NotFound(String);

impl std::fmt::Display for NotFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "not found: {}", self.0)
    }
}

impl std::error::Error for NotFound {}

fn main() {
    let d = chain! {
        Deferred::<u32>::fail(Failure::new(NotFound("bob".into())))
        then |x| x + 1
        catch |e: &NotFound| {
            eprintln!("trapped {e}");
            0
        }
    };
    let _ = d.wait();
}
