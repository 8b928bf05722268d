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
}
