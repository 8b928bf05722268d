//! What the Kubernetes API says, kept current by watches.
//!
//! Services, pods and GPU nodes are each watched once (list + watch, with kube-runtime's
//! watcher and back-off) into an [`index::Index`] that keeps only what the autoscaler reads.
//! Why watches and not a list per cycle: a cycle then costs the API server nothing, its inputs
//! are in memory (10,000 Services decide in milliseconds), and a standby replica is warm when it
//! takes over. The price is memory, kept small by projecting pods and nodes to a few fields.

pub mod gpu;
pub mod index;
pub mod nodes;
pub mod pods;
pub mod quantity;
pub mod rungs;
pub mod service;
