//! What the table-driven classifier tests share: a row (snippet or small project, expected mode,
//! finding kinds that must and must not be reported, words the rationale must hold), the run on
//! a thread with the classifier's stack, and the check of a whole table.

use gaia_classifier::{
    classify, Classification, FindingKind as K, Limits, SourceFile, REQUIRED_STACK_BYTES,
};
use gaia_contract::ExecutionMode;

pub struct Case {
    pub name: &'static str,
    pub files: &'static [(&'static str, &'static str)],
    pub mode: ExecutionMode,
    pub has: &'static [K],
    pub lacks: &'static [K],
    /// Words the rationale must contain.
    pub says: &'static [&'static str],
}

pub const fn case(
    name: &'static str,
    files: &'static [(&'static str, &'static str)],
    mode: ExecutionMode,
    has: &'static [K],
    lacks: &'static [K],
    says: &'static [&'static str],
) -> Case {
    Case {
        name,
        files,
        mode,
        has,
        lacks,
        says,
    }
}

/// Runs `f` on a thread with the stack the classifier needs; a panic fails the test.
pub fn on_classifier_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(REQUIRED_STACK_BYTES)
        .spawn(f)
        .expect("thread")
        .join()
        .expect("no panic")
}

pub fn run(files: Vec<SourceFile>) -> Classification {
    on_classifier_thread(move || classify(&files, &Limits::default())).expect("classified")
}

/// What is wrong with the classification of one row (empty: nothing).
fn problems(c: &Case, got: &Classification) -> Vec<String> {
    let kinds: Vec<K> = got.findings.iter().map(|f| f.kind).collect();
    let mut problems = Vec::new();
    if got.mode != c.mode {
        problems.push(format!("mode {} (want {})", got.mode, c.mode));
    }
    for k in c.has {
        if !kinds.contains(k) {
            problems.push(format!("no {k}"));
        }
    }
    for k in c.lacks {
        if kinds.contains(k) {
            problems.push(format!("unexpected {k}"));
        }
    }
    for w in c.says {
        if !got.rationale.contains(w) {
            problems.push(format!("rationale lacks {w:?}"));
        }
    }
    if got.fallback != kinds.contains(&K::ParseFallback) {
        problems.push("fallback flag disagrees with the findings".into());
    }
    if got.rationale.is_empty()
        || got.rationale.contains('\n')
        || got.rationale.chars().count() > 300
    {
        problems.push(format!("bad rationale {:?}", got.rationale));
    }
    problems
}

/// Classifies every row of a table; fails with every wrong row at once.
pub fn check(table: &str, cases: &[Case]) {
    let mut failures = Vec::new();
    for c in cases {
        let files = c
            .files
            .iter()
            .map(|(p, s)| SourceFile::new(*p, s.as_bytes()))
            .collect();
        let got = run(files);
        let problems = problems(c, &got);
        if !problems.is_empty() {
            failures.push(format!(
                "{}: {}\n    {}\n    {:?}",
                c.name,
                problems.join("; "),
                got.rationale,
                got.findings
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{table}: {} of {} failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
