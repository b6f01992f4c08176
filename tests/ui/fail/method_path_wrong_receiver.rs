use deferred::chain;

fn main() {
    let d = chain! {
        String::from("hello")
        then String::len
    };
    let _ = d.wait();
}
