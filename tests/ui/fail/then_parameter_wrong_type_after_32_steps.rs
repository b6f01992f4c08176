use deferred::chain;

fn main() {
    let d = chain! {
        7u32
        then |x| x + 1
        then |x| x + 1
        then |x| x + 1
        then |x| x + 1
        then |x| x + 1
        then |x| x + 1
        then |x| x + 1
        then |x| x + 1
        then |x| x + 1
        then |x| x + 1
        then |x| x + 1
        then |x| x + 1
        then |x| x + 1
        then |x| x + 1
        then |x| x + 1
        then |x| x + 1
        then |x| x + 1
        then |x| x + 1
        then |x| x + 1
        then |x| x + 1
        then |x| x + 1
        then |x| x + 1
        then |x| x + 1
        then |x| x + 1
        then |x| x + 1
        then |x| x + 1
        then |x| x + 1
        then |x| x + 1
        then |x| x + 1
        then |x| x + 1
        then |x| x + 1
        then |x| x + 1 // 32 steps
        then |name: String| name.len() // the first step of the second segment of 32
    };
    let _ = d.wait();
}
