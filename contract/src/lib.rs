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
//! - [`service`]: [`ServiceView`], the one read side of a Knative Service: what the webhook,
//!   the autoscaler and `kn gaia` read from it,
//! - [`verdict`] and [`findings`]: what the webhook records (mode, rationale, findings) and the
//!   rule for their size,
//! - [`gpu_memory`]: the GPU memory a model needs (classifier, webhook and ladder agree),
//! - [`duration`]: the one duration syntax (`gaia.dev/latency-slo`, both ConfigMaps),
//! - [`observed`]: what the autoscaler remembers on a Service (`gaia.dev/observed`),
//! - [`queries`]: the PromQL templates and their configuration, shared by the autoscaler and
//!   `kn gaia status` so both show the same numbers.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod duration;
pub mod findings;
pub mod gpu_memory;
pub mod keys;
#[cfg(feature = "logging")]
pub mod logging;
pub mod mode;
pub mod observed;
pub mod placement;
pub mod queries;
pub mod service;
pub mod verdict;

pub use duration::{format_duration, parse_duration, parse_latency, DEFAULT_LATENCY_SLO};
pub use findings::{Finding, FindingKind};
pub use mode::{ExecutionMode, ModeSource, Placement, RequestedMode};
pub use observed::{MoveKind, Observed, PlacementMove, RememberedLatency};
pub use placement::{apply_placement, apply_profile, PlacementProfile, PlacementProfiles};
pub use service::ServiceView;
pub use verdict::Verdict;

/// Everything that can go wrong when reading or writing the contract.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ContractError {
    #[error(
        "unknown execution mode {0:?}: expected auto, cpu, cpu_preferred, gpu_preferred or gpu"
    )]
    UnknownMode(String),
    #[error("unknown placement {0:?}: expected cpu or gpu")]
    UnknownPlacement(String),
    #[error("invalid latency {0:?}: expected a positive number with a unit, at most 10m, e.g. 500ms, 1.5s, 2m")]
    InvalidLatency(String),
    /// A PromQL template or label setting that cannot work; `field` names the setting.
    #[error("invalid configuration: {field}: {message}")]
    InvalidQuery { field: String, message: String },
    #[error("invalid duration {text:?}: {why}")]
    InvalidDuration { text: String, why: String },
    #[error("the Service has no spec.template.spec.containers: nothing to place")]
    NoContainers,
    #[error("{path} is not a JSON object")]
    NotAnObject { path: String },
    #[error("invalid placement profile: {0}")]
    InvalidProfile(String),
}

impl ContractError {
    pub(crate) fn query(field: impl Into<String>, message: impl Into<String>) -> ContractError {
        ContractError::InvalidQuery {
            field: field.into(),
            message: message.into(),
        }
    }
}
