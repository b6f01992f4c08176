use deferred::chain;

fn main() {
    let d = chain! {
        vec![1, 2, 3]
        then |v| {
            let first = v.first()?;
            *first + 1
        }
    };
    let _ = d.wait();
}
