use deferred::{Deferred, Failure, chain};

fn main() {
    let d = chain! {
        Deferred::<u32>::fail(Failure::msg("boom"))
        then |x| x + 1
        catch |e: Box<dyn std::error::Error + Send + Sync>| {
            eprintln!("{e}");
            0
        }
    };
    let _ = d.wait();
}
