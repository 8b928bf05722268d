//! The project's corpus of serving functions (classifier/tests/corpus/<name>/), written in the
//! style of TorchServe handlers, Triton Python backends, KServe, Truss, BentoML, Ray Serve, Modal
//! and AWS Lambda, each with its expected mode and a one-line reason in
//! `classifier/tests/corpus/expected.tsv`. Prints the accuracy; fails on any mismatch, and above
//! all on a function with a CPU path classified `gpu`.

use std::path::{Path, PathBuf};

#[path = "support/table.rs"]
#[allow(dead_code)]
mod table;

use gaia_classifier::{classify_path, Classification, Limits};
use gaia_contract::ExecutionMode;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

fn mode(s: &str) -> Option<ExecutionMode> {
    match s {
        "cpu" => Some(ExecutionMode::Cpu),
        "cpu_preferred" => Some(ExecutionMode::CpuPreferred),
        "gpu_preferred" => Some(ExecutionMode::GpuPreferred),
        "gpu" => Some(ExecutionMode::Gpu),
        _ => None,
    }
}

struct Row {
    name: String,
    mode: ExecutionMode,
    reason: String,
}

fn manifest() -> Vec<Row> {
    let text = std::fs::read_to_string(corpus().join("expected.tsv")).expect("expected.tsv");
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut cols = l.split('\t');
            let name = cols.next().unwrap_or_default().to_owned();
            let m = cols.next().unwrap_or_default();
            let reason = cols.next().unwrap_or_default().to_owned();
            let mode = mode(m).unwrap_or_else(|| panic!("{name}: unknown mode {m:?}"));
            assert!(!reason.is_empty(), "{name}: no reason");
            Row { name, mode, reason }
        })
        .collect()
}

fn classify(name: &str) -> Classification {
    let path = corpus().join(name);
    table::on_classifier_thread(move || classify_path(&path, &Limits::default()))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn corpus_functions_have_their_expected_modes() {
    let rows = manifest();
    assert!(rows.len() >= 60, "{} functions", rows.len());
    let mut wrong = Vec::new();
    let mut pinned = Vec::new();
    for r in &rows {
        let c = classify(&r.name);
        if std::env::var_os("GAIA_CORPUS_VERBOSE").is_some() {
            println!("{} {}: {}", r.name, c.mode, c.rationale);
        }
        if c.mode != r.mode {
            wrong.push(format!(
                "{}: {} (want {}: {})\n    {}",
                r.name, c.mode, r.mode, r.reason, c.rationale
            ));
            if c.mode == ExecutionMode::Gpu {
                pinned.push(r.name.clone());
            }
        }
        assert!(
            !c.rationale.is_empty() && c.rationale.chars().count() <= 300,
            "{}: {:?}",
            r.name,
            c.rationale
        );
    }
    let right = rows.len() - wrong.len();
    println!(
        "corpus accuracy: {right}/{} = {:.1}% exact; functions with a CPU path classified gpu: {}",
        rows.len(),
        100.0 * right as f64 / rows.len() as f64,
        pinned.len()
    );
    assert!(
        pinned.is_empty(),
        "functions with a CPU path classified gpu: {pinned:?}\n{}",
        wrong.join("\n")
    );
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn every_corpus_directory_is_in_the_manifest() {
    let listed: Vec<String> = manifest().into_iter().map(|r| r.name).collect();
    for entry in std::fs::read_dir(corpus()).expect("corpus") {
        let entry = entry.expect("entry");
        if entry.file_type().expect("type").is_dir() {
            let name = entry.file_name().to_string_lossy().into_owned();
            assert!(listed.contains(&name), "{name} has no row in expected.tsv");
        }
    }
}
