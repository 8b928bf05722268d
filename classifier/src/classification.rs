//! The classifier's answer for one function.

use gaia_contract::gpu_memory::{describe_mib, gpu_memory_estimate_mib, Dtype};
use gaia_contract::{ExecutionMode, Finding};
use serde::{Deserialize, Serialize};

/// The classifier's answer for one function.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Classification {
    pub mode: ExecutionMode,
    /// One line of at most [`gaia_contract::verdict::MAX_CLASSIFIER_RATIONALE_CHARS`] characters.
    pub rationale: String,
    pub findings: Vec<Finding>,
    /// The token-level scan was used for at least one file.
    pub fallback: bool,
    /// The GPU memory the model needs, when the code loads one of known size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_memory: Option<GpuMemory>,
}

/// The GPU memory estimate of the largest model of known size the code loads:
/// [`gpu_memory_estimate_mib`] (parameters × bytes per parameter of the dtype, + 20 % for
/// activations and KV cache, + 1 GiB of CUDA context).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GpuMemory {
    pub params: f64,
    pub dtype: Dtype,
    /// Where the dtype is written (`func.py:12 torch.float16`); none: nothing in the code says,
    /// float32 (PyTorch's default) is assumed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dtype_at: Option<String>,
    pub mib: f64,
}

impl GpuMemory {
    /// The estimate for `params` in `dtype` (found at `dtype_at`, or assumed float32).
    pub fn new(params: f64, found: Option<(Dtype, String)>) -> GpuMemory {
        let (dtype, dtype_at) = match found {
            Some((d, at)) => (d, Some(at)),
            None => (Dtype::F32, None),
        };
        GpuMemory {
            params,
            dtype,
            dtype_at,
            mib: gpu_memory_estimate_mib(params, dtype),
        }
    }

    /// "~2.6 GiB of GPU memory (1.1B parameters in float16, func.py:9 torch.float16)",
    /// "~1078 MiB ... (11.7M parameters in float32: no dtype written, PyTorch's default)".
    pub fn describe(&self) -> String {
        let params = if self.params >= 1e9 {
            format!("{:.1}B", self.params / 1e9)
        } else {
            format!("{:.1}M", self.params / 1e6)
        };
        let dtype = match &self.dtype_at {
            Some(at) => format!("{}, {at}", self.dtype),
            None => format!("{}: no dtype written, PyTorch's default", self.dtype),
        };
        format!(
            "{} of GPU memory ({params} parameters in {dtype})",
            describe_mib(self.mib)
        )
    }

    /// "~2.6 GiB of GPU memory (float16)": for a rationale without room for [`Self::describe`].
    pub fn describe_short(&self) -> String {
        format!("{} of GPU memory ({})", describe_mib(self.mib), self.dtype)
    }

    /// "~2.6 GiB GPU, float16": for a rationale without room for [`Self::describe_short`].
    pub fn describe_tiny(&self) -> String {
        format!("{} GPU, {}", describe_mib(self.mib), self.dtype)
    }
}
