use deferred::chain;

fn greet(name: String) -> String {
    format!("hello {name}")
}

fn main() {
    let d = chain! {
        7
        then greet
    };
    let _ = d.wait();
}
