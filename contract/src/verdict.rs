//! The verdict the webhook records on a Service (`gaia.dev/mode`, `mode-source`, `rationale`,
//! `findings`, `source-digest`,
//! `source-origin`, `image-digest`), and the one rule for how long its rationale may be.

use crate::{ExecutionMode, ModeSource};

/// Longest rationale the classifier writes. It is the tail of the annotation when the user pinned
/// a mode ("set by the user (...); the classifier would choose X: <rationale>"), so it is kept
/// well under [`MAX_RATIONALE_CHARS`].
pub const MAX_CLASSIFIER_RATIONALE_CHARS: usize = 280;
/// Longest `gaia.dev/rationale`: the classifier's rationale plus what the webhook says around it.
pub const MAX_RATIONALE_CHARS: usize = 480;

/// What the webhook writes to a Service's annotations.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub mode: ExecutionMode,
    pub source: ModeSource,
    pub rationale: String,
    /// Compact JSON of the findings (`gaia.dev/findings`), when there are any.
    pub findings: Option<String>,
    /// `gaia.dev/source-digest`: the analysed source's hash.
    pub digest: Option<String>,
    /// `gaia.dev/source-origin`: where the source was read.
    pub origin: Option<String>,
    /// `gaia.dev/image-digest`: the image read, when the source came from one.
    pub image_digest: Option<String>,
    /// `gaia.dev/gpu-memory-mib`: the GPU memory the model needs, when the classifier knows.
    pub gpu_memory_mib: Option<u64>,
}

/// One line of at most `max` characters: control characters and runs of whitespace become one
/// space, and a cut line ends in `…`. Annotations are read in terminals and tables.
pub fn one_line(text: &str, max: usize) -> String {
    let flat: String = text
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if flat.chars().count() <= max {
        return flat;
    }
    let mut cut: String = flat.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rationale_is_one_bounded_line() {
        assert_eq!(one_line("a\n  b\tc", 10), "a b c");
        assert_eq!(one_line("a\u{7}b", 10), "a b");
        let long = "x ".repeat(1000);
        let cut = one_line(&long, 50);
        assert_eq!(cut.chars().count(), 50);
        assert!(cut.ends_with('…'));
    }
}
