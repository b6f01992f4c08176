use deferred::{Deferred, chain};

fn fetch(n: u32) -> Deferred<String> {
    Deferred::succeed(n.to_string())
}

fn main() {
    // `?` as `await` (a JavaScript habit): the Deferred is the step's value instead, and the
    // next `then` takes what it gives.
    let d = chain! {
        fetch(1)
        then |a| {
            let b = fetch(2)?;
            format!("{a}{b}")
        }
    };
    let _ = d.wait();
}
