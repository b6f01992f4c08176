use deferred::chain;

fn main() {
    let d = chain! {
        1
        then x + 1
    };
    let _ = d.wait();
}
