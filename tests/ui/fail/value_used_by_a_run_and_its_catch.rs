use deferred::{Deferred, Failure, chain};

fn lookup(name: &str) -> Deferred<u32> {
    Deferred::fail(Failure::msg(format!("no employee named {name}")))
}

fn main() {
    let name = String::from("Ada");
    let d = chain! {
        lookup("Ada")
        then |id| format!("{name} is #{id}")
        catch |f| format!("{name}: {f}")
    };
    let _ = d.wait();
}
