//! Robustness over the machine's CPython standard library: every `.py` file is classified
//! without a panic or an error, and wherever the fast tokenizer claims exact tokens they equal
//! `rustpython_parser`'s.

use std::path::{Path, PathBuf};
use std::process::Command;

use gaia_webhook::classifier::{self, testing, Limits, SourceFile, REQUIRED_STACK_BYTES};

fn stdlib_dir() -> Option<PathBuf> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['stdlib'])",
        ])
        .output()
        .ok()?;
    let dir = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!dir.is_empty()).then(|| PathBuf::from(dir))
}

fn python_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        match e.file_type() {
            Ok(t) if t.is_dir() && name != "site-packages" && name != "dist-packages" => {
                python_files(&p, out);
            }
            Ok(t) if t.is_file() && name.ends_with(".py") => out.push(p),
            _ => {}
        }
    }
}

#[test]
fn every_stdlib_file_classifies_and_tokens_match_rustpython() {
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
