//! The classifier's answer for one function.

use gaia_contract::{ExecutionMode, Finding};
use serde::{Deserialize, Serialize};

/// The classifier's answer for one function.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Classification {
    pub mode: ExecutionMode,
    /// One line of at most [`gaia_contract::verdict::MAX_CLASSIFIER_RATIONALE_CHARS`] characters.
    pub rationale: String,
    pub findings: Vec<Finding>,
    /// The token-level scan was used for at least one file.
    pub fallback: bool,
}
