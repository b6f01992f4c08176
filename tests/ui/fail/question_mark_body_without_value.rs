use deferred::chain;

fn main() {
    let d = chain! {
        vec![1, 2, 3]
        then |v| {
            let last = v.last()?;
            println!("{last}");
        }
    };
    let _ = d.wait();
}
