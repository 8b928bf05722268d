//! The GPU memory a model needs: what the classifier estimates from the code (parameters and
//! the element type the weights are loaded in), what the webhook chooses a first rung of the
//! placement ladder by, and what the autoscaler's ladder checks a rung against. One formula,
//! here, so the three agree.

use serde::{Deserialize, Serialize};

/// The element type the weights are loaded in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    #[serde(rename = "float32")]
    F32,
    #[serde(rename = "float16")]
    F16,
    #[serde(rename = "bfloat16")]
    Bf16,
    Int8,
    Int4,
}

impl Dtype {
    pub fn bytes(self) -> f64 {
        match self {
            Dtype::F32 => 4.0,
            Dtype::F16 | Dtype::Bf16 => 2.0,
            Dtype::Int8 => 1.0,
            Dtype::Int4 => 0.5,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Dtype::F32 => "float32",
            Dtype::F16 => "float16",
            Dtype::Bf16 => "bfloat16",
            Dtype::Int8 => "int8",
            Dtype::Int4 => "int4",
        }
    }
}

impl std::fmt::Display for Dtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Activations, KV cache and allocator slack, as a fraction of the weights.
pub const ACTIVATION_HEADROOM: f64 = 0.2;
/// A CUDA context with torch's kernels loaded, MiB. Measured on the H200 (docs/calibration.md,
/// "Sharing one GPU"): ~790 MiB a process with ResNet-18 (45 MiB of weights), ~2,920 MiB with
/// TinyLlama (2,098 MiB), so the context is ~0.7-0.8 GiB; 1 GiB keeps a margin.
pub const CONTEXT_MIB: f64 = 1024.0;

/// GPU memory a model of `params` parameters in `dtype` needs, MiB: weights × (1 + headroom)
/// plus one CUDA context. TinyLlama-1.1B in float16: 3,542 MiB (2,920 measured); ResNet-18 in
/// float32 (11.7 M): 1,078 MiB (790 measured).
pub fn gpu_memory_estimate_mib(params: f64, dtype: Dtype) -> f64 {
    params * dtype.bytes() / (1024.0 * 1024.0) * (1.0 + ACTIVATION_HEADROOM) + CONTEXT_MIB
}

/// "~3.5 GiB" / "~1,078 MiB": a memory figure for a rationale.
pub fn describe_mib(mib: f64) -> String {
    if mib >= 1024.0 {
        format!("~{:.1} GiB", mib / 1024.0)
    } else {
        format!("~{mib:.0} MiB")
    }
}
