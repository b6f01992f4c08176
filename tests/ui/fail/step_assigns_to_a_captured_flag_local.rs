use deferred::{LocalDeferred, chain};

fn main() {
    let mut done = false;
    let d = chain! {
        LocalDeferred::succeed(1)
        then |x| x + 1
        finally || done = true
    };
    let _ = d.wait();
    assert!(done);
}
