//! The rules a chain must follow, on the model `parse` built: each turns a mistake into an
//! error on the token that is wrong.
//!
//! - The rule for the start ([`borrowed_start`]): not a borrowed local (`&d`).
//! - The rules for a step on its own ([`validate_step`]): a `catch`'s type not a reference
//!   ([`catch_type_error`]), the form of its closure (no `async`, the right number of
//!   parameters), no `.await` in its body, a `finally`'s outcome taken by reference, a body that
//!   uses `?` or `return` giving one type. A step that breaks one becomes
//!   [`Handler::Invalid`]: the expansion puts the error where its value would be, and the steps
//!   after it stay silent.
//! - The rules across steps ([`validate_catches`]): a `catch` that can never run. These leave
//!   the chain's types intact: the chain is still expanded in full. And a `then` whose body
//!   ends with `;` before a `then` that uses what it takes ([`unit_handed_on`]): that next
//!   step becomes invalid.
//!
//! It is also where a step's body is analysed for the expansion ([`StepClosure::framed`],
//! [`StepClosure::diverges`]) and for the catch rules ([`Step::is_catch_all`]).

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::{Error, Expr, ExprClosure, Pat, ReturnType, Token, Type};

use crate::parse::{Chain, Handler, Keyword, Step, StepClosure, StepKind};

/// Checks every rule: each step's own, then those across steps.
pub fn validate(chain: &mut Chain) {
    if let Some(error) = borrowed_start(&mut chain.start) {
        chain.errors.push(error);
    }
    for step in &mut chain.steps {
        validate_step(step, &mut chain.errors);
    }
    validate_catches(chain);
    unit_handed_on(chain);
}

/// `then |b| { b.len(); }` followed by `then |n| n + 1`: the first body ends with `;`, so it
/// gives `()`, and the next step uses what it takes in a way `()` cannot be used (a slip the
/// compiler reports as "cannot add `{integer}` to `()`" in the next step). Reported at the
/// `;`; the next step becomes invalid, so that the compiler's error about `()` there does not
/// follow. A next step that uses it as `()` can be used (printed, passed on, compared, a
/// method of a trait) is left alone.
fn unit_handed_on(chain: &mut Chain) {
    for index in 1..chain.steps.len() {
        let (before, after) = chain.steps.split_at_mut(index);
        let (step, next) = (&before[index - 1], &mut after[0]);
        if !matches!(step.kind, StepKind::Then) || !matches!(next.kind, StepKind::Then) {
            continue;
        }
        let Handler::Closure(closure) = &step.handler else {
            continue;
        };
        if !matches!(closure.output, ReturnType::Default) {
            continue;
        }
        let Some(semicolon) = ends_with_semicolon(&closure.body) else {
            continue;
        };
        let Handler::Closure(next_closure) = &next.handler else {
            continue;
        };
        let Some(name) = next_closure.param.as_ref().and_then(value_param) else {
            continue;
        };
        if name.starts_with('_') || uses_as_a_value(&next_closure.body, &name).is_none() {
            continue;
        }
        let error = Error::new(
            semicolon,
            format!(
                "this `then` ends with `;`, so it gives `()` to the next step, whose `{name}` is \
                 then `()`: give the value on as the body's last expression, with no `;` after \
                 it (or write `then |_|` in the next step, if it takes nothing)"
            ),
        );
        next.handler = Handler::Invalid(error);
    }
}

/// The `;` that ends a block body's last statement, when the body gives nothing because of
/// it (not a `return ..;`, and no `return` anywhere: the body's value may be given there).
fn ends_with_semicolon(body: &Expr) -> Option<Span> {
    let Expr::Block(block) = body else {
        return None;
    };
    if block.label.is_some() || tokens_name(body.to_token_stream(), "return") {
        return None;
    }
    match block.block.stmts.last()? {
        syn::Stmt::Expr(
            Expr::Break(_) | Expr::Continue(_) | Expr::Loop(_) | Expr::Macro(_) | Expr::Assign(_),
            Some(_),
        ) => None,
        syn::Stmt::Expr(Expr::Binary(binary), Some(_))
            if crate::expand::is_compound_assignment(&binary.op) =>
        {
            None
        }
        syn::Stmt::Expr(_, Some(semicolon)) => Some(semicolon.span),
        _ => None,
    }
}

/// Where `body` first uses `name` where `()` (or a `&Result`, a `finally`'s outcome) can never
/// be: an operand of arithmetic or of a bit operation, a field's base or an index's (no crate
/// can implement those for `()`), before anything in it binds `name` again, as far as a walk in
/// order can tell; the arguments of a standard macro that evaluates them (`println!`'s,
/// `assert_eq!`'s: [`expression_arguments`]) are walked too, and a walk that reaches any other
/// macro naming `name` stops there. A method call or a comparison may be `()`'s own
/// (`partial_cmp`, a trait of the user's), and is left to the compiler.
fn uses_as_a_value(body: &Expr, name: &str) -> Option<Span> {
    struct Uses<'a> {
        name: &'a str,
        found: Option<Span>,
        rebound: bool,
    }
    impl Uses<'_> {
        fn check(&mut self, expr: &Expr) {
            if !self.rebound
                && self.found.is_none()
                && let Expr::Path(path) = expr
                && path.path.is_ident(self.name)
            {
                self.found = Some(path.span());
            }
        }
    }
    impl<'ast> Visit<'ast> for Uses<'_> {
        fn visit_macro(&mut self, node: &'ast syn::Macro) {
            let arguments = expression_arguments(node);
            match arguments {
                Some(arguments) => arguments
                    .iter()
                    .for_each(|argument| self.visit_expr(argument)),
                // What another macro makes of `name` (a field's name in `name.field = ..`, a
                // `stringify!`'s text, a `let` it writes) cannot be told: the walk stops there.
                None if tokens_name(node.tokens.clone(), self.name) => self.rebound = true,
                None => {}
            }
        }
        fn visit_pat_ident(&mut self, node: &'ast syn::PatIdent) {
            if node.ident == self.name {
                self.rebound = true;
            }
            syn::visit::visit_pat_ident(self, node);
        }
        fn visit_expr_binary(&mut self, node: &'ast syn::ExprBinary) {
            use syn::BinOp::*;
            if matches!(
                node.op,
                Add(_)
                    | Sub(_)
                    | Mul(_)
                    | Div(_)
                    | Rem(_)
                    | BitAnd(_)
                    | BitOr(_)
                    | BitXor(_)
                    | Shl(_)
                    | Shr(_)
            ) {
                self.check(&node.left);
                self.check(&node.right);
            }
            syn::visit::visit_expr_binary(self, node);
        }
        fn visit_expr_unary(&mut self, node: &'ast syn::ExprUnary) {
            if matches!(node.op, syn::UnOp::Neg(_) | syn::UnOp::Not(_)) {
                self.check(&node.expr);
            }
            syn::visit::visit_expr_unary(self, node);
        }
        fn visit_expr_field(&mut self, node: &'ast syn::ExprField) {
            self.check(&node.base);
            syn::visit::visit_expr_field(self, node);
        }
        fn visit_expr_index(&mut self, node: &'ast syn::ExprIndex) {
            self.check(&node.expr);
            syn::visit::visit_expr_index(self, node);
        }
    }
    let mut uses = Uses {
        name,
        found: None,
        rebound: false,
    };
    uses.visit_expr(body);
    uses.found
}

/// The arguments of a standard macro that evaluates each of its arguments as an expression
/// (`println!("{}", n * 2)`, `assert_eq!(a, b)`, `vec![a, b]`), read as expressions; `None` for
/// any other macro, whose tokens may mean anything (`stringify!(n + 1)`, a logging macro's
/// `n.field = value`, a macro that binds `n`), or for arguments that are not expressions.
fn expression_arguments(node: &syn::Macro) -> Option<Punctuated<Expr, Token![,]>> {
    // Besides the formatting macros (`expand::FORMATTING`, whose arguments follow a format
    // string).
    const EVALUATING: [&str; 12] = [
        "format_args",
        "unreachable",
        "todo",
        "unimplemented",
        "assert",
        "assert_eq",
        "assert_ne",
        "debug_assert",
        "debug_assert_eq",
        "debug_assert_ne",
        "dbg",
        "vec",
    ];
    let name = &node.path.segments.last()?.ident;
    if !crate::expand::FORMATTING
        .iter()
        .chain(&EVALUATING)
        .any(|known| name == known)
    {
        return None;
    }
    node.parse_body_with(Punctuated::<Expr, Token![,]>::parse_terminated)
        .ok()
}

/// The name a step's parameter binds when it takes a value: `n`, or `n: T` with `T` not `()`.
fn value_param(param: &Pat) -> Option<String> {
    match param {
        Pat::Ident(ident) if ident.subpat.is_none() => Some(ident.ident.to_string()),
        Pat::Type(typed) if !matches!(&*typed.ty, Type::Tuple(unit) if unit.elems.is_empty()) => {
            value_param(&typed.pat)
        }
        _ => None,
    }
}

/// Whether `tokens` hold the word `word`, at any depth.
fn tokens_name(tokens: TokenStream, word: &str) -> bool {
    tokens.into_iter().any(|token| match token {
        TokenTree::Ident(ident) => ident == word,
        TokenTree::Group(group) => tokens_name(group.stream(), word),
        _ => false,
    })
}

/// `chain! { &d then .. }`: a chain takes its start, as a Deferred's `add_*` methods do. A
/// borrowed local (`&d`, `&mut d`) cannot be the start (the chain may outlive it); reported at
/// the `&`, and the chain expanded on `d` so that no borrow error follows.
fn borrowed_start(start: &mut Expr) -> Option<Error> {
    let Expr::Reference(reference) = start else {
        return None;
    };
    let Expr::Path(path) = &*reference.expr else {
        return None;
    };
    let name = path.path.get_ident()?.to_string();
    if !name.starts_with(|c: char| c.is_lowercase() || c == '_') {
        return None;
    }
    let error = Error::new_spanned(
        reference.and_token,
        format!(
            "a chain takes its start, it does not borrow it: write `{name}`; a Deferred has one \
             consumer (`{name}.into_shared()` gives a result many can wait on, each through its \
             own `consumer()`)"
        ),
    );
    *start = (*reference.expr).clone();
    Some(error)
}

/// The rules for one step. A mistake that leaves the step's types clear (a `finally` outcome
/// taken by value) is fixed in the model and reported in `errors`; any other makes the step
/// invalid.
fn validate_step(step: &mut Step, errors: &mut Vec<Error>) {
    let keyword = step.kind.keyword();
    if let StepKind::Catch { ty: Some(ty) } = &step.kind
        && let Some(error) = catch_type_error(ty)
    {
        step.handler = Handler::Invalid(error);
        step.kind = StepKind::Catch { ty: None };
        return;
    }
    let Handler::Closure(closure) = &mut step.handler else {
        return;
    };
    let rule = check_closure(keyword, &closure.written)
        .and_then(|()| BodyScan::of(&closure.body).check(keyword, closure));
    if let Err(error) = rule {
        step.handler = Handler::Invalid(error);
        if let StepKind::Catch { ty } = &mut step.kind {
            *ty = None;
        }
        return;
    }
    if keyword == Keyword::Finally {
        if let Some(error) = outcome_used_as_the_value(closure) {
            step.handler = Handler::Invalid(error);
            return;
        }
        if let Some(error) = outcome_by_value(closure) {
            errors.push(error);
        }
    }
}

/// `finally |x| x + 1`: Twisted's `addBoth`, or a `then`, in mind; but a `finally`'s parameter
/// is the outcome, a `&Result<T, E>`, which arithmetic, a field or an index cannot use (the
/// compiler's "cannot add `{integer}` to `&Result<u32, Failure>`"). Reported at the use, for a
/// parameter written without a type (one written with its type says the writer knows it).
fn outcome_used_as_the_value(closure: &StepClosure) -> Option<Error> {
    let Some(Pat::Ident(param)) = &closure.param else {
        return None;
    };
    let name = param.ident.to_string();
    if param.subpat.is_some() || name.starts_with('_') {
        return None;
    }
    let used = uses_as_a_value(&closure.body, &name)?;
    Some(Error::new(
        used,
        format!(
            "`{name}` is the chain's outcome, a `&Result`, not its value: a `finally` runs on \
             both paths and is lent the `Result`; to use the value, write \
             `if let Ok({name}) = {name} {{ .. }}` in the body, or a `then |{name}| ..` step, \
             which runs on success with the value"
        ),
    ))
}

/// A `catch` type that is a reference with no lifetime written (`&NotFound`, `&Failure`): the
/// usual way to ask for the error without taking it, which traps nothing, since a failure holds
/// its error by value (only one made from a `&'static NotFound` holds a reference, and a `catch`
/// of it says so: `|e: &'static NotFound|`).
fn catch_type_error(ty: &Type) -> Option<Error> {
    if let Some(error) = unsized_catch_type(ty) {
        return Some(error);
    }
    let Type::Reference(reference) = ty else {
        return None;
    };
    if reference.lifetime.is_some() {
        return None;
    }
    let inner = text(&reference.elem);
    let message = if is_failure_type(&reference.elem) {
        "a `catch` takes the failure itself, not a reference to it: write `catch |f| ...` \
         (a `Failure`) to take every failure"
            .to_owned()
    } else {
        format!(
            "a `catch` takes the error by value, out of the failure: write `|e: {inner}|` (a \
             failure holds its error by value: a `catch` of a reference traps only failures made \
             from a `&'static {inner}`, and says so, `|e: &'static {inner}|`)"
        )
    };
    Some(Error::new_spanned(reference.and_token, message))
}

/// A `catch` type that is a trait, not a type (`dyn Error`, `&dyn Error`, `impl Error`): the
/// way to ask for "any error", which a value cannot be of. A failure's error taken as it is,
/// whatever its type, is a boxed error.
fn unsized_catch_type(ty: &Type) -> Option<Error> {
    let (at, bounds): (&dyn ToTokens, _) = match ty {
        Type::TraitObject(object) => (object, &object.bounds),
        Type::ImplTrait(object) => (object, &object.bounds),
        // A reference with its lifetime written (`&'static (dyn Error + Send + Sync)`) is a type
        // of error a failure may hold, as `catch_type_error` says: only one without.
        Type::Reference(reference) if reference.lifetime.is_none() => {
            match without_parentheses(&reference.elem) {
                Type::TraitObject(object) => (reference, &object.bounds),
                _ => return None,
            }
        }
        _ => return None,
    };
    let traits = bounds
        .iter()
        .filter_map(|bound| match bound {
            syn::TypeParamBound::Trait(t) => Some(text(&t.path)),
            _ => None,
        })
        .collect::<Vec<_>>();
    let mut boxed = if traits.is_empty() {
        "Error".to_owned()
    } else {
        traits.join(" + ")
    };
    for marker in ["Send", "Sync"] {
        if !traits
            .iter()
            .any(|t| t == marker || t.ends_with(&format!("::{marker}")))
        {
            boxed = format!("{boxed} + {marker}");
        }
    }
    Some(Error::new_spanned(
        at,
        format!(
            "a `catch` traps a type of error, not a trait: write `|e: ErrorType|` to trap one \
             type, or `|e: Box<dyn {boxed}>|` to take every failure's error, boxed (or `|f|`, \
             the failure itself)"
        ),
    ))
}

/// `ty` without the parentheses around it (`&(dyn Error + Send + Sync)`'s).
fn without_parentheses(ty: &Type) -> &Type {
    match ty {
        Type::Paren(paren) => without_parentheses(&paren.elem),
        Type::Group(group) => without_parentheses(&group.elem),
        other => other,
    }
}

/// `finally |outcome: Result<T, E>|`: the outcome is lent to a `finally`. Reported at the type,
/// and taken as `&Result<T, E>` so that the body is still checked. Only for a type named
/// `Result`: one of another name (`finally |x: u32|`, the value in mind) is left to the
/// expansion, which says at it that the outcome is a `&Result` (`__private::LentAs`).
fn outcome_by_value(closure: &mut StepClosure) -> Option<Error> {
    let Some(Pat::Type(typed)) = &mut closure.param else {
        return None;
    };
    let Type::Path(path) = &*typed.ty else {
        return None;
    };
    if path.qself.is_some()
        || path
            .path
            .segments
            .last()
            .is_none_or(|last| last.ident != "Result")
    {
        return None;
    }
    let name = text(&typed.pat);
    let ty = text(&typed.ty);
    let error = Error::new_spanned(
        &typed.ty,
        format!(
            "`{name}` is a `&{ty}`: a `finally` is lent the outcome, it does not take it; \
             write `|{name}|` or `|{name}: &{ty}|`"
        ),
    );
    let by_value = typed.ty.clone();
    *typed.ty = syn::parse_quote_spanned!(by_value.span()=> & #by_value);
    Some(error)
}

/// Tokens as a person writes them: `Result<i32, Failure>`, not `Result < i32 , Failure >`.
pub fn text(tokens: &impl ToTokens) -> String {
    let mut text = tokens.to_token_stream().to_string();
    for (spaced, tight) in [
        (" < ", "<"),
        ("< ", "<"),
        (" <", "<"),
        (" >", ">"),
        (" , ", ", "),
        (" :: ", "::"),
        (":: ", "::"),
        ("& ", "&"),
        (" (", "("),
        ("( ", "("),
        (" )", ")"),
        (" .", "."),
        (". ", "."),
        (" ?", "?"),
        ("! (", "!("),
    ] {
        text = text.replace(spaced, tight);
    }
    text
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
    /// Where the body uses `?`.
    tries: Vec<Span>,
    /// The body's `return`s, with what they give (`None` inside a macro's arguments, which are
    /// not parsed).
    returns: Vec<(TokenStream, Option<Gives>)>,
    awaits: Vec<TokenStream>,
}

impl BodyScan {
    fn of(body: &Expr) -> BodyScan {
        let mut scan = BodyScan::default();
        scan.visit_expr(body);
        scan
    }

    fn framed(&self) -> bool {
        !self.tries.is_empty() || !self.returns.is_empty()
    }

    /// The rules about what the body contains.
    fn check(&self, keyword: Keyword, closure: &StepClosure) -> syn::Result<()> {
        if let Some(error) = self.await_error(keyword.name()) {
            return Err(error);
        }
        if !matches!(closure.output, ReturnType::Default) {
            // The closure says what it gives: the compiler's messages are about that type.
            return Ok(());
        }
        let Some(tail) = tail_gives(&closure.body) else {
            return Ok(());
        };
        if let Some(first) = self.tries.first()
            && tail.is_plain()
        {
            return Err(Error::new(
                *first,
                format!(
                    "this `{name}` step uses `?`, so its body must give a `Result`, but it gives \
                     {what}: write `Ok(..)` around the value it gives{unit}; `?` on an `Option` \
                     needs `.ok_or(error)?`; `?` does not wait for a Deferred: give the Deferred \
                     as the step's value, and take what it gives in the next `then`",
                    name = keyword.name(),
                    what = tail.describe(),
                    unit = if tail == Gives::Unit {
                        " (`Ok(())`)"
                    } else {
                        ""
                    },
                ),
            ));
        }
        for (tokens, gives) in &self.returns {
            let Some(gives) = gives else { continue };
            if !gives.differs_from(tail) {
                continue;
            }
            let fix = match (gives, tail) {
                (Gives::Result, _) => {
                    "write `Ok(..)` around the value at the end of the body".to_owned()
                }
                (_, Gives::Result) => "write `return Ok(..)` here".to_owned(),
                (_, tail) => format!(
                    "return {} here too (to fail the step, give a `Result`: `return Err(..)` \
                     here and `Ok(..)` at the end)",
                    tail.describe()
                ),
            };
            return Err(Error::new_spanned(
                tokens,
                format!(
                    "this `return` gives {}, but the body gives {} at its end: a step gives one \
                     type; {fix}",
                    gives.describe(),
                    tail.describe()
                ),
            ));
        }
        Ok(())
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
                TokenTree::Punct(punct) if punct.as_char() == '?' => {
                    self.tries.push(punct.span());
                }
                TokenTree::Ident(ident) if ident == "return" => {
                    self.returns.push((ident.to_token_stream(), None));
                }
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
        let gives = match &node.expr {
            None => Gives::Unit,
            Some(expr) => gives(expr),
        };
        self.returns.push((node.to_token_stream(), Some(gives)));
        syn::visit::visit_expr_return(self, node);
    }

    fn visit_expr_try(&mut self, node: &'ast syn::ExprTry) {
        self.tries.push(node.question_token.span);
        syn::visit::visit_expr_try(self, node);
    }

    fn visit_expr_await(&mut self, node: &'ast syn::ExprAwait) {
        let (dot, await_token) = (&node.dot_token, &node.await_token);
        self.awaits.push(quote::quote!(#dot #await_token));
        syn::visit::visit_expr_await(self, node);
    }

    fn visit_macro(&mut self, node: &'ast syn::Macro) {
        // Arguments that read as expressions (`println!`'s, `assert!`'s, `vec![..]`'s) are
        // walked as the body is, so that a `?` or a `return` inside a closure among them is the
        // closure's; other tokens are scanned.
        match node.parse_body_with(Punctuated::<Expr, Token![,]>::parse_terminated) {
            Ok(arguments) => arguments
                .iter()
                .for_each(|argument| self.visit_expr(argument)),
            Err(_) => self.scan_tokens(node.tokens.clone()),
        }
    }
}

/// What an expression visibly gives, as far as its syntax says.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Gives {
    /// `Ok(..)` or `Err(..)`.
    Result,
    /// `Some(..)` or `None`.
    Option,
    /// `()`: nothing, a statement, `println!(..)`.
    Unit,
    /// A string literal or `format!(..)`.
    Text,
    /// A number: a numeric literal, or arithmetic with one.
    Number,
    /// `true`, `false`, a comparison or `!`, `&&`, `||`.
    Bool,
    /// A `char` literal.
    Char,
    /// Another plain value: a tuple, an array, a struct, a reference, `vec![..]`.
    Plain,
    /// Anything else: a call, a method, a variable, an `if`: its type is the compiler's to know.
    Unknown,
}

impl Gives {
    /// Not a `Result`, an `Option` or a Deferred, whatever the types.
    fn is_plain(self) -> bool {
        !matches!(self, Gives::Result | Gives::Option | Gives::Unknown)
    }

    /// Whether a value of this kind cannot be of the same type as one of `other`'s.
    fn differs_from(self, other: Gives) -> bool {
        if self == Gives::Unknown || other == Gives::Unknown || self == other {
            return false;
        }
        // A plain value of no known type may be of any plain type.
        !(self == Gives::Plain && other.is_plain() || other == Gives::Plain && self.is_plain())
    }

    fn describe(self) -> &'static str {
        match self {
            Gives::Result => "a `Result`",
            Gives::Option => "an `Option`",
            Gives::Unit => "`()` (nothing)",
            Gives::Text => "a string",
            Gives::Number => "a number",
            Gives::Bool => "a `bool`",
            Gives::Char => "a `char`",
            Gives::Plain => "a plain value",
            Gives::Unknown => "a value",
        }
    }
}

/// What the body gives at its end (`None`: a body that never ends, or one whose end is not a
/// plain expression).
fn tail_gives(body: &Expr) -> Option<Gives> {
    match body {
        Expr::Block(block) if block.label.is_none() => match block.block.stmts.last() {
            None => Some(Gives::Unit),
            Some(syn::Stmt::Expr(last, None)) => Some(gives(last)),
            Some(syn::Stmt::Macro(mac)) if mac.semi_token.is_none() => Some(macro_gives(&mac.mac)),
            Some(syn::Stmt::Expr(Expr::Return(_), Some(_))) => None,
            Some(_) => Some(Gives::Unit),
        },
        other => Some(gives(other)),
    }
}

/// What `expr` visibly gives.
fn gives(expr: &Expr) -> Gives {
    use syn::{BinOp, Lit, UnOp};
    // `Ok`, `Ok::<_, E>`: one segment, with or without its types.
    let named = |path: &syn::Path, names: &[&str]| {
        path.leading_colon.is_none()
            && path.segments.len() == 1
            && names.iter().any(|name| path.segments[0].ident == name)
    };
    match expr {
        Expr::Call(call) => match &*call.func {
            Expr::Path(path) if named(&path.path, &["Ok", "Err"]) => Gives::Result,
            Expr::Path(path) if named(&path.path, &["Some"]) => Gives::Option,
            _ => Gives::Unknown,
        },
        Expr::Path(path) if named(&path.path, &["None"]) => Gives::Option,
        Expr::Lit(lit) => match &lit.lit {
            Lit::Str(_) => Gives::Text,
            Lit::Int(_) | Lit::Float(_) => Gives::Number,
            Lit::Bool(_) => Gives::Bool,
            Lit::Char(_) => Gives::Char,
            _ => Gives::Plain,
        },
        Expr::Binary(binary) => match binary.op {
            BinOp::Eq(_)
            | BinOp::Ne(_)
            | BinOp::Lt(_)
            | BinOp::Le(_)
            | BinOp::Gt(_)
            | BinOp::Ge(_)
            | BinOp::And(_)
            | BinOp::Or(_) => Gives::Bool,
            BinOp::Add(_) | BinOp::Sub(_) | BinOp::Mul(_) | BinOp::Div(_) | BinOp::Rem(_) => {
                let number = |side: &Expr| matches!(gives(side), Gives::Number);
                if number(&binary.left) || number(&binary.right) {
                    Gives::Number
                } else {
                    Gives::Unknown
                }
            }
            _ => Gives::Unknown,
        },
        Expr::Unary(unary) => match unary.op {
            UnOp::Not(_) => match gives(&unary.expr) {
                Gives::Bool => Gives::Bool,
                _ => Gives::Unknown,
            },
            UnOp::Neg(_) => match gives(&unary.expr) {
                Gives::Number => Gives::Number,
                _ => Gives::Unknown,
            },
            _ => Gives::Unknown,
        },
        Expr::Tuple(tuple) if tuple.elems.is_empty() => Gives::Unit,
        Expr::Tuple(_) | Expr::Array(_) | Expr::Repeat(_) | Expr::Reference(_) => Gives::Plain,
        Expr::Struct(_) | Expr::Range(_) => Gives::Plain,
        Expr::Paren(paren) => gives(&paren.expr),
        Expr::Macro(mac) => macro_gives(&mac.mac),
        _ => Gives::Unknown,
    }
}

/// What a macro call visibly gives: the standard library's that give a known kind of value.
fn macro_gives(mac: &syn::Macro) -> Gives {
    let Some(name) = mac.path.get_ident().map(ToString::to_string) else {
        return Gives::Unknown;
    };
    match name.as_str() {
        "format" => Gives::Text,
        "vec" => Gives::Plain,
        "println" | "print" | "eprintln" | "eprint" | "assert" | "assert_eq" | "assert_ne"
        | "debug_assert" | "debug_assert_eq" | "debug_assert_ne" => Gives::Unit,
        _ => Gives::Unknown,
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

/// Whether `body`'s value is visibly a plain value, which cannot be a failure: a literal, a
/// tuple, array or struct of anything, an operator's result, a cast, `Some(..)`, `Ok(..)`,
/// `format!`/`vec!`, a closure, or a block, `if` or `match` whose every value is one; and the
/// methods `len`, `is_empty` and `to_string`, which give a number, a `bool` and a `String`. A
/// name, a call or another method may hold or give a Deferred or a `Result` (a fallback that
/// can fail in turn), and so may a panicking macro: they are not plain.
fn plain_value(body: &Expr) -> bool {
    match body {
        Expr::Lit(_)
        | Expr::Tuple(_)
        | Expr::Array(_)
        | Expr::Repeat(_)
        | Expr::Struct(_)
        | Expr::Binary(_)
        | Expr::Unary(_)
        | Expr::Cast(_)
        | Expr::Closure(_)
        | Expr::Range(_) => true,
        Expr::Paren(inner) => plain_value(&inner.expr),
        Expr::Group(inner) => plain_value(&inner.expr),
        Expr::Reference(inner) => plain_value(&inner.expr),
        Expr::Block(block) => block_value_plain(&block.block),
        Expr::Unsafe(block) => block_value_plain(&block.block),
        Expr::If(branches) => {
            block_value_plain(&branches.then_branch)
                && branches
                    .else_branch
                    .as_ref()
                    .is_none_or(|(_, other)| plain_value(other))
        }
        Expr::Match(found) => found.arms.iter().all(|arm| plain_value(&arm.body)),
        Expr::Call(call) => matches!(
            &*call.func,
            Expr::Path(path) if path.path.is_ident("Some") || path.path.is_ident("Ok")
        ),
        Expr::MethodCall(call) => ["len", "is_empty", "to_string"]
            .iter()
            .any(|name| call.method == name),
        Expr::Macro(mac) => ["format", "vec"]
            .iter()
            .any(|name| mac.mac.path.is_ident(name)),
        _ => false,
    }
}

/// Whether a block's value (its last expression, or `()`) is visibly plain ([`plain_value`]).
fn block_value_plain(block: &syn::Block) -> bool {
    match block.stmts.last() {
        Some(syn::Stmt::Expr(tail, None)) => plain_value(tail),
        Some(syn::Stmt::Macro(mac)) if mac.semi_token.is_none() => ["format", "vec"]
            .iter()
            .any(|name| mac.mac.path.is_ident(name)),
        _ => true,
    }
}

impl Step {
    /// Whether this step is a `catch` that takes every failure: untyped, a function, or typed
    /// with `Failure` itself or a boxed error (`Box<dyn Error + ..>`).
    pub fn is_catch_all(&self) -> bool {
        match (&self.kind, &self.handler) {
            (_, Handler::Invalid(_)) => false,
            (StepKind::Catch { ty: None }, _) => true,
            (StepKind::Catch { ty: Some(ty) }, _) => is_failure_type(ty) || is_boxed_error(ty),
            _ => false,
        }
    }

    /// Whether this step's code visibly never passes a failure on: a closure whose body does
    /// not mention `Err`, `?` or `return`, and whose value is visibly a plain value
    /// ([`plain_value`]), not a Deferred or a `Result` that may fail (`catch |_| fetch_backup()`
    /// passes on the backup's failure). A function might: it does not count.
    pub fn keeps_failures_in(&self) -> bool {
        match &self.handler {
            Handler::Closure(closure) => !closure.passes_on() && plain_value(&closure.body),
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

/// Whether `ty` is a boxed error: `Box<dyn Error + ..>` (`std::error::Error`, any path to a
/// trait named `Error`, or `StdError` as it is often imported; in parentheses or not), which a
/// chain of `Failure`s gives for every failure. A type alias of one cannot be seen here: the
/// `catch` still takes every failure, and one after it is not reported.
fn is_boxed_error(ty: &Type) -> bool {
    let Type::Path(path) = ty else { return false };
    let Some(last) = path.path.segments.last() else {
        return false;
    };
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return false;
    };
    let Some(syn::GenericArgument::Type(boxed)) = args.args.first() else {
        return false;
    };
    let mut boxed = boxed;
    while let Type::Paren(inner) = boxed {
        boxed = &*inner.elem;
    }
    last.ident == "Box"
        && path.qself.is_none()
        && matches!(
            boxed,
            Type::TraitObject(object) if object.bounds.iter().any(|bound| matches!(
                bound,
                syn::TypeParamBound::Trait(t) if t.path.segments.last().is_some_and(|s| {
                    s.ident == "Error" || s.ident == "StdError"
                })
            ))
        )
}

impl StepClosure {
    /// The body uses `return` or `?`, or the closure has a return type: the body runs inside a
    /// closure of its own, so that those mean what they mean in a closure.
    pub fn framed(&self) -> bool {
        BodyScan::of(&self.body).framed() || !matches!(self.output, ReturnType::Default)
    }

    /// The body never gives a value: it is (or ends in) `panic!`, `todo!`, `unimplemented!` or
    /// `unreachable!`. Its type is fixed by the expansion, which the compiler cannot infer.
    pub fn diverges(&self) -> bool {
        !self.framed() && diverges(&self.body)
    }

    /// The body visibly passes a failure on (it mentions `Err`, or uses `?` or `return`): a
    /// catch-all with such a body does not make the `catch` after it unreachable.
    fn passes_on(&self) -> bool {
        BodyScan::of(&self.body).framed() || mentions_err(self.body.to_token_stream())
    }
}

/// Checks the cross-step rules:
///
/// - A `catch` right after a catch-all (`catch |f|`) can never run: the catch-all already took
///   every failure, and nothing between them can fail again. (Unless the catch-all visibly
///   passes a failure on: `catch |f| Err(wrap(f))` may be followed by another `catch`.)
/// - A `catch |e: T|` right after another `catch |e: T|` can never run either (unless a catch
///   between them, or the first one, visibly passes a failure on).
///
/// A `then` or `finally` in between can raise new failures, so it starts a new run of catches.
fn validate_catches(chain: &mut Chain) {
    let mut catch_all_before = false;
    // The catch-all before names a boxed error: it has a type already.
    let mut boxed_before = false;
    let mut trapped_before: Vec<String> = Vec::new();
    for step in &chain.steps {
        let StepKind::Catch { ty } = &step.kind else {
            catch_all_before = false;
            trapped_before.clear();
            continue;
        };
        if matches!(step.handler, Handler::Invalid(_)) {
            continue;
        }
        if catch_all_before && boxed_before {
            chain.errors.push(Error::new(
                step.keyword.span(),
                "this `catch` can never run: the `catch` before it names a boxed error, which \
                 every failure is, so it takes every failure and passes none on; remove this \
                 one, or put it first, or name an error type in the earlier one: \
                 `catch |e: ErrorType| ...`",
            ));
            continue;
        }
        if catch_all_before {
            chain.errors.push(Error::new(
                step.keyword.span(),
                "this `catch` can never run: the `catch` before it takes every failure and \
                 passes none on; remove this one, or give the earlier one a type: \
                 `catch |e: ErrorType| ...`",
            ));
            continue;
        }
        if !step.keeps_failures_in() {
            // Its body may give a new failure, of any type: what the catches before it trap
            // may come again.
            trapped_before.clear();
        }
        if step.is_catch_all() {
            catch_all_before = step.keeps_failures_in();
            boxed_before = ty.as_deref().is_some_and(is_boxed_error);
            continue;
        }
        let Some(ty) = ty else { continue };
        let name = ty.to_token_stream().to_string();
        if trapped_before.contains(&name) {
            chain.errors.push(Error::new(
                step.keyword.span(),
                format!(
                    "this `catch` can never run: the `catch` before it already traps every \
                     `{name}`; remove one of them"
                ),
            ));
        } else if step.keeps_failures_in() {
            trapped_before.push(name);
        }
    }
}
