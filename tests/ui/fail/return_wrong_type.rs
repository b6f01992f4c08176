use deferred::{Failure, chain};

fn main() {
    let d = chain! {
        5
        then |x: i32| {
            if x < 0 {
                return Err(Failure::msg("negative"));
            }
            x * 2
        }
        then |y| y + 1
    };
    let _ = d.wait();
}
