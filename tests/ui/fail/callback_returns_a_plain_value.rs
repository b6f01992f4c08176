use deferred::Deferred;

fn main() {
    let d = Deferred::<u32>::succeed(1);
    let d = d.add_callback(|x| x + 1);
    let _ = d.wait();
}
