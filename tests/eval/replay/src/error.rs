//! The crate's one error type.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{path} is not JSON: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    /// The profile file parsed but lacks something the replay needs; `at` is a JSON path.
    #[error("profile: {at}: {message}")]
    Profile { at: String, message: String },

    /// A classifier output line or a command-line value that cannot be used.
    #[error("{what}: {message}")]
    Input { what: String, message: String },
}

impl Error {
    pub(crate) fn profile(at: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Profile {
            at: at.into(),
            message: message.into(),
        }
    }
}
