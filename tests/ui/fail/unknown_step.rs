use deferred::chain;

fn main() {
    let d = chain! {
        1
        frobnicate |x| x + 1
        then |x| x * 2
    };
    let _ = d.wait();
}
