//! The contract between Gaia's two halves.
//!
//! The admission webhook (Execution Mode Identifier) and the autoscaler extension (Dynamic
//! Function Runtime) never call each other: they talk through a Knative Service's annotations and
//! its revision template. Everything both sides must agree on lives here:
//!
//! - [`keys`]: the annotation and label keys,
//! - [`mode`]: [`ExecutionMode`], [`Placement`] and where a mode came from,
//! - [`placement`]: placement profiles and [`apply_placement`], the one function that rewrites a
//!   Service template for a placement (both components call it, so they change a template exactly
//!   the same way),
//! - [`slo`]: parsing of `gaia.dev/latency-slo` values,
//! - [`observed`]: what the autoscaler remembers on a Service (`gaia.dev/observed`).
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod keys;
pub mod mode;
pub mod observed;
pub mod placement;
pub mod slo;

pub use mode::{ExecutionMode, ModeSource, Placement, RequestedMode};
pub use observed::{Observed, PlacementMove, RememberedLatency};
pub use placement::{apply_placement, placement_of, PlacementProfile, PlacementProfiles};
pub use slo::parse_latency;

/// Everything that can go wrong when reading or writing the contract.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ContractError {
    #[error(
        "unknown execution mode {0:?}: expected auto, cpu, cpu_preferred, gpu_preferred or gpu"
    )]
    UnknownMode(String),
    #[error("unknown placement {0:?}: expected cpu or gpu")]
    UnknownPlacement(String),
    #[error("invalid latency {0:?}: expected a positive number with a unit, e.g. 500ms, 1.5s, 2m")]
    InvalidLatency(String),
    #[error("the Service has no spec.template.spec.containers: nothing to place")]
    NoContainers,
    #[error("{path} is not a JSON object")]
    NotAnObject { path: String },
    #[error("invalid placement profile: {0}")]
    InvalidProfile(String),
}
