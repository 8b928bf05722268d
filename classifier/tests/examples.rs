//! The project's example functions (examples/functions/), each with its expected mode. The first
//! four are the paper's workloads.

use std::path::Path;

#[path = "support/table.rs"]
#[allow(dead_code)]
mod table;

use gaia_classifier::{classify_path, Classification, FindingKind, Limits};
use gaia_contract::ExecutionMode::{self, Cpu, CpuPreferred, Gpu, GpuPreferred};

const EXPECTED: &[(&str, ExecutionMode)] = &[
    // the paper's four workloads
    ("matmul", CpuPreferred),
    ("image_classification", CpuPreferred),
    ("text_generation", GpuPreferred),
    ("idle_wait", Cpu),
    // other patterns
    ("training_loop", GpuPreferred),
    ("cuda_unguarded", Gpu),
    ("cupy_fft", Gpu),
    ("numba_cuda", Gpu),
    ("tf_gpu", Gpu),
    ("diffusion_sd", GpuPreferred),
    ("llm_7b", GpuPreferred),
    ("resnet50_batch", GpuPreferred),
    ("sentiment", CpuPreferred),
    ("etl_pandas", Cpu),
    ("http_fanout", Cpu),
    ("py312_fstrings", CpuPreferred),
];

fn examples() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/functions")
}

fn classify_example(name: &str) -> Classification {
    let path = examples().join(name);
    table::on_classifier_thread(move || classify_path(&path, &Limits::default()))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn every_example_has_its_expected_mode() {
    let mut wrong = Vec::new();
    for (name, mode) in EXPECTED {
        let c = classify_example(name);
        if c.mode != *mode {
            wrong.push(format!("{name}: {} (want {mode}): {}", c.mode, c.rationale));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn py312_fstrings_is_parsed_and_its_device_guarded() {
    // PEP 701 f-strings (the same quotes inside the braces) parse: no token-level fallback.
    let c = classify_example("py312_fstrings");
    assert!(!c.fallback, "{}", c.rationale);
    assert!(
        c.findings
            .iter()
            .any(|f| f.kind == FindingKind::DeviceUse && f.guarded),
        "{:?}",
        c.findings
    );
    assert!(
        !c.findings
            .iter()
            .any(|f| f.kind == FindingKind::ParseFallback),
        "{:?}",
        c.findings
    );
}

#[test]
fn every_example_directory_is_in_the_table() {
    let mut dirs: Vec<String> = std::fs::read_dir(examples())
        .expect("examples/functions")
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    for d in &dirs {
        assert!(
            EXPECTED.iter().any(|(n, _)| n == d),
            "{d} has no expected mode"
        );
    }
}

#[test]
fn matmul_rationale_says_guarded_and_request_sized() {
    let c = classify_example("matmul");
    assert!(c.rationale.contains("guarded"), "{}", c.rationale);
    assert!(c.rationale.contains("request sizes"), "{}", c.rationale);
    assert!(c.rationale.contains("runtime decides"), "{}", c.rationale);
    let sync = c
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::CudaCall)
        .expect("synchronize");
    assert!(sync.guarded);
    assert!(!c.fallback);
}

#[test]
fn text_generation_follows_the_relative_import_to_the_model() {
    let c = classify_example("text_generation");
    let load = c
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::ModelLoad && f.detail.contains("1.1B"))
        .expect("model load");
    assert_eq!(load.file, "model.py");
    assert!(load.heavy);
    assert!(c
        .findings
        .iter()
        .any(|f| f.kind == FindingKind::ModelLoad && f.detail.starts_with("LlamaConfig")));
    assert!(c.rationale.contains("1.1B"), "{}", c.rationale);
}

#[test]
fn idle_wait_and_the_fanout_say_why_they_are_cpu() {
    for name in ["idle_wait", "http_fanout"] {
        let c = classify_example(name);
        assert!(
            c.rationale.contains("nothing that can use a GPU"),
            "{}",
            c.rationale
        );
        assert!(c.findings.is_empty(), "{name}: {:?}", c.findings);
    }
}
