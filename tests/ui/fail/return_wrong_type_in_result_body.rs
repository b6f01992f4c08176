use deferred::{Failure, chain};

fn main() {
    let d = chain! {
        5
        then |x: i32| {
            if x == 0 {
                return 0;
            }
            Ok::<_, Failure>(x + 1)
        }
        then |y| y * 2
    };
    let _ = d.wait();
}
