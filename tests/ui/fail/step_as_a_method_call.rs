use deferred::{Deferred, chain};

fn fetch(n: u32) -> Deferred<String> {
    Deferred::succeed(n.to_string())
}

fn main() {
    // Steps written as a promise's methods (a JavaScript habit).
    let d = chain! {
        fetch(1)
            .then(|name| name.len())
            .catch(|e| 0)
    };
    let _ = d.wait();
}
