use deferred::chain;

fn main() {
    let d = chain! {
        5
        then |x: i32| {
            if x == 0 {
                return "zero";
            }
            x + 1
        }
        then |y| y * 2
    };
    let _ = d.wait();
}
