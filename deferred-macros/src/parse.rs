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
//!
//! This module builds the model and nothing else: the rules a step's code must follow, and
//! those across steps, are `validate`'s; the suggestion for a misspelled keyword is `suggest`'s.

use proc_macro2::{Delimiter, Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::{Error, Expr, ExprClosure, ExprPath, Ident, Pat, ReturnType, Token, Type};

use crate::suggest::{deadline_instead, suggest};

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
    /// Where the closure begins (`move` or `|`) and ends (the body's last token): the closure the
    /// expansion builds is put there, so that errors about it point at the user's closure.
    pub start: Span,
    pub end: Span,
    /// The closure as written, for the rules about its form (`validate`).
    pub written: ExprClosure,
}

/// A step keyword. The words are written in [`Keyword::name`] only.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Keyword {
    Then,
    Catch,
    Finally,
}

impl Keyword {
    pub const ALL: [Keyword; 3] = [Keyword::Then, Keyword::Catch, Keyword::Finally];

    /// The keyword as written.
    pub fn name(self) -> &'static str {
        match self {
            Keyword::Then => "then",
            Keyword::Catch => "catch",
            Keyword::Finally => "finally",
        }
    }

    /// The keyword `word` is, if it is one.
    pub fn from_word(word: &str) -> Option<Keyword> {
        Keyword::ALL
            .into_iter()
            .find(|keyword| keyword.name() == word)
    }

    /// The kind of step the keyword begins (a `catch` that takes every failure, until its
    /// closure says otherwise).
    fn step_kind(self) -> StepKind {
        match self {
            Keyword::Then => StepKind::Then,
            Keyword::Catch => StepKind::Catch { ty: None },
            Keyword::Finally => StepKind::Finally,
        }
    }

    /// How to write this step's closure.
    pub fn example(self) -> &'static str {
        match self {
            Keyword::Then => "then |value| ...",
            Keyword::Catch => "catch |e: ErrorType| ...` or `catch |failure| ...",
            Keyword::Finally => "finally || ...` or `finally |outcome| ...",
        }
    }
}

impl StepKind {
    /// The keyword that begins a step of this kind.
    pub fn keyword(&self) -> Keyword {
        match self {
            StepKind::Then => Keyword::Then,
            StepKind::Catch { .. } => Keyword::Catch,
            StepKind::Finally => Keyword::Finally,
        }
    }
}

/// Parses the tokens of a `chain!` invocation.
pub fn parse(tokens: TokenStream) -> syn::Result<Chain> {
    parse_chain.parse2(tokens)
}

fn parse_chain(input: ParseStream) -> syn::Result<Chain> {
    if input.is_empty() {
        return Err(Error::new(
            Span::call_site(),
            "empty `chain!`: write what the chain starts from, then its steps: \
             `chain! { lookup(id) then |value| ... }`",
        ));
    }
    if let Some(keyword) = step_without_start(input) {
        return Err(Error::new(
            keyword.span(),
            format!(
                "this chain has no start: write what `{keyword}` works on (a Deferred, a Result \
                 or a value) before it: `chain! {{ lookup(id) {keyword} ... }}`"
            ),
        ));
    }
    if let Some(error) = step_after_a_dot(input) {
        return Err(error);
    }
    if input.peek(Token![let]) {
        let word: Token![let] = input.parse()?;
        return Err(Error::new(
            word.span,
            "a `chain!` starts from an expression, not a statement: bind the value before the \
             chain, `let d = lookup(id);`, then start the chain from it: `chain! { d then \
             |value| ... }`",
        ));
    }
    let start: Expr = input.parse()?;
    if let Some(word) = start_keyword(&start, input) {
        return Err(Error::new(
            word.span(),
            "`chain!` has no `start` keyword: a chain begins with the expression it starts \
             from (a Deferred, a Result or a value), then its steps: remove `start`, as in \
             `chain! { lookup(id) then |value| ... }`",
        ));
    }
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

/// The start is the word `start`, and what follows it is no step: the user took `start` for a
/// keyword (`chain! { start lookup(id) then ... }`). A start named `start` followed by a step
/// is a variable of that name, and fine.
fn start_keyword<'a>(start: &'a Expr, input: ParseStream) -> Option<&'a Ident> {
    let Expr::Path(path) = start else {
        return None;
    };
    let word = path.path.get_ident().filter(|word| *word == "start")?;
    let follows_step =
        input.is_empty() || at_keyword(input) || input.peek(Token![,]) || input.peek(Token![;]);
    (path.qself.is_none() && path.attrs.is_empty() && !follows_step).then_some(word)
}

/// A step on a line of its own after JavaScript's leading `.`, `.then |x| ..`: the start (or the
/// step before) reads it as a field `then` and two `|` operators, and the compiler reports the
/// field and the closure's parameter, not the step. Looked for in the top-level tokens: a `.`,
/// a step keyword, then `move`, or `|` if the `.` is apart from the token before it (a line
/// break, a space): right after it, it may be a field of that name, `flags.then | 1`, valid
/// code. (A step written as a method call, `.then(|x| ..)`, is left to the compiler: a type's
/// own `then` or `catch` is the start's, and `bool::then` is one.)
fn step_after_a_dot(input: ParseStream) -> Option<Error> {
    let tokens: Vec<TokenTree> = input
        .fork()
        .parse::<TokenStream>()
        .ok()?
        .into_iter()
        .collect();
    for (index, token) in tokens.iter().enumerate() {
        let TokenTree::Ident(ident) = token else {
            continue;
        };
        let Some(keyword) = Keyword::from_word(&ident.to_string()) else {
            continue;
        };
        let dot = match index.checked_sub(1).map(|before| &tokens[before]) {
            Some(dot @ TokenTree::Punct(punct)) if punct.as_char() == '.' => dot,
            _ => continue,
        };
        let before = index.checked_sub(2).map(|before| tokens[before].span());
        let apart = before.is_none_or(|before| !joined(before, dot.span()));
        let closure = match tokens.get(index + 1) {
            Some(TokenTree::Punct(punct)) => apart && punct.as_char() == '|',
            Some(TokenTree::Ident(word)) => word == "move",
            _ => false,
        };
        if !closure {
            continue;
        }
        let name = keyword.name();
        return Some(Error::new_spanned(
            quote::quote!(#dot #ident),
            format!(
                "a `chain!` step is not a method: remove the `.` before `{name}` (steps follow \
                 the start with no `.`: `chain! {{ fetch(id) {name} |x| ... }}`)"
            ),
        ));
    }
    None
}

/// Whether `after` begins where `before` ends, nothing between them, as the compiler says
/// (away from it, in this crate's tests, the tokens have no place: never).
fn joined(before: Span, after: Span) -> bool {
    if !proc_macro::is_available() {
        return false;
    }
    let (end, start) = (before.unwrap().end(), after.unwrap().start());
    (end.line(), end.column()) == (start.line(), start.column())
}

/// The chain starts with a step keyword followed by a closure: the start is missing.
fn step_without_start(input: ParseStream) -> Option<Ident> {
    let fork = input.fork();
    let ident = fork.call(Ident::parse_any).ok()?;
    (Keyword::from_word(&ident.to_string()).is_some() && starts_closure(&fork)).then_some(ident)
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
        .is_ok_and(|ident| Keyword::from_word(&ident.to_string()).is_some())
}

/// Parses one step into `chain`. Returns `false` when the rest of the input cannot be read as
/// steps (the reason is in `chain.errors`).
fn parse_next_step(input: ParseStream, chain: &mut Chain) -> syn::Result<bool> {
    if input.peek(Token![,]) || input.peek(Token![;]) {
        let separator: TokenTree = input.parse()?;
        if let Some(step) = chain.steps.last()
            && matches!(&separator, TokenTree::Punct(comma) if comma.as_char() == ',')
            && starts_closure(input)
        {
            // Twisted's `addCallbacks(callback, errback)`: a second closure for the same step.
            // Read it, to go on with the steps after it.
            let second: Expr = input.parse()?;
            chain.errors.push(second_closure(step, &separator, &second));
            return Ok(true);
        }
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
    let kind = match Keyword::from_word(&word) {
        Some(kind) => kind,
        // A deadline is not a step (it covers what came before it): say where it goes.
        None if let Some(instead) = deadline_instead(&word) => {
            chain.errors.push(Error::new(keyword.span(), instead));
            // Read what it was given, to go on with the steps after it.
            if !at_keyword(input) {
                input.parse::<Expr>()?;
            }
            return Ok(true);
        }
        None if !starts_closure(input) && !input.peek(syn::Ident::peek_any) => {
            chain.errors.push(unexpected_after_steps(
                &TokenTree::Ident(keyword),
                chain.steps.is_empty(),
            ));
            return Ok(false);
        }
        None => match suggest(&word) {
            Some(suggestion) => {
                chain.errors.push(Error::new(
                    keyword.span(),
                    format!(
                        "unknown step `{word}`: did you mean `{}`? \
                         (a step is `then`, `catch` or `finally`)",
                        suggestion.name()
                    ),
                ));
                suggestion
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

/// `then |x| x + 1, |e| 0`: a step given a second closure after a `,`, as Twisted's
/// `addCallbacks(callback, errback)` takes one for each path. Reported from the `,` through the
/// second closure.
fn second_closure(step: &Step, comma: &TokenTree, second: &Expr) -> Error {
    let name = step.kind.keyword().name();
    let message = match (step.kind.keyword(), second) {
        (Keyword::Then, Expr::Closure(closure)) => {
            let (head, body) = closure_text(closure);
            let body = if body.len() > 40 { "..." } else { &body };
            format!(
                "a `then` takes one closure, not two: write the second as a step of its own, \
                 with no `,`: `catch {head} {body}` (Twisted's `addCallbacks(callback, errback)` \
                 is a `then` and a `catch`; the `catch` also handles the `then`'s own failures)"
            )
        }
        _ => format!(
            "a `{name}` takes one closure, not two: write the second as a step of its own, with \
             no `,`, after its keyword (`then`, `catch` or `finally`)"
        ),
    };
    Error::new_spanned(quote::quote!(#comma #second), message)
}

/// A closure as a person writes it, its head (`|x|`, `move |(a, b): (u32, u32)| -> u32`) and its
/// body.
fn closure_text(closure: &ExprClosure) -> (String, String) {
    use crate::validate::text;
    let inputs = closure
        .inputs
        .iter()
        .map(|input| match input {
            Pat::Type(typed) => format!("{}: {}", text(&typed.pat), text(&typed.ty)),
            other => text(other),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let capture = if closure.capture.is_some() {
        "move "
    } else {
        ""
    };
    let output = match &closure.output {
        ReturnType::Default => String::new(),
        ReturnType::Type(_, ty) => format!(" -> {}", text(ty)),
    };
    (format!("{capture}|{inputs}|{output}"), text(&closure.body))
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

/// Parses what follows a step keyword.
fn parse_step(input: ParseStream, keyword_kind: Keyword, keyword: Ident) -> syn::Result<Step> {
    let name = keyword_kind.name();
    let plain_kind = keyword_kind.step_kind();
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
    if input.peek(Token![=>]) && matches!(expr, Expr::Path(_) | Expr::Paren(_) | Expr::Tuple(_)) {
        // JavaScript's `x => x + 1`: read the body too, to go on with the steps after it.
        let arrow: Token![=>] = input.parse()?;
        let body: Expr = input.parse()?;
        let body = crate::validate::text(&body);
        let body = if body.len() > 40 { "..." } else { &body };
        let param = match &expr {
            Expr::Paren(paren) => crate::validate::text(&paren.expr),
            other => crate::validate::text(other),
        };
        let error = Error::new_spanned(
            arrow,
            format!(
                "a step takes a Rust closure, not an arrow function: write `{name} |{param}| \
                 {body}`"
            ),
        );
        return Ok(invalid(plain_kind, error));
    }
    if input.peek(syn::token::Brace)
        && let Some(params) = js_params(&expr)
    {
        // JavaScript's `catch (e) { ... }` (or `then (x) { ... }`): read the block too, to go
        // on with the steps after it.
        let block: syn::ExprBlock = input.parse()?;
        let body = crate::validate::text(&block);
        let body = if body.len() > 40 { "{ ... }" } else { &body };
        let params = match (keyword_kind, params.is_empty()) {
            (Keyword::Then | Keyword::Catch, true) => "_".to_owned(),
            _ => params.join(", "),
        };
        let params = if params.contains(',') {
            format!("({params})")
        } else {
            params
        };
        let error = Error::new_spanned(
            &expr,
            format!(
                "a step takes a Rust closure, with its parameter between `|`s, not in \
                 parentheses: write `{name} |{params}| {body}`"
            ),
        );
        return Ok(invalid(plain_kind, error));
    }
    match expr {
        Expr::Closure(closure) => Ok(closure_step(keyword_kind, keyword, closure)),
        Expr::Path(path) => Ok(Step {
            kind: plain_kind,
            handler: Handler::Path(path),
            keyword,
        }),
        Expr::Paren(paren) if matches!(*paren.expr, Expr::Closure(_) | Expr::Path(_)) => {
            let (what, fixed) = match &*paren.expr {
                Expr::Path(path) => (
                    "function",
                    format!("{name} {}", crate::validate::text(path)),
                ),
                _ => ("closure", keyword_kind.example().to_owned()),
            };
            let error = Error::new_spanned(
                &paren,
                format!(
                    "`{name}` takes its {what} as it is, not in parentheses (a step is not a \
                     method call): remove them, as in `{fixed}`"
                ),
            );
            Ok(invalid(plain_kind, error))
        }
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

/// The names in `(e)`, `(a, b)` or `()`: the parameters of JavaScript's `catch (e) { ... }`,
/// when a step is written so.
fn js_params(expr: &Expr) -> Option<Vec<String>> {
    let name = |expr: &Expr| match expr {
        Expr::Path(path) if path.qself.is_none() => path.path.get_ident().map(ToString::to_string),
        _ => None,
    };
    match expr {
        Expr::Paren(paren) if paren.attrs.is_empty() => Some(vec![name(&paren.expr)?]),
        Expr::Tuple(tuple) if tuple.attrs.is_empty() => tuple.elems.iter().map(name).collect(),
        _ => None,
    }
}

/// Takes a step's closure apart. (Whether it is written right is `validate`'s.)
fn closure_step(keyword_kind: Keyword, keyword: Ident, closure: ExprClosure) -> Step {
    let written = closure.clone();
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
            keyword_kind.step_kind()
        }
    };
    Step {
        kind,
        handler: Handler::Closure(Box::new(StepClosure {
            param,
            output: closure.output,
            body: *closure.body,
            start,
            end,
            written,
        })),
        keyword,
    }
}
