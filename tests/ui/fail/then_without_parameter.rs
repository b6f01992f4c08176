use deferred::chain;

fn main() {
    let d = chain! {
        1
        then || 2
    };
    let _ = d.wait();
}
