//! The README's recipes, run as a user runs them: each is an example whose
//! output is checked here, and the code the README shows is the example's, word for word, so
//! neither can drift from the other. (`cargo test` builds the examples before it runs the tests.)

use std::process::Command;

mod examples_support;
use examples_support::example;

/// Runs the example `name` and gives its standard output; it must exit with success.
fn run(name: &str) -> String {
    let binary = example(name);
    let output = Command::new(&binary).output().unwrap_or_else(|e| {
        panic!(
            "cannot run {} (built by `cargo test`): {e}",
            binary.display()
        )
    });
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{name} failed: {}\n{stdout}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The code between `// recipe: begin` and `// recipe: end` in `examples/NAME.rs`.
fn recipe_code(name: &str) -> String {
    let path = format!("{}/examples/{name}.rs", env!("CARGO_MANIFEST_DIR"));
    let source = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let begin = source
        .find("// recipe: begin\n")
        .expect("a `// recipe: begin` line");
    let end = source
        .find("// recipe: end\n")
        .expect("a `// recipe: end` line");
    source[begin + "// recipe: begin\n".len()..end].to_owned()
}

/// The README shows the recipe's code as it is in the example.
fn assert_in_readme(name: &str) {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let code = recipe_code(name);
    assert!(
        readme.contains(&code),
        "README.md does not show the recipe of examples/{name}.rs as it is; copy this in:\n{code}"
    );
    assert!(readme.contains(&format!("examples/{name}.rs")));
}

#[test]
fn recipe_c_callback_fires_on_the_callback_and_cancels_the_request() {
    assert_in_readme("recipe_c_callback");
    let out = run("recipe_c_callback");
    assert_eq!(
        out,
        "alice has id 7\nzed: lookup error 404\nslow: cancelled; requests the library cancelled: 1\n"
    );
}

#[test]
fn recipe_fan_out_fetches_every_page_three_at_once_retrying_the_unavailable() {
    assert_in_readme("recipe_fan_out");
    let out = run("recipe_fan_out");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 10, "{out}");
    for page in 1..=9u32 {
        let attempt = if page.is_multiple_of(3) { 2 } else { 1 };
        assert_eq!(
            lines[page as usize - 1],
            format!("page {page}: {} bytes (attempt {attempt})", 100 * page)
        );
    }
    // 9 pages, 3 of them twice; never more than three at once.
    assert!(
        lines[9].starts_with("9 pages, 12 attempts, at most "),
        "{out}"
    );
    let peak: usize = lines[9].rsplit(' ').nth(2).unwrap().parse().unwrap();
    assert!((1..=3).contains(&peak), "{out}");
}

#[test]
fn recipe_single_thread_answers_from_the_pool_the_cache_and_times_out() {
    assert_in_readme("recipe_single_thread");
    let out = run("recipe_single_thread");
    assert_eq!(
        out,
        "alice: #510\nzed: the Deferred timed out after 500ms\nalice: #510 (cached)\n"
    );
}
