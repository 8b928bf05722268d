//! What the classifier reports: findings, and the classification built from them.

use gaia_contract::ExecutionMode;
use serde::{Deserialize, Serialize};

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

/// One thing the classifier saw, where it saw it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Finding {
    pub kind: FindingKind,
    /// Path relative to the function root (as given in [`super::SourceFile::path`]).
    pub file: String,
    /// 1-based line.
    pub line: u32,
    /// What exactly, e.g. `.to(device): device = "cuda" if torch.cuda.is_available() else "cpu"`.
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

    /// `file:line`.
    pub fn location(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }
}

/// The classifier's answer for one function.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Classification {
    pub mode: ExecutionMode,
    /// One line, under 300 characters, fit for an annotation.
    pub rationale: String,
    pub findings: Vec<Finding>,
    /// The token-level scan was used for at least one file.
    pub fallback: bool,
}
