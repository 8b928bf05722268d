//! The one error type of gaia-preflight: what stops the gathering itself (a check that fails is
//! a result, not an error).

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("HTTP client: {0}")]
    Http(String),
}
