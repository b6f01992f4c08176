use deferred::Deferred;

fn main() {
    let d = Deferred::<i32>::succeed(1);
    let d = d.add_callback(|x| if x >= 0 { Ok(x) } else { Err("negative") });
    let _ = d.wait();
}
