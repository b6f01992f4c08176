//! Fuzzing the macro away from the compiler: random and mutated token streams, built from the
//! grammar's pieces and noise, go through parse, validate and expand. Whatever the input, the
//! macro must not panic, and must give one expression: the chain, or the chain with its errors,
//! or just the error.

use std::str::FromStr;

use proc_macro2::TokenStream;
use proptest::prelude::*;

use crate::chain_tokens;

/// Pieces of valid chains.
const GRAMMAR: &[&str] = &[
    "then",
    "catch",
    "finally",
    "|x|",
    "|x: u32|",
    "|e: NotFound|",
    "|f: Failure|",
    "||",
    "|_|",
    "|(a, b)|",
    "move |x|",
    "x + 1",
    "Ok(x)",
    "Err(f)",
    "fetch(&db, x)",
    "fetch_details",
    "deferred::Failure::msg",
    "-> u32 { x }",
    "{ if x > 1 { return 0; } x }",
    "Ok(s.parse::<u32>()?)",
    "format!(\"{x}\")",
    "panic!(\"boom\")",
    "todo!()",
    "Deferred::succeed(1)",
];

/// Pieces that do not belong, or belong elsewhere.
const NOISE: &[&str] = &[
    "than",
    "and_then",
    "frobnicate",
    "async",
    "const",
    "for<'a>",
    "#[inline]",
    "|a, b|",
    "|a, b, c|",
    ",",
    ";",
    "=>",
    "->",
    "::",
    "&",
    "*",
    "!",
    "?",
    ".",
    ".await",
    "x.await",
    "1",
    "\"text\"",
    "'c'",
    "[2]",
    "()",
    "{}",
    "(then)",
    "{ then |x| x }",
    "<",
    ">",
    "'a",
    "r#then",
    "self",
    "_",
    ".then",
    "Deferred::pending()",
];

/// A valid chain, as pieces.
fn valid_chain() -> impl Strategy<Value = Vec<String>> {
    let start = prop::sample::select(vec!["d", "1", "lookup(&db, name)", "Ok(2)", "(1, 2)"]);
    let step = prop::sample::select(vec![
        "then |x| x + 1",
        "then |x: u32| Ok(x)",
        "then fetch_details",
        "then move |x| { let y = x?; Ok(y) }",
        "then |(a, b)| a + b",
        "then |_| todo!()",
        "catch |e: NotFound| 0",
        "catch |f| Err(f)",
        "catch handle",
        "finally || log()",
        "finally |outcome| outcome.is_ok()",
        "finally cleanup",
    ]);
    (start, prop::collection::vec(step, 0..12)).prop_map(|(start, mut steps)| {
        // The same typed `catch` twice in a row is a mistake.
        steps.dedup();
        std::iter::once(start.to_owned())
            .chain(steps.into_iter().map(str::to_owned))
            .collect()
    })
}

/// Pieces of any kind, in any order.
fn any_pieces() -> impl Strategy<Value = Vec<String>> {
    let piece = prop::sample::select(GRAMMAR.iter().chain(NOISE).copied().collect::<Vec<_>>());
    prop::collection::vec(piece.prop_map(str::to_owned), 0..24)
}

/// A valid chain with a few pieces deleted, repeated, swapped or inserted.
fn mutated_chain() -> impl Strategy<Value = Vec<String>> {
    let edit = (
        0..4u8,
        any::<prop::sample::Index>(),
        0..NOISE.len() + GRAMMAR.len(),
    );
    (valid_chain(), prop::collection::vec(edit, 1..4)).prop_map(|(mut pieces, edits)| {
        for (kind, at, insert) in edits {
            let index = at.index(pieces.len().max(1));
            let inserted = GRAMMAR
                .iter()
                .chain(NOISE)
                .nth(insert)
                .copied()
                .unwrap_or(",")
                .to_owned();
            match kind {
                0 if !pieces.is_empty() => {
                    pieces.remove(index);
                }
                1 if !pieces.is_empty() => {
                    let repeated = pieces[index].clone();
                    pieces.insert(index, repeated);
                }
                2 if pieces.len() > 1 => {
                    let other = (index + 1) % pieces.len();
                    pieces.swap(index, other);
                }
                _ => pieces.insert(index.min(pieces.len()), inserted),
            }
        }
        pieces
    })
}

/// Runs the macro on `pieces` and checks what it gives.
fn check(pieces: &[String]) -> Result<String, TestCaseError> {
    let source = pieces.join(" ");
    let Ok(input) = TokenStream::from_str(&source) else {
        // Not Rust tokens at all: the compiler would not call the macro.
        return Ok(String::new());
    };
    let output = chain_tokens(input).to_string();
    let parsed = syn::parse_str::<syn::Expr>(&output);
    prop_assert!(
        parsed.is_ok(),
        "the expansion of `{source}` is not one expression: {output}"
    );
    Ok(output)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn valid_chains_expand_without_errors(pieces in valid_chain()) {
        let output = check(&pieces)?;
        prop_assert!(
            !output.contains("compile_error"),
            "`{}` is valid, but the expansion has an error: {output}",
            pieces.join(" ")
        );
    }

    #[test]
    fn mutated_chains_never_panic(pieces in mutated_chain()) {
        check(&pieces)?;
    }

    #[test]
    fn any_tokens_never_panic(pieces in any_pieces()) {
        check(&pieces)?;
    }
}

#[test]
fn an_invalid_step_is_reported_where_its_value_would_be() {
    let output = chain_tokens(TokenStream::from_str("1 then || 2 then |x| x").unwrap());
    let output = output.to_string();
    assert!(output.contains("compile_error"), "{output}");
    assert!(
        output.contains("takes the value as its parameter"),
        "{output}"
    );
}

#[test]
fn the_expansion_grows_linearly_with_the_steps() {
    for step in [
        "then |x| x + 1 ",
        "then |x| x + 1 catch |_| 0 finally || () ",
    ] {
        let size = |steps: usize| {
            let source = format!("d {}", step.repeat(steps));
            chain_tokens(TokenStream::from_str(&source).unwrap())
                .to_string()
                .len()
        };
        let (hundred, two_hundred) = (size(100), size(200));
        assert!(
            two_hundred < hundred * 2 + hundred / 10,
            "`{step}`: 100 steps give {hundred} bytes, 200 steps {two_hundred}"
        );
    }
}

/// The deepest nesting of groups in `tokens`.
fn depth(tokens: TokenStream) -> usize {
    tokens
        .into_iter()
        .map(|token| match token {
            proc_macro2::TokenTree::Group(group) => 1 + depth(group.stream()),
            _ => 0,
        })
        .max()
        .unwrap_or(0)
}

/// The expansion of a chain of `steps` steps of `step`, between `first` and `last`.
fn long_chain(first: &str, step: &str, steps: usize, last: &str) -> TokenStream {
    let source = format!("d {first} {} {last}", step.repeat(steps));
    chain_tokens(TokenStream::from_str(&source).unwrap())
}

#[test]
fn a_long_run_nests_no_deeper_than_a_segment() {
    let step = "then |x| x + 1 ";
    let segment = depth(long_chain("", step, crate::expand::SEGMENT_STEPS, ""));
    for steps in [100, 200, 1000] {
        assert_eq!(
            depth(long_chain("", step, steps, "")),
            segment,
            "{steps} steps"
        );
    }
}

#[test]
fn a_run_of_a_segment_or_less_is_not_cut() {
    let output = long_chain("then |a| a", "then |x| x + a ", 31, "").to_string();
    assert!(!output.contains("raised_carrying"), "{output}");
    assert!(!output.contains("__carried"), "{output}");
}

#[test]
fn a_long_run_carries_the_names_later_steps_mention() {
    let carried = |later: &str| {
        let source = format!("d then |(a, mut b, _)| a then |c| c {later}");
        let chain = crate::parse::parse(TokenStream::from_str(&source).unwrap()).unwrap();
        let names = crate::expand::carried_names(&chain.steps[..2], &chain.steps[2..]);
        names
            .iter()
            .map(|name| name.name())
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(carried("then |x| x + a + c"), "a c");
    assert_eq!(carried("then |x| format!(\"{b:>5}{x}{c:?}\")"), "b c");
    assert_eq!(carried("then |x| m!(a, \"{b}\")"), "a b");
    assert_eq!(carried("then |x| x then |y| x + r#c"), "c");
    assert_eq!(carried("then f then |y| g(a..b)"), "a b");
    // Not mentioned: a field or method, a name bound again first, an escaped brace, a longer
    // name, a byte string.
    assert_eq!(carried("then |x| x.a.c()"), "");
    assert_eq!(carried("then |a| a then |x| x + a"), "");
    assert_eq!(carried("then |x| \"{{a}}\" then |y| ab + cc"), "");
    assert_eq!(carried("then |x| b\"{a}\""), "");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Long runs, whatever their length and the names they carry: the expansion grows linearly,
    /// and valid steps give no errors.
    #[test]
    fn long_runs_expand_linearly(steps in 1usize..400, uses in 0usize..3) {
        let step = ["then |x| x + 1 ", "then |y| y + first ", "then |z| format!(\"{first}{z}\") "];
        let output = long_chain("then |first| first", step[uses], steps, "").to_string();
        prop_assert!(!output.contains("compile_error"), "{output}");
        let per_step = long_chain("then |first| first", step[uses], 2, "").to_string().len();
        prop_assert!(
            output.len() <= per_step * steps,
            "{steps} steps give {} bytes, 2 steps give {per_step}",
            output.len()
        );
    }
}
