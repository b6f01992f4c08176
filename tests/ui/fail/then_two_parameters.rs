use deferred::chain;

fn main() {
    let d = chain! {
        (1, 2)
        then |a, b| a + b
    };
    let _ = d.wait();
}
