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
    /// Classifier input over `Limits::max_file_bytes` / `max_total_bytes`.
    #[error("{what} is {size} bytes, over the classifier's limit of {limit} bytes")]
    InputTooLarge {
        what: String,
        size: usize,
        limit: usize,
    },
    /// Classifier input with more files than `Limits::max_files`.
    #[error("{count} Python files, over the classifier's limit of {limit}")]
    TooManyFiles { count: usize, limit: usize },
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
    /// `kn gaia`: no usable kubeconfig.
    #[error("kubeconfig: {0}")]
    Kubeconfig(String),
    /// `kn gaia`: the cluster has no `services.serving.knative.dev`.
    #[error("Knative Serving is not installed in this cluster (no services.serving.knative.dev)")]
    KnativeMissing,
    /// `kn gaia`: no such Knative Service.
    #[error("Knative Service {namespace}/{name} not found")]
    ServiceNotFound { namespace: String, name: String },
    /// `kn gaia status`: Prometheus could not be asked or answered nonsense.
    #[error("Prometheus: {0}")]
    Prometheus(String),
}
