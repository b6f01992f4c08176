use deferred::chain;

fn main() {
    let d = chain! {
        "42"
        then |s| s.parse::<u32>()
    };
    let _ = d.wait();
}
