//! `gaia-image-source`: reads a function's Python code out of its OCI image.
//!
//! Pure parts, no I/O: [`entry`] (what the image config says: working directory, entry file or
//! module), [`paths`] (which files belong to a function), [`overlay`] (whiteouts), [`walk`] (one
//! layer's tar as a stream), [`decode`] (gzip, zstd), [`imports`] (following the entry's
//! imports), [`credentials`] (pull secrets matched like the kubelet does).
//!
//! Registry I/O, through `oci-client`: [`registry`] (resolution, manifests, blob streams),
//! [`read`] (one image end to end, bounded by [`ReadLimits`]), and [`cache`] (by digest).
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod cache;
pub mod credentials;
pub mod decode;
pub mod entry;
pub mod error;
pub mod imports;
pub mod limits;
pub mod overlay;
pub mod paths;
pub mod read;
pub mod registry;
pub mod walk;

pub use cache::ImageCache;
pub use credentials::PullSecret;
pub use error::Error;
pub use limits::ReadLimits;
pub use read::{Command, ImageFunction, ImageReader, ReadStats};
pub use registry::{Registries, RegistryOptions, Resolved};
