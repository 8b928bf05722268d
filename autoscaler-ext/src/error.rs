//! The crate's one error type. Variant names double as metric and log labels.

use std::path::PathBuf;

/// Everything that can go wrong in the autoscaler.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is invalid; `field` names the offending setting.
    #[error("invalid configuration: {field}: {message}")]
    Config { field: String, message: String },

    #[error("cannot read config file {path}: {source}")]
    ConfigRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot parse config file {path}: {message}")]
    ConfigParse { path: PathBuf, message: String },

    /// Prometheus could not be asked or answered with an error. The cycle holds.
    #[error("prometheus query {query} failed: {message}")]
    Prometheus {
        query: &'static str,
        message: String,
    },

    /// A Prometheus answer that is not an instant vector.
    #[error("prometheus query {query} returned {kind}, expected an instant vector")]
    PrometheusShape {
        query: &'static str,
        kind: &'static str,
    },

    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),

    /// The Service cannot be placed (no containers, malformed template...).
    #[error("cannot place {namespace}/{name}: {source}")]
    Placement {
        namespace: String,
        name: String,
        #[source]
        source: gaia_contract::ContractError,
    },

    /// Someone else changed the Service between our read and our write, several times in a row.
    #[error("{namespace}/{name} kept changing under us; giving up this cycle")]
    Conflict { namespace: String, name: String },

    #[error("leader election: {0}")]
    Leader(String),

    #[error("serialising {what}: {source}")]
    Serde {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },

    #[error("HTTP server: {0}")]
    Server(#[source] std::io::Error),
}

impl From<gaia_policy::Error> for Error {
    fn from(e: gaia_policy::Error) -> Error {
        match e {
            gaia_policy::Error::Config { field, message } => Error::Config { field, message },
        }
    }
}

impl Error {
    /// A short, stable label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Error::Config { .. } | Error::ConfigRead { .. } | Error::ConfigParse { .. } => "config",
            Error::Prometheus { .. } => "prometheus",
            Error::PrometheusShape { .. } => "prometheus_shape",
            Error::Kube(_) => "kube",
            Error::Placement { .. } => "placement",
            Error::Conflict { .. } => "conflict",
            Error::Leader(_) => "leader",
            Error::Serde { .. } => "serde",
            Error::Server(_) => "server",
        }
    }

    pub(crate) fn config(field: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Config {
            field: field.into(),
            message: message.into(),
        }
    }
}
