use deferred::{Failure, chain};

fn main() {
    let d = chain! {
        1
        then |x| x + 1
        finally |outcome: Result<i32, Failure>| println!("{outcome:?}")
    };
    let _ = d.wait();
}
