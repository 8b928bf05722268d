//! The one error type of the image source crate.

use std::time::Duration;

/// Everything that stops an image from being read. Each names what was being read, so a
/// warning on the Service says what went wrong without a log.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The image reference does not parse (`registry/repo:tag`, `repo@sha256:...`).
    #[error("image reference {reference:?}: {message}")]
    Reference { reference: String, message: String },
    /// The registry answered with an error, refused the credentials, or could not be reached.
    #[error("registry {registry}: {message}")]
    Registry { registry: String, message: String },
    /// The image (or the tag) is not in the registry.
    #[error("image {reference} not found in its registry")]
    NotFound { reference: String },
    /// The manifest or config is not an image Gaia can read.
    #[error("image {reference}: {message}")]
    Image { reference: String, message: String },
    /// A layer could not be decoded: corrupt compression, a truncated or malformed tar.
    #[error("layer {digest}: {message}")]
    Layer { digest: String, message: String },
    /// A tar entry whose path leaves the image's root (`../..`).
    #[error("layer {digest}: entry {path:?} leaves the image root")]
    PathEscapes { digest: String, path: String },
    /// A function file that is a link to somewhere outside the function's directories.
    #[error("layer {digest}: {path} links to {target:?}, outside the function's directories")]
    LinkOutOfRoot {
        digest: String,
        path: String,
        target: String,
    },
    /// A read budget ran out (bytes downloaded or decompressed, entries, files).
    #[error("{what}: more than {limit} (the {setting} limit); a decompression bomb or an image too large to read")]
    Budget {
        what: &'static str,
        limit: u64,
        setting: &'static str,
    },
    /// The whole read took longer than allowed.
    #[error("reading the image took longer than {0:?}")]
    Timeout(Duration),
    /// Credentials in a pull secret that cannot be read.
    #[error("pull secret {secret}: {message}")]
    Credentials { secret: String, message: String },
    /// The registry client could not be configured (a bad CA certificate, say).
    #[error("registry client: {0}")]
    Client(String),
    /// A worker thread died or a channel closed unexpectedly.
    #[error("internal: {0}")]
    Internal(String),
}
