//! The one error type of `kn-gaia`.

/// Everything that stops a `kn gaia` subcommand.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No usable kubeconfig.
    #[error("kubeconfig: {0}")]
    Kubeconfig(String),
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// The cluster has no `services.serving.knative.dev`.
    #[error("Knative Serving is not installed in this cluster (no services.serving.knative.dev)")]
    KnativeMissing,
    #[error("Knative Service {namespace}/{name} not found")]
    ServiceNotFound { namespace: String, name: String },
    /// Prometheus could not be asked or answered nonsense.
    #[error("Prometheus: {0}")]
    Prometheus(String),
    /// The autoscaler's ConfigMap is there but cannot be read.
    #[error("the autoscaler's configuration {0}")]
    AutoscalerConfig(String),
    /// Anything else that is not the user's input (a runtime, a serialisation).
    #[error("{0}")]
    Internal(String),
}
