use deferred::{Deferred, chain};

fn fetch_user(id: u32) -> Deferred<String> {
    Deferred::succeed(format!("user {id}"))
}

fn main() {
    // What `.then(ids => ids.map(fetchUser))` would give in JavaScript, before `Promise.all`.
    let d = chain! {
        Deferred::<Vec<u32>>::succeed(vec![1, 2])
        then |ids| ids.into_iter().map(fetch_user).collect::<Vec<_>>()
        then |users| users.join(", ")
    };
    let _ = d.wait();
}
