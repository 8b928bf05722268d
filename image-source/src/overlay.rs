//! Layers stacked as a union file system would: an upper layer's file hides the same path
//! below, a whiteout (`.wh.NAME`) deletes `NAME` from the layers below, an opaque marker
//! (`.wh..wh..opq`) hides everything below in its directory. Layers are read from the top down,
//! so what a layer hides applies to the layers read after it, never to itself.

use std::collections::BTreeSet;

use crate::paths;

/// Prefix of a whiteout file (the OCI image spec, "Whiteouts").
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// Name of an opaque-directory marker.
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// What the layers above hide.
#[derive(Debug, Default)]
pub struct Overlay {
    /// Paths deleted by a whiteout (everything under them is gone too).
    deleted: BTreeSet<String>,
    /// Directories made opaque: the layers below contribute nothing under them.
    opaque: BTreeSet<String>,
    /// Paths already provided by an upper layer (a lower copy is hidden).
    present: BTreeSet<String>,
    pending: Pending,
}

#[derive(Debug, Default)]
struct Pending {
    deleted: Vec<String>,
    opaque: Vec<String>,
    present: Vec<String>,
}

/// What a tar entry is, as far as the overlay is concerned.
#[derive(Debug, PartialEq, Eq)]
pub enum Marker<'a> {
    /// `.wh.NAME`: deletes this path below.
    Whiteout(String),
    /// `.wh..wh..opq`: this directory is opaque below.
    Opaque(&'a str),
    /// An ordinary entry.
    None,
}

/// Classifies an entry path.
pub fn marker(path: &str) -> Marker<'_> {
    let name = paths::file_name(path);
    let dir = paths::parent(path);
    if name == OPAQUE_MARKER {
        Marker::Opaque(dir)
    } else if let Some(deleted) = name.strip_prefix(WHITEOUT_PREFIX) {
        Marker::Whiteout(if dir.is_empty() {
            deleted.to_string()
        } else {
            format!("{dir}/{deleted}")
        })
    } else {
        Marker::None
    }
}

impl Overlay {
    /// Whether the layers above hide `path`.
    pub fn hides(&self, path: &str) -> bool {
        if self.present.contains(path) {
            return true;
        }
        // Any ancestor (or the path itself) deleted, or an ancestor opaque.
        let mut at = path;
        loop {
            if self.deleted.contains(at) {
                return true;
            }
            let up = paths::parent(at);
            if up == at {
                break;
            }
            if self.opaque.contains(up) {
                return true;
            }
            if up.is_empty() {
                break;
            }
            at = up;
        }
        false
    }

    /// Records an entry of the layer being read; takes effect for the layers below.
    pub fn record(&mut self, path: &str) {
        match marker(path) {
            Marker::Whiteout(p) => self.pending.deleted.push(p),
            Marker::Opaque(d) => self.pending.opaque.push(d.to_string()),
            Marker::None => self.pending.present.push(path.to_string()),
        }
    }

    /// The layer being read is done: what it hides now applies.
    pub fn finish_layer(&mut self) {
        let p = std::mem::take(&mut self.pending);
        self.deleted.extend(p.deleted);
        self.opaque.extend(p.opaque);
        self.present.extend(p.present);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whiteouts_hide_only_lower_layers() {
        let mut o = Overlay::default();
        o.record("app/.wh.old.py");
        o.record("app/func.py");
        assert!(!o.hides("app/old.py"), "not in the layer that deletes it");
        o.finish_layer();
        assert!(o.hides("app/old.py"));
        assert!(o.hides("app/func.py"), "the upper copy wins");
        assert!(!o.hides("app/other.py"));
    }

    #[test]
    fn deleted_directories_and_opaque_markers() {
        let mut o = Overlay::default();
        o.record(".wh.legacy");
        o.record("app/.wh..wh..opq");
        o.finish_layer();
        assert!(o.hides("legacy/a/b.py"));
        assert!(o.hides("app/x.py"));
        assert!(o.hides("app/pkg/y.py"));
        assert!(!o.hides("app"), "the directory itself stays");
        assert!(!o.hides("srv/z.py"));
        assert_eq!(marker("a/.wh.b"), Marker::Whiteout("a/b".into()));
        assert_eq!(marker("a/.wh..wh..opq"), Marker::Opaque("a"));
    }
}
