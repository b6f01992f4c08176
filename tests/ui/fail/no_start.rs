use deferred::chain;

fn main() {
    let _ = chain! {
        then |x: u32| x + 1
    };
}
