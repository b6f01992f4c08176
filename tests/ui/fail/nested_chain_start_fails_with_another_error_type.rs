use deferred::chain;

fn main() {
    let d = chain! {
        String::from("42")
        then |s| chain! {
            s.parse::<u32>()
            then |n| n + 1
        }
        then |n| n * 2
    };
    let _ = d.wait();
}
