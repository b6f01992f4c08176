use deferred::chain;

fn main() {
    let d = chain! {
        vec![3, 1, 2]
        then Vec::is_empty
        then |empty| !empty
    };
    let _ = d.wait();
}
