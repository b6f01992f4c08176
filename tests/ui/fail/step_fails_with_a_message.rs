use deferred::chain;

fn main() {
    let d = chain! {
        5_i32
        then |x| if x >= 0 { Ok(x) } else { Err("negative") }
        then |x| x * 2
    };
    let _ = d.wait();
}
