//! Tokens -> [`Chain`]: the model of a `chain!` invocation, and the place where its language is
//! explained.
//!
//! ```text
//! chain! { START STEP* }
//!
//! START := an expression: a Deferred, a Result (fired at once) or a plain value
//! STEP  := then    HANDLER     the value arrived: HANDLER gets it, gives the next value
//!        | catch   HANDLER     a failure arrived: HANDLER gets it (`|e: T|` only a `T`), recovers
//!        | finally HANDLER     either arrived: HANDLER runs, the outcome passes on unchanged
//! HANDLER := a closure `|param| body` (`move` optional, `-> Type` allowed)
//!          | the path of a function (`then fetch_details`)
//! ```
//!
//! A mistake in one step does not hide the others: the parser records it and goes on, so that the
//! expansion can put the error where the step's value would be (see [`Handler::Invalid`]) and the
//! user sees that one error, not a cascade of type errors after it.

use proc_macro2::{Delimiter, Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::visit::Visit;
use syn::{Error, Expr, ExprClosure, ExprPath, Ident, Pat, ReturnType, Token, Type};

/// `chain! { START STEP* }`.
pub struct Chain {
    /// What the steps work on: a Deferred, a Result or a plain value.
    pub start: Expr,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// Mistakes that leave the chain's types intact (a misspelled keyword, a stray `,`, a
    /// `catch` that can never run): reported next to the expansion.
    pub errors: Vec<Error>,
}

/// One step: `then`, `catch` or `finally`, and what it runs.
pub struct Step {
    pub kind: StepKind,
    pub handler: Handler,
    /// The step's keyword. Its span is the step's location: the one a `Failure`'s trail records,
    /// and the one errors about the step as a whole point at.
    pub keyword: Ident,
}

/// What a step does with what arrives.
pub enum StepKind {
    /// `then |value| ...`: runs on success; its body gives the next value (a plain value, a
    /// `Result` or a Deferred). Names it binds stay in scope until the next `catch` or `finally`.
    Then,
    /// `catch |e: T| ...` traps failures whose error is a `T` (`ty: Some(T)`); `catch |e| ...`
    /// takes every failure (`ty: None`). Its body gives the value the chain recovers with.
    Catch { ty: Option<Box<Type>> },
    /// `finally || ...` or `finally |outcome| ...` (a `&Result<T, E>`): runs on both paths; the
    /// outcome passes on unchanged unless the body fails.
    Finally,
}

/// What a step runs.
pub enum Handler {
    /// A closure, taken apart: the expansion builds its own closures around the body, so that
    /// the names bound by one `then` are in scope in the next.
    Closure(Box<StepClosure>),
    /// The path of a function, called with what arrives (`finally path`: with nothing, or with
    /// the outcome, as the function takes).
    Path(ExprPath),
    /// A step written wrong. The expansion puts this error where the step's value would be, so
    /// that the steps after it type-check against an error type and stay silent.
    Invalid(Error),
}

/// A step's closure, taken apart.
pub struct StepClosure {
    /// The parameter (`None` for `finally || ...`). For a typed `catch |e: T|` it is `e`, and `T`
    /// is in [`StepKind::Catch`].
    pub param: Option<Pat>,
    /// The closure's `-> Type`, if written.
    pub output: ReturnType,
    pub body: Expr,
    /// The body uses `return` or `?`, or has a return type: it runs inside a closure of its own
    /// so that those mean what they mean in a closure.
    pub framed: bool,
    /// The body never gives a value: it is (or ends in) `panic!`, `todo!`, `unimplemented!` or
    /// `unreachable!`. Its type is fixed by the expansion, which the compiler cannot infer.
    pub diverges: bool,
    /// The body visibly passes a failure on (it mentions `Err`, or uses `?` or `return`): a
    /// catch-all with such a body does not make the `catch` after it unreachable.
    pub passes_on: bool,
    /// Where the closure begins (`move` or `|`) and ends (the body's last token): the closure the
    /// expansion builds is put there, so that errors about it point at the user's closure.
    pub start: Span,
    pub end: Span,
}

/// The step keywords, as written.
const KEYWORDS: [&str; 3] = ["then", "catch", "finally"];

/// Words people bring from other promise libraries, and the step that does their job.
const ALIASES: &[(&str, &str)] = &[
    ("and_then", "then"),
    ("map", "then"),
    ("callback", "then"),
    ("add_callback", "then"),
    ("except", "catch"),
    ("rescue", "catch"),
    ("or_else", "catch"),
    ("errback", "catch"),
    ("add_errback", "catch"),
    ("trap", "catch"),
    ("ensure", "finally"),
    ("always", "finally"),
    ("both", "finally"),
    ("add_both", "finally"),
];

/// Parses the tokens of a `chain!` invocation.
pub fn parse(tokens: TokenStream) -> syn::Result<Chain> {
    parse_chain.parse2(tokens)
}

fn parse_chain(input: ParseStream) -> syn::Result<Chain> {
    if input.is_empty() {
        return Err(Error::new(
            Span::call_site(),
            "empty `chain!`: write what the chain starts from, then its steps: \
             `chain! { start then |value| ... }`",
        ));
    }
    if let Some(keyword) = step_without_start(input) {
        return Err(Error::new(
            keyword.span(),
            format!(
                "this chain has no start: write what `{keyword}` works on (a Deferred, a Result \
                 or a value) before it: `chain! {{ start {keyword} ... }}`"
            ),
        ));
    }
    let start: Expr = input.parse()?;
    let mut chain = Chain {
        start,
        steps: Vec::new(),
        errors: Vec::new(),
    };
    while !input.is_empty() {
        if !parse_next_step(input, &mut chain)? {
            // Whatever is left was reported; skip it.
            input.parse::<TokenStream>()?;
        }
    }
    Ok(chain)
}

/// The chain starts with a step keyword followed by a closure: the start is missing.
fn step_without_start(input: ParseStream) -> Option<Ident> {
    let fork = input.fork();
    let ident = fork.call(Ident::parse_any).ok()?;
    let word = ident.to_string();
    (KEYWORDS.contains(&word.as_str()) && starts_closure(&fork)).then_some(ident)
}

/// Whether the next tokens begin a closure.
fn starts_closure(input: ParseStream) -> bool {
    input.peek(Token![|])
        || input.peek(Token![||])
        || input.peek(Token![move])
        || input.peek(Token![async])
}

/// Whether the next token is a step keyword.
fn at_keyword(input: ParseStream) -> bool {
    let fork = input.fork();
    fork.call(Ident::parse_any)
        .is_ok_and(|ident| KEYWORDS.contains(&ident.to_string().as_str()))
}

/// Parses one step into `chain`. Returns `false` when the rest of the input cannot be read as
/// steps (the reason is in `chain.errors`).
fn parse_next_step(input: ParseStream, chain: &mut Chain) -> syn::Result<bool> {
    if input.peek(Token![,]) || input.peek(Token![;]) {
        let separator: TokenTree = input.parse()?;
        chain.errors.push(Error::new(
            separator.span(),
            format!("`chain!` steps are not separated by `{separator}`: remove it"),
        ));
        return Ok(true);
    }
    if !input.peek(syn::Ident::peek_any) {
        let unexpected: TokenTree = input.parse()?;
        chain
            .errors
            .push(unexpected_after_steps(&unexpected, chain.steps.is_empty()));
        return Ok(false);
    }
    let keyword = input.call(Ident::parse_any)?;
    let word = keyword.to_string();
    let kind = match word.as_str() {
        "then" => Keyword::Then,
        "catch" => Keyword::Catch,
        "finally" => Keyword::Finally,
        _ if !starts_closure(input) && !input.peek(syn::Ident::peek_any) => {
            chain.errors.push(unexpected_after_steps(
                &TokenTree::Ident(keyword),
                chain.steps.is_empty(),
            ));
            return Ok(false);
        }
        _ => match suggest(&word) {
            Some(suggestion) => {
                chain.errors.push(Error::new(
                    keyword.span(),
                    format!(
                        "unknown step `{word}`: did you mean `{suggestion}`? \
                         (a step is `then`, `catch` or `finally`)"
                    ),
                ));
                match suggestion {
                    "then" => Keyword::Then,
                    "catch" => Keyword::Catch,
                    _ => Keyword::Finally,
                }
            }
            None => {
                let error = Error::new(
                    keyword.span(),
                    format!("unknown step `{word}`: a step is `then`, `catch` or `finally`"),
                );
                // Read its handler, to go on with the steps after it.
                if !at_keyword(input) {
                    input.parse::<Expr>()?;
                }
                chain.steps.push(Step {
                    kind: StepKind::Then,
                    handler: Handler::Invalid(error),
                    keyword,
                });
                return Ok(true);
            }
        },
    };
    let step = parse_step(input, kind, keyword)?;
    chain.steps.push(step);
    Ok(true)
}

/// The error for a token that cannot start a step.
fn unexpected_after_steps(token: &TokenTree, no_steps: bool) -> Error {
    let shown = match token {
        TokenTree::Group(group) => match group.delimiter() {
            Delimiter::Parenthesis => "(...)".to_owned(),
            Delimiter::Bracket => "[...]".to_owned(),
            Delimiter::Brace => "{...}".to_owned(),
            Delimiter::None => "...".to_owned(),
        },
        other => other.to_string(),
    };
    let place = if no_steps {
        "after the start"
    } else {
        "after the last step"
    };
    Error::new(
        token.span(),
        format!("unexpected `{shown}` {place}: each step starts with `then`, `catch` or `finally`"),
    )
}

/// The step keyword nearest to an unknown word, if one is near enough.
fn suggest(word: &str) -> Option<&'static str> {
    let lower = word.to_lowercase();
    if let Some((_, step)) = ALIASES.iter().find(|(alias, _)| *alias == lower) {
        return Some(step);
    }
    KEYWORDS
        .iter()
        .map(|keyword| (edit_distance(&lower, keyword), *keyword))
        .filter(|(distance, keyword)| *distance <= keyword.len() / 3)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, keyword)| keyword)
}

/// Levenshtein distance, with a transposition counting as one edit.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut rows = vec![(0..=b.len()).collect::<Vec<_>>(); a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

#[derive(Clone, Copy, PartialEq)]
enum Keyword {
    Then,
    Catch,
    Finally,
}

impl Keyword {
    fn name(self) -> &'static str {
        match self {
            Keyword::Then => "then",
            Keyword::Catch => "catch",
            Keyword::Finally => "finally",
        }
    }

    /// How to write this step's closure.
    fn example(self) -> &'static str {
        match self {
            Keyword::Then => "then |value| ...",
            Keyword::Catch => "catch |e: ErrorType| ...` or `catch |failure| ...",
            Keyword::Finally => "finally || ...` or `finally |outcome| ...",
        }
    }
}

/// Parses what follows a step keyword.
fn parse_step(input: ParseStream, keyword_kind: Keyword, keyword: Ident) -> syn::Result<Step> {
    let name = keyword_kind.name();
    let plain_kind = match keyword_kind {
        Keyword::Then => StepKind::Then,
        Keyword::Catch => StepKind::Catch { ty: None },
        Keyword::Finally => StepKind::Finally,
    };
    let invalid = |kind, error| Step {
        kind,
        handler: Handler::Invalid(error),
        keyword: keyword.clone(),
    };
    if input.is_empty() || at_keyword(input) || input.peek(Token![,]) || input.peek(Token![;]) {
        let error = Error::new(
            keyword.span(),
            format!(
                "`{name}` needs a closure or the path of a function: `{}`",
                keyword_kind.example()
            ),
        );
        return Ok(invalid(plain_kind, error));
    }
    let expr: Expr = input.parse()?;
    match expr {
        Expr::Closure(closure) => Ok(closure_step(keyword_kind, keyword, closure)),
        Expr::Path(path) => Ok(Step {
            kind: plain_kind,
            handler: Handler::Path(path),
            keyword,
        }),
        other => {
            let error = Error::new_spanned(
                &other,
                format!(
                    "`{name}` needs a closure or the path of a function, not an expression: \
                     `{}`",
                    keyword_kind.example()
                ),
            );
            Ok(invalid(plain_kind, error))
        }
    }
}

/// Checks a step's closure and takes it apart.
fn closure_step(keyword_kind: Keyword, keyword: Ident, closure: ExprClosure) -> Step {
    let name = keyword_kind.name();
    let plain_kind = match keyword_kind {
        Keyword::Then => StepKind::Then,
        Keyword::Catch => StepKind::Catch { ty: None },
        Keyword::Finally => StepKind::Finally,
    };
    match check_closure(keyword_kind, &closure) {
        Err(error) => Step {
            kind: plain_kind,
            handler: Handler::Invalid(error),
            keyword,
        },
        Ok(()) => {
            let scan = BodyScan::of(&closure.body);
            if let Some(error) = scan.await_error(name) {
                return Step {
                    kind: plain_kind,
                    handler: Handler::Invalid(error),
                    keyword,
                };
            }
            let framed = scan.framed || !matches!(closure.output, ReturnType::Default);
            let diverges = !framed && diverges(&closure.body);
            let passes_on = scan.framed || mentions_err(closure.body.to_token_stream());
            let start = closure
                .capture
                .map_or(closure.inputs_begin.span, |capture| capture.span);
            let end = closure
                .body
                .to_token_stream()
                .into_iter()
                .last()
                .map_or(start, |token| token.span());
            let mut param = closure.inputs.into_iter().next();
            let kind = match (keyword_kind, param.take()) {
                (Keyword::Catch, Some(Pat::Type(typed))) => {
                    param = Some(*typed.pat);
                    StepKind::Catch { ty: Some(typed.ty) }
                }
                (_, taken) => {
                    param = taken;
                    plain_kind
                }
            };
            Step {
                kind,
                handler: Handler::Closure(Box::new(StepClosure {
                    param,
                    output: closure.output,
                    body: *closure.body,
                    framed,
                    diverges,
                    passes_on,
                    start,
                    end,
                })),
                keyword,
            }
        }
    }
}

/// The rules for a step's closure on its own: no modifiers but `move`, and the right number of
/// parameters.
fn check_closure(keyword_kind: Keyword, closure: &ExprClosure) -> syn::Result<()> {
    let name = keyword_kind.name();
    if let Some(asyncness) = &closure.asyncness {
        return Err(Error::new_spanned(
            asyncness,
            format!(
                "a `{name}` step cannot be an `async` closure: a chain does not poll futures; \
                 give a Deferred instead (the chain waits for it)"
            ),
        ));
    }
    if let Some(attr) = closure.attrs.first() {
        return Err(Error::new_spanned(
            attr,
            "attributes are not supported on a step's closure",
        ));
    }
    if let Some(lifetimes) = &closure.lifetimes {
        return Err(Error::new_spanned(
            lifetimes,
            "a step's closure cannot be higher-ranked (`for<...>`)",
        ));
    }
    if let Some(constness) = &closure.constness {
        return Err(Error::new_spanned(
            constness,
            "a step's closure cannot be `const`",
        ));
    }
    let count = closure.inputs.len();
    let params = || {
        let (open, close) = (&closure.inputs_begin, &closure.inputs_end);
        let inputs = &closure.inputs;
        quote::quote!(#open #inputs #close)
    };
    let message = match (keyword_kind, count) {
        (Keyword::Then, 1) | (Keyword::Catch, 1) | (Keyword::Finally, 0 | 1) => return Ok(()),
        (Keyword::Then, 0) => "a `then` closure takes the value as its parameter: \
                               write `|value|`, or `|_|` to ignore it"
            .to_owned(),
        (Keyword::Then, n) => format!(
            "a `then` closure takes one parameter, the value, but this one takes {n}; \
             to pass several values on, give a tuple and take it apart: `|(a, b)|`"
        ),
        (Keyword::Catch, 0) => "a `catch` closure takes the failure as its parameter: \
                                write `|e: ErrorType|` to trap one error type, \
                                or `|failure|` to take every failure"
            .to_owned(),
        (Keyword::Catch, n) => {
            format!("a `catch` closure takes one parameter, the failure, but this one takes {n}")
        }
        (Keyword::Finally, n) => format!(
            "a `finally` closure takes no parameter (`||`) or one, the outcome (`|outcome|`, a \
             `&Result`), but this one takes {n}"
        ),
    };
    Err(Error::new_spanned(params(), message))
}

/// What a step body contains that changes how it is expanded: `return` and `?` (which need a
/// closure of their own), and `.await` (which a step cannot use). Nested closures, async blocks
/// and items are not looked into: those keywords are theirs.
#[derive(Default)]
struct BodyScan {
    framed: bool,
    awaits: Vec<TokenStream>,
}

impl BodyScan {
    fn of(body: &Expr) -> BodyScan {
        let mut scan = BodyScan::default();
        scan.visit_expr(body);
        scan
    }

    fn await_error(&self, name: &str) -> Option<Error> {
        let first = self.awaits.first()?;
        Some(Error::new_spanned(
            first,
            format!(
                "`.await` cannot be used in a `{name}` step: steps are callbacks that run when \
                 the value arrives, not async code; give the Deferred (the chain waits for it), \
                 or `.await` the whole chain"
            ),
        ))
    }

    /// Macro arguments are not parsed: look for `?`, `return` and `.await` in their tokens.
    fn scan_tokens(&mut self, tokens: TokenStream) {
        let mut previous_dot: Option<TokenTree> = None;
        for token in tokens {
            match &token {
                TokenTree::Punct(punct) if punct.as_char() == '?' => self.framed = true,
                TokenTree::Ident(ident) if ident == "return" => self.framed = true,
                TokenTree::Ident(ident) if ident == "await" => {
                    if let Some(dot) = previous_dot.take() {
                        self.awaits.push(quote::quote!(#dot #ident));
                    }
                }
                TokenTree::Group(group) => self.scan_tokens(group.stream()),
                _ => {}
            }
            previous_dot = match &token {
                TokenTree::Punct(punct) if punct.as_char() == '.' => Some(token),
                _ => None,
            };
        }
    }
}

impl<'ast> Visit<'ast> for BodyScan {
    fn visit_expr_closure(&mut self, _: &'ast ExprClosure) {}
    fn visit_expr_async(&mut self, _: &'ast syn::ExprAsync) {}
    fn visit_item(&mut self, _: &'ast syn::Item) {}

    fn visit_expr_return(&mut self, node: &'ast syn::ExprReturn) {
        self.framed = true;
        syn::visit::visit_expr_return(self, node);
    }

    fn visit_expr_try(&mut self, node: &'ast syn::ExprTry) {
        self.framed = true;
        syn::visit::visit_expr_try(self, node);
    }

    fn visit_expr_await(&mut self, node: &'ast syn::ExprAwait) {
        let (dot, await_token) = (&node.dot_token, &node.await_token);
        self.awaits.push(quote::quote!(#dot #await_token));
        syn::visit::visit_expr_await(self, node);
    }

    fn visit_macro(&mut self, node: &'ast syn::Macro) {
        self.scan_tokens(node.tokens.clone());
    }
}

/// Whether `body` is, or ends in, a macro that never returns.
fn diverges(body: &Expr) -> bool {
    let never_returns = |path: &syn::Path| {
        path.segments.last().is_some_and(|last| {
            ["panic", "todo", "unimplemented", "unreachable"]
                .contains(&last.ident.to_string().as_str())
        })
    };
    match body {
        Expr::Macro(mac) => never_returns(&mac.mac.path),
        Expr::Block(block) if block.label.is_none() => match block.block.stmts.last() {
            Some(syn::Stmt::Expr(last, _)) => diverges(last),
            Some(syn::Stmt::Macro(mac)) => never_returns(&mac.mac.path),
            _ => false,
        },
        _ => false,
    }
}

/// Whether `tokens` mention `Err`.
fn mentions_err(tokens: TokenStream) -> bool {
    tokens.into_iter().any(|token| match token {
        TokenTree::Ident(ident) => ident == "Err",
        TokenTree::Group(group) => mentions_err(group.stream()),
        _ => false,
    })
}

impl Step {
    /// Whether this step is a `catch` that takes every failure: untyped, a function, or typed
    /// with `Failure` itself.
    pub fn is_catch_all(&self) -> bool {
        match (&self.kind, &self.handler) {
            (_, Handler::Invalid(_)) => false,
            (StepKind::Catch { ty: None }, _) => true,
            (StepKind::Catch { ty: Some(ty) }, _) => is_failure_type(ty),
            _ => false,
        }
    }

    /// Whether this step's code visibly never passes a failure on: a closure whose body does
    /// not mention `Err`, `?` or `return`. A function might: it does not count.
    pub fn keeps_failures_in(&self) -> bool {
        match &self.handler {
            Handler::Closure(closure) => !closure.passes_on,
            _ => false,
        }
    }
}

/// Whether `ty` names `Failure` (`Failure`, `deferred::Failure`, ...).
fn is_failure_type(ty: &Type) -> bool {
    match ty {
        Type::Path(path) => {
            path.qself.is_none()
                && path
                    .path
                    .segments
                    .last()
                    .is_some_and(|last| last.ident == "Failure" && last.arguments.is_none())
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_nearest_keyword() {
        assert_eq!(suggest("than"), Some("then"));
        assert_eq!(suggest("thne"), Some("then"));
        assert_eq!(suggest("cach"), Some("catch"));
        assert_eq!(suggest("finaly"), Some("finally"));
        assert_eq!(suggest("and_then"), Some("then"));
        assert_eq!(suggest("except"), Some("catch"));
        assert_eq!(suggest("frobnicate"), None);
    }
}
