use deferred::chain;

fn main() {
    let d = chain! {
        1
        then x => x + 1
        then (a) => a * 2
    };
    let _ = d.wait();
}
