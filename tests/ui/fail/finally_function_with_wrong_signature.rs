use deferred::chain;

fn report(code: u32, message: &str) {
    println!("{code}: {message}");
}

fn main() {
    let d = chain! {
        7
        finally report
    };
    let _ = d.wait();
}
