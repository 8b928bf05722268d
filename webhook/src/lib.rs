//! Gaia's Execution Mode Identifier: the classifier of Python function code and, around it, the
//! mutating admission webhook that writes the mode and the placement into Knative Services.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod admission;
pub mod app;
pub mod certs;
pub mod classifier;
pub mod cli;
pub mod config;
pub mod error;
pub mod metrics;
pub mod namespaces;
pub mod pool;
pub mod server;
pub mod sources;

pub use error::Error;
