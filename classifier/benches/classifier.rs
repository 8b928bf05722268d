//! Classifier benchmark (a bench target, not a timed test):
//!
//! 1. throughput in MB/s over the machine's CPython standard library (every `.py` file outside
//!    site-packages, each classified as a one-file function, one core), side by side with
//!    `ruff_python_parser` (the parse `classify` does) and CPython's `ast.parse`
//!    (`ast_parse_baseline.py`, run here when `python3` is on the PATH);
//! 2. p50/p99 of `classify` per example function (examples/functions/*).
//!
//! Run: `cargo bench -p gaia-classifier --bench classifier`

#[path = "../tests/support/stdlib.rs"]
mod stdlib;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use gaia_classifier::{classify, testing, Limits, SourceFile, REQUIRED_STACK_BYTES};
use stdlib::{python_files, stdlib_dir};

/// Best of three passes over all sources: MB/s.
fn throughput(total: usize, mut pass: impl FnMut()) -> f64 {
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        pass();
        best = best.min(started.elapsed());
    }
    total as f64 / best.as_secs_f64() / 1e6
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1));
    sorted.get(i).copied().unwrap_or_default()
}

fn bench() {
    let limits = Limits::default();
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    // GAIA_BENCH_EXAMPLES_ONLY=1 skips the standard library (for profiling the per-function path).
    let stdlib = if std::env::var_os("GAIA_BENCH_EXAMPLES_ONLY").is_some() {
        None
    } else {
        stdlib_dir()
    };
    if let Some(dir) = stdlib {
        let mut paths = Vec::new();
        python_files(&dir, &mut paths);
        let files: Vec<SourceFile> = paths
            .iter()
            .filter_map(|p| {
                let bytes = std::fs::read(p).ok()?;
                let name = p.file_name()?.to_string_lossy().into_owned();
                Some(SourceFile::new(name, bytes))
            })
            .collect();
        let total: usize = files.iter().map(|f| f.bytes.len()).sum();
        let texts: Vec<&str> = files
            .iter()
            .filter_map(|f| std::str::from_utf8(&f.bytes).ok())
            .collect();
        let text_total: usize = texts.iter().map(|t| t.len()).sum();
        println!(
            "CPython stdlib at {}: {} files, {:.1} MB",
            dir.display(),
            files.len(),
            total as f64 / 1e6
        );
        let mut parsed = 0;
        let classify_mbs = throughput(total, || {
            for f in &files {
                let _ = std::hint::black_box(classify(std::slice::from_ref(f), &limits));
            }
        });
        let fast_mbs = throughput(text_total, || {
            parsed = texts.iter().filter(|t| testing::parse_fast(t)).count();
        });
        println!("  classify (one file = one function):        {classify_mbs:7.1} MB/s");
        println!("  ruff_python_parser (parse):                {fast_mbs:7.1} MB/s ({parsed} of {} files parse)", texts.len());
        let script = manifest.join("benches/ast_parse_baseline.py");
        match Command::new("python3").arg(&script).arg(&dir).output() {
            Ok(out) if out.status.success() => {
                let line = String::from_utf8_lossy(&out.stdout).trim().to_owned();
                println!("  CPython {line}");
                let mbs: Option<f64> = line.split_whitespace().nth(1).and_then(|v| v.parse().ok());
                if let Some(py) = mbs {
                    println!(
                        "  ratio vs ast.parse: classify {:.1}x, full parse {:.1}x",
                        classify_mbs / py,
                        fast_mbs / py
                    );
                }
            }
            _ => println!("  (python3 not available: no ast.parse baseline)"),
        }
    } else {
        println!("no python3: stdlib throughput skipped");
    }

    let examples = manifest.join("../examples/functions");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&examples)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    println!("per example function (classify of all its files; 200 warm-up, 5000 timed runs):");
    for dir in dirs {
        let mut paths = Vec::new();
        python_files(&dir, &mut paths);
        let files: Vec<SourceFile> = paths
            .iter()
            .filter_map(|p| {
                let rel = p.strip_prefix(&dir).ok()?.to_string_lossy().into_owned();
                Some(SourceFile::new(rel, std::fs::read(p).ok()?))
            })
            .collect();
        let bytes: usize = files.iter().map(|f| f.bytes.len()).sum();
        for _ in 0..200 {
            let _ = std::hint::black_box(classify(&files, &limits));
        }
        let mut times: Vec<Duration> = (0..5000)
            .map(|_| {
                let started = Instant::now();
                let _ = std::hint::black_box(classify(&files, &limits));
                started.elapsed()
            })
            .collect();
        times.sort();
        let mode = classify(&files, &limits)
            .map(|c| c.mode.to_string())
            .unwrap_or_default();
        println!(
            "  {:<22} {:>6} B  p50 {:>7.1} us  p99 {:>7.1} us  ({mode})",
            dir.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            bytes,
            percentile(&times, 0.50).as_secs_f64() * 1e6,
            percentile(&times, 0.99).as_secs_f64() * 1e6,
        );
    }
}

fn main() {
    // As the webhook does: classify on a thread with the documented stack.
    let handle = std::thread::Builder::new()
        .stack_size(REQUIRED_STACK_BYTES)
        .spawn(bench)
        .expect("bench thread");
    if handle.join().is_err() {
        std::process::exit(1);
    }
}
