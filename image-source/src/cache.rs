//! Functions read from images, kept by manifest digest (and the command line, which picks the
//! entry): a digest read once is not fetched again. Bounded in entries and in bytes held.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use lru::LruCache;

use crate::read::{Command, ImageFunction};

/// The cache key: what was read, and how it was started.
pub type Key = (String, Command);

/// A least-recently-used cache of image reads.
pub struct ImageCache {
    inner: Mutex<Inner>,
    max_bytes: usize,
}

struct Inner {
    lru: LruCache<Key, Arc<ImageFunction>>,
    bytes: usize,
}

impl ImageCache {
    pub fn new(max_entries: usize, max_bytes: usize) -> ImageCache {
        ImageCache {
            inner: Mutex::new(Inner {
                lru: LruCache::new(NonZeroUsize::new(max_entries).unwrap_or(NonZeroUsize::MIN)),
                bytes: 0,
            }),
            max_bytes,
        }
    }

    pub fn get(&self, digest: &str, command: &Command) -> Option<Arc<ImageFunction>> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner
            .lru
            .get(&(digest.to_string(), command.clone()))
            .cloned()
    }

    /// Keeps `f`; evicts the least recently used until the bounds hold. A function larger than
    /// the whole bound is not kept.
    pub fn put(&self, command: &Command, f: Arc<ImageFunction>) {
        let weight = f.weight();
        if weight > self.max_bytes {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, old)) = inner.lru.push((f.digest.clone(), command.clone()), f) {
            inner.bytes = inner.bytes.saturating_sub(old.weight());
        }
        inner.bytes += weight;
        while inner.bytes > self.max_bytes {
            match inner.lru.pop_lru() {
                Some((_, old)) => inner.bytes = inner.bytes.saturating_sub(old.weight()),
                None => break,
            }
        }
    }

    /// Entries and bytes held.
    pub fn size(&self) -> (usize, usize) {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        (inner.lru.len(), inner.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::ReadStats;
    use gaia_classifier::SourceFile;

    fn f(digest: &str, size: usize) -> Arc<ImageFunction> {
        Arc::new(ImageFunction {
            reference: "r".into(),
            digest: digest.into(),
            files: vec![SourceFile::new("app/func.py", vec![b'x'; size])],
            entry: None,
            roots: vec![],
            stats: ReadStats::default(),
        })
    }

    #[test]
    fn bounded_in_bytes() {
        let c = ImageCache::new(100, 10_000);
        let cmd = Command::default();
        c.put(&cmd, f("a", 4000));
        c.put(&cmd, f("b", 4000));
        assert!(c.get("a", &cmd).is_some());
        c.put(&cmd, f("c", 4000));
        assert!(c.get("b", &cmd).is_none(), "least recently used goes first");
        assert!(c.get("a", &cmd).is_some() && c.get("c", &cmd).is_some());
        assert!(c.size().1 <= 10_000);
        c.put(&cmd, f("huge", 20_000));
        assert!(c.get("huge", &cmd).is_none());
        let other = Command {
            command: None,
            args: Some(vec!["x.py".into()]),
        };
        assert!(
            c.get("a", &other).is_none(),
            "another command line is another entry"
        );
    }
}
