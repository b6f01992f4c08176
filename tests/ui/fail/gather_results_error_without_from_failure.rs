use deferred::{Deferred, gather_results};

#[derive(Debug)]
struct DbError;

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the database is down")
    }
}

impl std::error::Error for DbError {}

fn main() {
    let a = Deferred::<u32, DbError>::succeed(1);
    let b = Deferred::<u32, DbError>::succeed(2);
    drop(gather_results(vec![a, b]));
}
