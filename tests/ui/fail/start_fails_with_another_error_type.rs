use deferred::chain;

fn main() {
    let input = "42";
    let d = chain! {
        input.parse::<u32>()
        then |n| n + 1
        then |n| n * 2
    };
    let _ = d.wait();
}
