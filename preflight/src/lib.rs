//! The preflight: is this cluster ready for Gaia? Run by `kn gaia doctor` and by the
//! autoscaler at start and periodically. The parts, apart:
//!
//! - [`gather`]: the I/O. Reads the facts once: Knative's namespace, `config-features` and
//!   `config-observability`; Prometheus' answer to the autoscaler's own request-rate query; the
//!   nodes the GPU placement profile selects; Gaia's MutatingWebhookConfiguration (and, where the
//!   caller may read it, the webhook's Secret).
//! - [`checks`]: pure. Facts and what Gaia is configured to do in, a [`Report`] out: each
//!   check passes, warns or fails, with the exact fix (the command to run), and says what it
//!   would break ([`Blocks`]).
//! - [`gate`]: pure, for the autoscaler: whether a move may go ahead while checks fail, which
//!   checks changed state since the last run, the Knative release found.
#![forbid(unsafe_code)]

pub mod checks;
pub mod error;
pub mod facts;
pub mod gate;
pub mod gather;

pub use checks::{evaluate, Blocks, Check, CheckId, Report, Status};
pub use error::Error;
pub use facts::{Expectations, Facts};
