//! The step keyword a misspelled or borrowed word was meant to be.

use crate::parse::Keyword;

/// Words people bring from other promise libraries, and the step that does their job.
const ALIASES: &[(&str, Keyword)] = &[
    ("and_then", Keyword::Then),
    ("map", Keyword::Then),
    ("callback", Keyword::Then),
    ("add_callback", Keyword::Then),
    ("except", Keyword::Catch),
    ("rescue", Keyword::Catch),
    ("or_else", Keyword::Catch),
    ("errback", Keyword::Catch),
    ("add_errback", Keyword::Catch),
    ("trap", Keyword::Catch),
    ("ensure", Keyword::Finally),
    ("always", Keyword::Finally),
    ("both", Keyword::Finally),
    ("add_both", Keyword::Finally),
];

/// Words for a deadline (`timeout`, `deadline`, ...): not a step, because a deadline covers
/// what came before it. What to write instead, for the message.
pub fn deadline_instead(word: &str) -> Option<&'static str> {
    const DEADLINES: &[&str] = &[
        "timeout",
        "add_timeout",
        "deadline",
        "timeout_after",
        "within",
    ];
    DEADLINES.contains(&word.to_lowercase().as_str()).then_some(
        "there is no `timeout` step: put the deadline on what it covers with `add_timeout` — \
         `chain! { fetch().add_timeout(delay, &clock) then ... }` for the start, or \
         `chain! { ... }.add_timeout(delay, &clock)` for every step so far — and \
         `catch |e: TimedOut| ...` after it",
    )
}

/// The step keyword nearest to an unknown word, if one is near enough. A word in `camelCase`
/// (Twisted's `addCallback`, `andThen`) is read as its `snake_case`.
pub fn suggest(word: &str) -> Option<Keyword> {
    let mut lower = String::new();
    let mut after_lowercase = false;
    for c in word.chars() {
        if c.is_uppercase() && after_lowercase {
            lower.push('_');
        }
        after_lowercase = c.is_lowercase();
        lower.extend(c.to_lowercase());
    }
    if let Some((_, step)) = ALIASES.iter().find(|(alias, _)| *alias == lower) {
        return Some(*step);
    }
    Keyword::ALL
        .into_iter()
        .map(|keyword| (edit_distance(&lower, keyword.name()), keyword))
        .filter(|(distance, keyword)| *distance <= keyword.name().len() / 3)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_nearest_keyword() {
        let name = |word| suggest(word).map(Keyword::name);
        assert_eq!(name("than"), Some("then"));
        assert_eq!(name("thne"), Some("then"));
        assert_eq!(name("cach"), Some("catch"));
        assert_eq!(name("finaly"), Some("finally"));
        assert_eq!(name("and_then"), Some("then"));
        assert_eq!(name("except"), Some("catch"));
        assert_eq!(name("addCallback"), Some("then"));
        assert_eq!(name("addErrback"), Some("catch"));
        assert_eq!(name("addBoth"), Some("finally"));
        assert_eq!(name("andThen"), Some("then"));
        assert_eq!(name("Then"), Some("then"));
        assert_eq!(name("THEN"), Some("then"));
        assert_eq!(name("Catch"), Some("catch"));
        assert_eq!(name("frobnicate"), None);
    }
}
