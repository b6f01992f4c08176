use deferred::{Deferred, chain};

fn describe<T: std::fmt::Display>(d: Deferred<T>) -> Deferred<String> {
    chain! {
        d
        then |x| format!("value: {x}")
    }
}

fn main() {
    let _ = describe(Deferred::succeed(1_u32)).wait();
}
