//! The one error type of the classifier crate.

/// What the classifier refuses: input over its [`crate::Limits`], or a path it cannot read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Input over `Limits::max_file_bytes` / `max_total_bytes`.
    #[error("{what} is {size} bytes, over the classifier's limit of {limit} bytes")]
    InputTooLarge {
        what: String,
        size: usize,
        limit: usize,
    },
    /// More files than `Limits::max_files`.
    #[error("{count} Python files, over the classifier's limit of {limit}")]
    TooManyFiles { count: usize, limit: usize },
}
