use deferred::{Deferred, chain};

#[derive(Debug)]
struct LookupError;

fn lookup(id: u32) -> Deferred<String, LookupError> {
    Deferred::succeed(format!("user {id}"))
}

fn main() {
    let d = chain! {
        lookup(7)
        then |name| name.len()
        finally || println!("done")
    };
    let _ = d.wait();
}
