use deferred::chain;

fn main() {
    let d = chain! {
        1
        than |x| x + 1
    };
    assert_eq!(d.wait().unwrap(), 2);
}
