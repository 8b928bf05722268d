//! The one error type of the policy crate.

/// A policy setting that cannot work; `field` names it as it is written in the ConfigMap.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("invalid configuration: {field}: {message}")]
    Config { field: String, message: String },
}

impl Error {
    pub(crate) fn config(field: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Config {
            field: field.into(),
            message: message.into(),
        }
    }
}
