use deferred::chain;

fn main() {
    let d = chain! {
        1
        then
    };
    let _ = d.wait();
}
