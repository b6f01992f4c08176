use deferred::chain;

fn main() {
    let prefix = String::from("employee #");
    let prefix_ref = &prefix;
    let d = chain! {
        7
        then move |id| format!("{prefix_ref}{id}")
    };
    let _ = d.wait();
}
