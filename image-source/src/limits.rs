//! How much of an image may be read: bytes, entries, files, time.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Bounds on one image read. Every field has a default; the webhook reads them from its
/// configuration file (`image:` section, camelCase names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ReadLimits {
    /// Layer bytes downloaded (compressed, as they come from the registry), all layers together.
    pub max_download_bytes: u64,
    /// Tar bytes after decompression, all layers together: stops decompression bombs.
    pub max_unpacked_bytes: u64,
    /// Tar entries looked at, all layers together.
    pub max_entries: u64,
    /// Layers read; an image with more is read from the top down to this many.
    pub max_layers: usize,
    /// Python files kept as candidates (before import following).
    pub max_files: usize,
    /// Largest single Python file kept; larger ones are passed over.
    pub max_file_bytes: u64,
    /// Bytes of candidate files kept, all together.
    pub max_kept_bytes: u64,
    /// A layer whose first `peekEntries` entries (or first `peekBytes` unpacked bytes) hold
    /// nothing under the function's directories is a dependency layer: left unread.
    pub peek_entries: u64,
    pub peek_bytes: u64,
    /// Time for the whole read, registry round trips included (a background read; a review
    /// waits at most its own deadline).
    #[serde(with = "gaia_contract::duration::serde_duration")]
    pub timeout: Duration,
}

impl Default for ReadLimits {
    fn default() -> Self {
        ReadLimits {
            max_download_bytes: 256 << 20,
            max_unpacked_bytes: 512 << 20,
            max_entries: 50_000,
            max_layers: 128,
            max_files: 1024,
            max_file_bytes: 1 << 20,
            max_kept_bytes: 8 << 20,
            peek_entries: 2_000,
            peek_bytes: 16 << 20,
            timeout: Duration::from_secs(20),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_camel_case_with_durations() {
        let l: ReadLimits =
            serde_json::from_str(r#"{"timeout": "1500ms", "peekEntries": 10}"#).expect("parses");
        assert_eq!(l.timeout, Duration::from_millis(1500));
        assert_eq!(l.peek_entries, 10);
        assert!(serde_json::from_str::<ReadLimits>(r#"{"peekEntrys": 1}"#).is_err());
    }
}
