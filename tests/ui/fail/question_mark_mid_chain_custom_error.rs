use std::num::ParseIntError;

use deferred::{Failure, chain};

#[derive(Debug)]
enum AppError {
    Parse(ParseIntError),
    Failed(Failure),
}

impl From<Failure> for AppError {
    fn from(failure: Failure) -> Self {
        AppError::Failed(failure)
    }
}

impl From<ParseIntError> for AppError {
    fn from(error: ParseIntError) -> Self {
        AppError::Parse(error)
    }
}

fn main() {
    let d = chain! {
        Ok::<_, AppError>(String::from("21"))
        then |s| {
            let n: u32 = s.parse()?;
            n * 2
        }
        then |n| n + 1
    };
    let _ = d.wait();
}
