use deferred::{chain, Deferred};

fn main() {
    let d = chain! {
        1
        then |x| Deferred::<u32, std::io::Error>::succeed(x)
    };
    let _ = d.wait();
}
