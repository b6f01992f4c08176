use deferred::chain;

fn main() {
    let d = chain! {
        1
        finally |value, error| ()
    };
    let _ = d.wait();
}
