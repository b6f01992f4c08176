use deferred::{Failure, LocalDeferred, chain};

fn main() {
    let d = chain! {
        LocalDeferred::<_, Failure>::succeed(String::from("hello"))
        then str::to_uppercase
        then |s| s.len()
    };
    let _ = d.wait();
}
