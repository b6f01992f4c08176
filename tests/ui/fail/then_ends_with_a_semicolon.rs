use deferred::chain;

fn main() {
    // The first step's body ends with `;`: it gives `()`, which the next step adds to.
    let d = chain! {
        vec![1, 2, 3]
        then |v| {
            println!("{} items", v.len());
            v.len();
        }
        then |n| n + 1
    };
    let _ = d.wait();
}
