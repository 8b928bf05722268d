//! `gaia-autoscaler`: Gaia's Dynamic Function Runtime.
//!
//! Every `interval` the leader takes one decision cycle over all Knative Services whose
//! `gaia.dev/mode` is `cpu_preferred` or `gpu_preferred`:
//!
//! 1. [`cluster`]: what the API says (Services, GPU nodes, pods), kept by watches;
//! 2. [`observe`]: what Prometheus says, in a constant number of batched queries per cycle;
//! 3. [`gaia_policy::decide`]: the pure decision for each Service (its own crate, `policy/`);
//! 4. [`act`]: the move (a JSON patch through [`gaia_contract::apply_placement`]), the memory
//!    (`gaia.dev/observed`) and a Kubernetes Event with the numbers.
//!
//! [`cycle`] ties one cycle together; [`run`] wires the process (leader election, HTTP
//! endpoints, shutdown).
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod act;
pub mod cluster;
pub mod config;
pub mod cycle;
mod error;
pub mod leader;
pub mod observe;
pub mod preflight;
pub mod run;
pub mod server;
pub mod telemetry;

pub use error::Error;
