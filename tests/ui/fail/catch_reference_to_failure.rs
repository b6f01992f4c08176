use deferred::{LocalDeferred, Failure, chain};

fn main() {
    let d = chain! {
        LocalDeferred::<u32>::fail(Failure::msg("boom"))
        then |x| x + 1
        catch |f: &Failure| {
            eprintln!("{f}");
            0
        }
    };
    let _ = d.wait();
}
