//! Robustness over the machine's CPython standard library: every `.py` file is classified
//! without a panic or an error, and wherever our tokenizer claims exact tokens they are the
//! tokens of `ruff_python_parser`'s lexer (see `testing::token_mismatch`).

#[path = "support/stdlib.rs"]
mod stdlib;

use gaia_classifier::{self as classifier, testing, Limits, SourceFile, REQUIRED_STACK_BYTES};
use stdlib::{python_files, stdlib_dir};

#[test]
fn every_stdlib_file_classifies_and_tokens_match_the_parsers_lexer() {
    let Some(dir) = stdlib_dir() else {
        eprintln!("no python3 here: skipped");
        return;
    };
    let mut files = Vec::new();
    python_files(&dir, &mut files);
    files.sort();
    assert!(
        files.len() > 500,
        "{} files under {}",
        files.len(),
        dir.display()
    );
    let result = std::thread::Builder::new()
        .stack_size(REQUIRED_STACK_BYTES)
        .spawn(move || {
            let limits = Limits::default();
            let (mut modes, mut fallback, mut mismatches) = (Vec::new(), 0usize, Vec::new());
            for path in &files {
                let Ok(bytes) = std::fs::read(path) else {
                    continue;
                };
                if let Ok(src) = std::str::from_utf8(&bytes) {
                    if let Some(why) = testing::token_mismatch(src) {
                        mismatches.push(format!("{}: {why}", path.display()));
                    }
                }
                let name = path
                    .file_name()
                    .map_or("x.py".into(), |n| n.to_string_lossy().into_owned());
                match classifier::classify(&[SourceFile::new(name, bytes)], &limits) {
                    Ok(c) => {
                        assert!(c.rationale.chars().count() <= 300, "{}", path.display());
                        assert!(!c.rationale.contains('\n'));
                        fallback += usize::from(c.fallback);
                        modes.push(c.mode);
                    }
                    Err(e) => panic!("{}: {e}", path.display()),
                }
            }
            (files.len(), modes, fallback, mismatches)
        })
        .expect("thread")
        .join();
    let (n, modes, fallback, mismatches) = result.expect("no panic");
    eprintln!(
        "{n} files: {} classified, {fallback} by the token-level fallback, {} token mismatches",
        modes.len(),
        mismatches.len()
    );
    assert!(
        mismatches.is_empty(),
        "{:#?}",
        &mismatches[..mismatches.len().min(10)]
    );
    // The standard library has test files with deliberate syntax errors; nothing else fails.
    assert!(fallback < n / 50, "{fallback} fallbacks");
}
