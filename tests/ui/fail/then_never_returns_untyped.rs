use deferred::chain;

fn main() {
    let d = chain! {
        1
        then |_| std::process::exit(1)
    };
    let _ = d.wait();
}
