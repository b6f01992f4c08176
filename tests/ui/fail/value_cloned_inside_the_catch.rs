use deferred::{Deferred, Failure, chain};

fn lookup(name: &str) -> Deferred<u32> {
    Deferred::fail(Failure::msg(format!("no employee named {name}")))
}

fn main() {
    let name = String::from("Ada");
    let d = chain! {
        lookup("Ada")
        then |id| format!("{name} is #{id}")
        catch |f| {
            // Too late: the catch takes `name` to clone it, and the run took it first.
            let name = name.clone();
            format!("{name}: {f}")
        }
    };
    let _ = d.wait();
}
