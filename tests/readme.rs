//! README.md's library example is `examples/readme.rs`, word for word: the program that
//! `tests/examples.rs` runs against Elixir nodes is the one the README shows. (The README's
//! code blocks are also compiled as doc tests: `ReadmeDoctests` in `src/lib.rs`.)

use std::path::Path;

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The body of the first fenced block of `section` whose info string starts with `lang`.
fn fenced_block(markdown: &str, section: &str, lang: &str) -> String {
    let start = markdown
        .find(section)
        .unwrap_or_else(|| panic!("README.md has no {section:?}"));
    let mut lines = markdown[start..].lines();
    lines
        .by_ref()
        .find(|line| line.starts_with("```") && line[3..].starts_with(lang))
        .unwrap_or_else(|| panic!("{section:?} has no ```{lang} block"));
    let mut body = String::new();
    for line in lines {
        if line.starts_with("```") {
            return body;
        }
        body.push_str(line);
        body.push('\n');
    }
    panic!("the ```{lang} block of {section:?} does not end");
}

/// `examples/readme.rs` without its leading `//!` comment and the blank line after it.
fn example_body(source: &str) -> String {
    let body: Vec<&str> = source
        .lines()
        .skip_while(|line| line.starts_with("//!"))
        .skip_while(|line| line.is_empty())
        .collect();
    body.join("\n") + "\n"
}

#[test]
fn the_readme_library_example_is_examples_readme_rs() {
    let readme = fenced_block(&read("README.md"), "\n## The library\n", "rust");
    let example = example_body(&read("examples/readme.rs"));
    if readme != example {
        let first_difference = readme
            .lines()
            .zip(example.lines())
            .enumerate()
            .find(|(_, (a, b))| a != b)
            .map(|(n, (a, b))| format!("line {}: README {a:?}, example {b:?}", n + 1))
            .unwrap_or_else(|| "one is longer".into());
        panic!(
            "README.md's library example and examples/readme.rs differ ({first_difference}): \
             copy the example's code (after its //! comment) into the README"
        );
    }
    assert!(
        readme.contains("Node::builder()") && readme.contains("spawn_gen_server(\"counter\""),
        "the README example no longer starts a node or the counter GenServer:\n{readme}"
    );
}
