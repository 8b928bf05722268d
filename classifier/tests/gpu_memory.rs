//! The GPU memory estimate: the largest model of known size, in the dtype the code writes
//! (float32 when it writes none, said so), + 20 % for activations and KV cache, + 1 GiB of CUDA
//! context (gaia_contract::gpu_memory).

use std::path::Path;

#[path = "support/table.rs"]
#[allow(dead_code)]
mod table;

use gaia_classifier::{classify_path, Classification, Limits, SourceFile};
use gaia_contract::gpu_memory::{gpu_memory_estimate_mib, Dtype};

fn one(src: &str) -> Classification {
    table::run(vec![SourceFile::new("func.py", src)])
}

const TINY: &str = "TinyLlama/TinyLlama-1.1B-Chat-v1.0";

fn llm(kwargs: &str) -> String {
    format!(
        "import torch\nfrom transformers import AutoModelForCausalLM\n\
         model = AutoModelForCausalLM.from_pretrained(\"{TINY}\"{kwargs}).to(\"cuda\")\n\
         def handle(req):\n    return model.generate(req)\n"
    )
}

#[test]
fn each_dtype_the_code_writes_sets_the_bytes_per_parameter() {
    let cases = [
        (
            ", torch_dtype=torch.float16",
            Dtype::F16,
            "func.py:3 torch.float16",
        ),
        (
            ", torch_dtype=torch.bfloat16",
            Dtype::Bf16,
            "func.py:3 torch.bfloat16",
        ),
        (
            ", torch_dtype=\"float16\"",
            Dtype::F16,
            "func.py:3 torch_dtype=\"float16\"",
        ),
        (
            ", load_in_8bit=True",
            Dtype::Int8,
            "func.py:3 load_in_8bit=True",
        ),
        (
            ", load_in_4bit=True",
            Dtype::Int4,
            "func.py:3 load_in_4bit=True",
        ),
    ];
    for (kwargs, dtype, at) in cases {
        let c = one(&llm(kwargs));
        let g = c
            .gpu_memory
            .clone()
            .unwrap_or_else(|| panic!("{kwargs}: no estimate"));
        assert_eq!(g.dtype, dtype, "{kwargs}");
        assert_eq!(g.dtype_at.as_deref(), Some(at), "{kwargs}");
        assert!((g.params - 1.1e9).abs() < 0.05e9, "{kwargs}: {}", g.params);
        assert!((g.mib - gpu_memory_estimate_mib(g.params, dtype)).abs() < 1e-6);
        assert!(c.rationale.contains("of GPU memory"), "{}", c.rationale);
        assert!(c.rationale.contains(dtype.as_str()), "{}", c.rationale);
    }
    // .half() on the model, and a float32 cast of the output: the weights are float16
    let c = one(&format!(
        "import torch\nfrom transformers import AutoModelForCausalLM\n\
         model = AutoModelForCausalLM.from_pretrained(\"{TINY}\").half().to(\"cuda\")\n\
         def handle(req):\n    return model.generate(req).to(torch.float32)\n"
    ));
    let g = c.gpu_memory.expect("estimate");
    assert_eq!(g.dtype, Dtype::F16);
    assert_eq!(g.dtype_at.as_deref(), Some("func.py:3 .half()"));
    // float16 TinyLlama: ~2.5 GiB weights and headroom + 1 GiB context (2,920 MiB measured)
    assert!((3000.0..3700.0).contains(&g.mib), "{}", g.mib);
}

#[test]
fn no_dtype_written_is_float32_and_said_so() {
    let c = one(&llm(""));
    let g = c.gpu_memory.expect("estimate");
    assert_eq!(g.dtype, Dtype::F32);
    assert_eq!(g.dtype_at, None);
    assert!(
        c.rationale
            .contains("float32: no dtype written, PyTorch's default"),
        "{}",
        c.rationale
    );
    // twice float16's weights
    let f16 = gpu_memory_estimate_mib(g.params, Dtype::F16);
    assert!(g.mib > f16 * 1.5, "{} vs {f16}", g.mib);
}

#[test]
fn no_model_of_known_size_gives_no_estimate() {
    // a model whose name tells no size, and plain tensor work
    let c = one("import torch\nfrom transformers import AutoModel\n\
         model = AutoModel.from_pretrained(MODEL_PATH, torch_dtype=torch.float16).to('cuda')\n");
    assert_eq!(c.gpu_memory, None, "{c:?}");
    assert!(!c.rationale.contains("GPU memory"), "{}", c.rationale);
    let c = one("import torch\nx = torch.randn(8192, 8192)\ny = x @ x\n");
    assert_eq!(c.gpu_memory, None);
    let c = one("def handle(req):\n    return 'hi'\n");
    assert_eq!(c.gpu_memory, None);
}

#[test]
fn the_papers_functions() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/functions");
    let classify = |name: &str| {
        let p = examples.join(name);
        table::on_classifier_thread(move || classify_path(&p, &Limits::default()))
            .unwrap_or_else(|e| panic!("{e}"))
    };
    // TinyLlama: float16 on a GPU (`torch.float16 if device == "cuda" else torch.float32`)
    let c = classify("text_generation");
    let g = c.gpu_memory.expect("TinyLlama");
    assert_eq!(g.dtype, Dtype::F16, "{g:?}");
    // a long rationale keeps its own reason whole and ends with the estimate in short
    assert!(
        c.rationale.ends_with("; ~3.5 GiB GPU, float16"),
        "{}",
        c.rationale
    );
    assert!(c.rationale.contains("[entry: func.py]"), "{}", c.rationale);
    assert!((3000.0..3700.0).contains(&g.mib), "{g:?}");
    // ResNet-18: no dtype written, float32 (794 MiB a process measured on the H200)
    let g = classify("image_classification")
        .gpu_memory
        .expect("ResNet-18");
    assert_eq!(g.dtype, Dtype::F32, "{g:?}");
    assert!((1000.0..1200.0).contains(&g.mib), "{g:?}");
    // Llama-2-7B in bfloat16: ~16 GiB
    let g = classify("llm_7b").gpu_memory.expect("7B");
    assert_eq!(g.dtype, Dtype::Bf16, "{g:?}");
    assert!((15_000.0..18_000.0).contains(&g.mib), "{g:?}");
    assert_eq!(classify("idle_wait").gpu_memory, None);
}
