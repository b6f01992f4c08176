use deferred::chain;

fn main() {
    let _ = chain! {};
}
