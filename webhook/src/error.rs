//! The one error type of the webhook crate.

/// Everything that can go wrong in the webhook crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Contract(#[from] gaia_contract::ContractError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The classifier refused the input (over its limits).
    #[error(transparent)]
    Classifier(#[from] gaia_classifier::Error),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("the classifier is busy: {0}")]
    Busy(&'static str),
    #[error("classification did not finish within {0:?}")]
    Timeout(std::time::Duration),
    #[error("classification failed: {0}")]
    ClassifierFailed(String),
}
