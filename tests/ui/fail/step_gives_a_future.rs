use deferred::chain;

fn main() {
    let d = chain! {
        1
        then |x| async move { x + 1 }
    };
    let _ = d.wait();
}
