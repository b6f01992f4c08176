use deferred::chain;

fn main() {
    let d = chain! {
        7u32
        then |name: String| name.len()
    };
    let _ = d.wait();
}
