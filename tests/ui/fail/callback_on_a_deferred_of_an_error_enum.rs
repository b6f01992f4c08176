// A Deferred of an error type that is not `From<Failure>` can be made (`succeed`, `fail` ask for
// nothing), but no step can be added to it: the error names the type and what it lacks, not
// "the method exists but its trait bounds were not satisfied".
use deferred::Deferred;

#[derive(Debug)]
enum AppError {
    NotFound,
}

fn lookup(id: u32) -> Deferred<u32, AppError> {
    if id == 0 { Deferred::fail(AppError::NotFound) } else { Deferred::succeed(id) }
}

fn main() {
    let d = lookup(1).add_callback(|id| Ok(id + 1));
    drop(d);
}
