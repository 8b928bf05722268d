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
    /// The function's image could not be read.
    #[error(transparent)]
    Image(#[from] gaia_image_source::Error),
    /// An image read failed in the background (the message of its error).
    #[error("{0}")]
    ImageRead(String),
    /// The image is still being read after the review's budget. `registry` is set when the
    /// registry had not even answered the tag resolution by then.
    #[error("image {reference} not read within {waited:?}")]
    ImagePending {
        reference: String,
        waited: std::time::Duration,
        registry: Option<String>,
    },
}
