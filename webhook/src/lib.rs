//! `gaia-webhook`, Gaia's Execution Mode Identifier as an admission server: the mutating admission
//! webhook that reads a Knative Service's function source, classifies it (`gaia-classifier`) and
//! writes the mode and the placement into the Service.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod admission;
pub mod certs;
pub mod config;
pub mod error;
pub mod follow_up;
pub mod image;
pub mod knative_features;
pub mod metrics;
pub mod namespaces;
pub mod pool;
pub mod run;
pub mod server;
pub mod sources;

pub use error::Error;
