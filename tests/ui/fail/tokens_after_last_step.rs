use deferred::chain;

fn main() {
    let d = chain! {
        1
        then |x| x + 1
        done
    };
    let _ = d.wait();
}
