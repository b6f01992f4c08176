use deferred::Deferred;

fn main() {
    // A chain's error type must hold the failures it makes itself (a panic, a cancel): `String`
    // cannot. Use `Failure` (`Failure::msg(text)` for a message), or an error type of your own
    // with `From<Failure>`.
    let (d, resolver) = Deferred::<u32, String>::pending();
    resolver.callback(1);
    drop(d);
}
