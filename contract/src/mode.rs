//! Execution modes and placements.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ContractError;

/// How a function should run, as decided at deploy time.
///
/// - `Cpu`: nothing in the code can use a GPU. Pinned to CPU nodes.
/// - `CpuPreferred`: a GPU-capable framework, light or unknown intensity. Starts on CPU; the
///   autoscaler may promote it.
/// - `GpuPreferred`: heavy tensor work with a CPU fallback. Starts on GPU; the autoscaler may
///   demote it.
/// - `Gpu`: the code needs a GPU (unguarded device use). Pinned to GPU nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionMode {
    Cpu,
    CpuPreferred,
    GpuPreferred,
    Gpu,
}

impl ExecutionMode {
    pub const ALL: [ExecutionMode; 4] = [
        ExecutionMode::Cpu,
        ExecutionMode::CpuPreferred,
        ExecutionMode::GpuPreferred,
        ExecutionMode::Gpu,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionMode::Cpu => "cpu",
            ExecutionMode::CpuPreferred => "cpu_preferred",
            ExecutionMode::GpuPreferred => "gpu_preferred",
            ExecutionMode::Gpu => "gpu",
        }
    }

    /// Where a Service of this mode starts.
    pub fn initial_placement(self) -> Placement {
        match self {
            ExecutionMode::Cpu | ExecutionMode::CpuPreferred => Placement::Cpu,
            ExecutionMode::GpuPreferred | ExecutionMode::Gpu => Placement::Gpu,
        }
    }

    /// `cpu` and `gpu` pin the placement: nobody moves them.
    pub fn is_pinned(self) -> bool {
        matches!(self, ExecutionMode::Cpu | ExecutionMode::Gpu)
    }
}

impl fmt::Display for ExecutionMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ExecutionMode {
    type Err = ContractError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "cpu" => Ok(ExecutionMode::Cpu),
            "cpu_preferred" => Ok(ExecutionMode::CpuPreferred),
            "gpu_preferred" => Ok(ExecutionMode::GpuPreferred),
            "gpu" => Ok(ExecutionMode::Gpu),
            other => Err(ContractError::UnknownMode(other.to_string())),
        }
    }
}

/// What a user wrote in `gaia.dev/execution-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestedMode {
    /// Let the classifier decide.
    Auto,
    /// The user decided; the classifier still runs and is recorded in the rationale.
    Explicit(ExecutionMode),
}

impl FromStr for RequestedMode {
    type Err = ContractError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "auto" => Ok(RequestedMode::Auto),
            other => other.parse().map(RequestedMode::Explicit),
        }
    }
}

/// Where the effective mode came from (`gaia.dev/mode-source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModeSource {
    User,
    Classifier,
    Default,
}

impl ModeSource {
    pub fn as_str(self) -> &'static str {
        match self {
            ModeSource::User => "user",
            ModeSource::Classifier => "classifier",
            ModeSource::Default => "default",
        }
    }
}

impl fmt::Display for ModeSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ModeSource {
    type Err = ContractError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "user" => Ok(ModeSource::User),
            "classifier" => Ok(ModeSource::Classifier),
            "default" => Ok(ModeSource::Default),
            other => Err(ContractError::UnknownMode(other.to_string())),
        }
    }
}

/// Which node pool a revision runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    Cpu,
    Gpu,
}

impl Placement {
    pub fn as_str(self) -> &'static str {
        match self {
            Placement::Cpu => "cpu",
            Placement::Gpu => "gpu",
        }
    }

    pub fn other(self) -> Placement {
        match self {
            Placement::Cpu => Placement::Gpu,
            Placement::Gpu => Placement::Cpu,
        }
    }
}

impl fmt::Display for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Placement {
    type Err = ContractError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "cpu" => Ok(Placement::Cpu),
            "gpu" => Ok(Placement::Gpu),
            other => Err(ContractError::UnknownPlacement(other.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_round_trip_through_their_annotation_text() {
        for mode in ExecutionMode::ALL {
            assert_eq!(mode.as_str().parse::<ExecutionMode>(), Ok(mode));
            assert_eq!(
                serde_json::to_string(&mode).unwrap(),
                format!("\"{}\"", mode.as_str())
            );
        }
    }

    #[test]
    fn requested_mode_accepts_auto_and_concrete_modes_only() {
        assert_eq!("auto".parse(), Ok(RequestedMode::Auto));
        assert_eq!(
            " gpu ".parse(),
            Ok(RequestedMode::Explicit(ExecutionMode::Gpu))
        );
        assert_eq!(
            "GPU".parse::<RequestedMode>(),
            Err(ContractError::UnknownMode("GPU".into()))
        );
        assert!("".parse::<RequestedMode>().is_err());
    }

    #[test]
    fn preferred_modes_start_on_their_side_and_are_not_pinned() {
        assert_eq!(
            ExecutionMode::CpuPreferred.initial_placement(),
            Placement::Cpu
        );
        assert_eq!(
            ExecutionMode::GpuPreferred.initial_placement(),
            Placement::Gpu
        );
        assert!(!ExecutionMode::CpuPreferred.is_pinned());
        assert!(ExecutionMode::Cpu.is_pinned() && ExecutionMode::Gpu.is_pinned());
    }
}
