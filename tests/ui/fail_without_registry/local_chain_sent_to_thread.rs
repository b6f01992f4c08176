use deferred::{LocalDeferred, chain};

fn main() {
    let d = chain! {
        LocalDeferred::<u32>::succeed(1)
        then |x| x + 1
    };
    let _ = std::thread::spawn(move || d.wait());
}
