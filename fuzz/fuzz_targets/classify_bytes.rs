//! The classifier on arbitrary bytes: one file, or several (split at 0xFF, which UTF-8 never
//! contains), under the default limits. It must answer or refuse, never panic, and its rationale
//! is one bounded line.
#![no_main]

#[path = "classifier_thread.rs"]
mod classifier_thread;

use gaia_classifier::SourceFile;
use gaia_contract::verdict::MAX_CLASSIFIER_RATIONALE_CHARS;
use libfuzzer_sys::fuzz_target;

fn files(data: &[u8]) -> Vec<SourceFile> {
    let parts: Vec<&[u8]> = data.split(|b| *b == 0xFF).collect();
    if parts.len() == 1 {
        return vec![SourceFile::new("func.py", data)];
    }
    parts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let name = if i == 0 {
                "func.py".to_string()
            } else {
                format!("pkg/m{i}.py")
            };
            SourceFile::new(name, *p)
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = classifier_thread::run(files(data)) {
        assert!(c.rationale.chars().count() <= MAX_CLASSIFIER_RATIONALE_CHARS);
        assert!(!c.rationale.contains('\n'));
    }
});
