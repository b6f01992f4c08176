use deferred::{Deferred, chain};

fn fetch_user() -> Deferred<String> {
    Deferred::succeed("alice".to_owned())
}

fn main() {
    let d = chain! {
        fetch_user
        then |name| name.len()
    };
    let _ = d.wait();
}
