//! The findings schema: what the classifier reports, what the webhook records in
//! `gaia.dev/findings` and what `kn gaia explain` reads back.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Largest `gaia.dev/findings` annotation, in bytes of compact JSON.
pub const MAX_FINDINGS_BYTES: usize = 4096;

/// What a finding is about. Serialised in snake_case; see docs/classifier.md for each kind.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// A GPU-only library (cupy, numba.cuda, pycuda, RAPIDS, vLLM, TensorRT, ...) imported or used.
    /// `guarded` when the import has an `ImportError` fallback.
    GpuLibrary,
    /// Device placement on a GPU: `.cuda()`, `.to("cuda")`, `device="cuda"`, `device_map=`,
    /// `torch.device("cuda")`, `tf.device("/GPU:0")`, `.to(device)` with a device variable, ...
    DeviceUse,
    /// A `torch.cuda.*` call that needs a GPU (`synchronize`, `empty_cache`, `set_device`, ...).
    CudaCall,
    /// The code insists on a GPU: `assert torch.cuda.is_available()`, or raising/exiting when
    /// none is there.
    GpuRequired,
    /// A GPU availability check (`torch.cuda.is_available()`, `tf.config.list_physical_devices`).
    AvailabilityCheck,
    /// Import of a framework that can use a GPU (torch, tensorflow, jax, transformers, ...).
    FrameworkImport,
    /// Import of a CPU-only numeric or data library (numpy, pandas, scikit-learn, ...).
    CpuLibraryImport,
    /// A model built or loaded (`from_pretrained`, `pipeline`, torchvision/timm constructors, a
    /// transformers config, ...), with its size where the name or the config tells. `heavy` when
    /// it is over the thresholds of `rules.rs`.
    ModelLoad,
    /// Tensor compute: matmul / `@`, einsum, convolutions.
    TensorOp,
    /// A tensor whose shape comes from values known only at run time (request sizes).
    RuntimeSizedTensor,
    /// A tensor whose constant shape is over the size threshold of `rules.rs`.
    LargeTensor,
    /// Training: `.backward()`, optimizers, `fit`, `Trainer`.
    Training,
    /// A file was classified by the token-level scan instead of the parser (and why).
    ParseFallback,
    /// A file of the function's directory that the entry module never imports (not counted).
    IgnoredFile,
}

impl FindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::GpuLibrary => "gpu_library",
            FindingKind::DeviceUse => "device_use",
            FindingKind::CudaCall => "cuda_call",
            FindingKind::GpuRequired => "gpu_required",
            FindingKind::AvailabilityCheck => "availability_check",
            FindingKind::FrameworkImport => "framework_import",
            FindingKind::CpuLibraryImport => "cpu_library_import",
            FindingKind::ModelLoad => "model_load",
            FindingKind::TensorOp => "tensor_op",
            FindingKind::RuntimeSizedTensor => "runtime_sized_tensor",
            FindingKind::LargeTensor => "large_tensor",
            FindingKind::Training => "training",
            FindingKind::ParseFallback => "parse_fallback",
            FindingKind::IgnoredFile => "ignored_file",
        }
    }
}

impl std::fmt::Display for FindingKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing the classifier saw, where it saw it. `K` is the kind: [`FindingKind`] where the
/// classifier writes it, `String` where a reader must keep kinds it does not know (a newer
/// webhook's), see [`findings_from_annotation`].
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Finding<K = FindingKind> {
    pub kind: K,
    /// Path relative to the function root, e.g. `func.py`, `pkg/model.py`.
    pub file: String,
    /// 1-based line.
    pub line: u32,
    /// What exactly, e.g. `.to(device): device = "cuda" if torch.cuda.is_available() else "cpu"`.
    #[serde(default)]
    pub detail: String,
    /// For GPU use: whether a CPU path exists (an availability check, a device variable chosen by
    /// one, a `try`/`except`, `device_map="auto"`). For imports: inside `try`/`except ImportError`.
    #[serde(default)]
    pub guarded: bool,
    /// For model loads, tensors and training: over the thresholds of `rules.rs`.
    #[serde(default)]
    pub heavy: bool,
}

impl Finding {
    pub fn new(kind: FindingKind, file: &str, line: u32, detail: impl Into<String>) -> Finding {
        Finding {
            kind,
            file: file.to_owned(),
            line,
            detail: detail.into(),
            guarded: false,
            heavy: false,
        }
    }

    pub fn guarded(mut self, guarded: bool) -> Finding {
        self.guarded = guarded;
        self
    }

    pub fn heavy(mut self, heavy: bool) -> Finding {
        self.heavy = heavy;
        self
    }
}

impl<K> Finding<K> {
    /// `file:line`.
    pub fn location(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }
}

impl From<&Finding> for Finding<String> {
    fn from(f: &Finding) -> Finding<String> {
        Finding {
            kind: f.kind.to_string(),
            file: f.file.clone(),
            line: f.line,
            detail: f.detail.clone(),
            guarded: f.guarded,
            heavy: f.heavy,
        }
    }
}

/// Findings as compact JSON for `gaia.dev/findings`, as many as fit in [`MAX_FINDINGS_BYTES`].
pub fn findings_annotation(findings: &[Finding]) -> Option<String> {
    if findings.is_empty() {
        return None;
    }
    let mut kept = findings.len();
    loop {
        let text = serde_json::to_string(&findings[..kept]).ok()?;
        if text.len() <= MAX_FINDINGS_BYTES || kept <= 1 {
            return (text.len() <= MAX_FINDINGS_BYTES).then_some(text);
        }
        kept = kept * MAX_FINDINGS_BYTES / text.len().max(1);
        kept = kept.clamp(1, findings.len() - 1);
    }
}

/// Reads `gaia.dev/findings` tolerantly: kinds this build does not know are kept as text, extra
/// fields are ignored, entries without kind, file or line are skipped. `Err` only when the text
/// is not a JSON list.
pub fn findings_from_annotation(text: &str) -> Result<Vec<Finding<String>>, String> {
    let list: Vec<Value> = serde_json::from_str(text).map_err(|e| e.to_string())?;
    Ok(list
        .into_iter()
        .filter_map(|f| serde_json::from_value(f).ok())
        .collect())
}
