//! Runs the classifier off the async runtime, on a fixed set of threads with large stacks, with
//! a deadline and a cache keyed by source digest.
//!
//! Why threads of our own: parsing is CPU work (it must not block the server's reactor), and the
//! parser recurses, so it needs a stack of [`gaia_classifier::REQUIRED_STACK_BYTES`], far more
//! than tokio's blocking threads have. A classification that misses its deadline keeps running on
//! its worker (input size and nesting are bounded, so it ends) and its result is cached for the
//! next review of the same source.

use std::num::NonZeroUsize;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lru::LruCache;
use tokio::sync::oneshot;

use crate::Error;
use gaia_classifier::{self as classifier, Classification, Limits, SourceFile};

type Reply = oneshot::Sender<Result<Arc<Classification>, String>>;

struct Job {
    digest: String,
    files: Vec<SourceFile>,
    reply: Reply,
}

type Cache = Mutex<LruCache<String, Arc<Classification>>>;

/// A fixed pool of classifier threads.
pub struct ClassifierPool {
    queue: SyncSender<Job>,
    cache: Arc<Cache>,
}

/// Whether a result came from the cache (for metrics and logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hit {
    Cached,
    Computed,
}

impl ClassifierPool {
    /// Starts `workers` threads; at most `queue` classifications wait for a thread.
    pub fn start(
        workers: usize,
        queue: usize,
        cache_entries: usize,
        limits: Limits,
    ) -> Result<ClassifierPool, Error> {
        let (tx, rx) = sync_channel::<Job>(queue.max(1));
        let rx = Arc::new(Mutex::new(rx));
        let cache: Arc<Cache> = Arc::new(Mutex::new(LruCache::new(
            NonZeroUsize::new(cache_entries.max(1)).unwrap_or(NonZeroUsize::MIN),
        )));
        for i in 0..workers.max(1) {
            let rx = Arc::clone(&rx);
            let cache = Arc::clone(&cache);
            let limits = limits.clone();
            std::thread::Builder::new()
                .name(format!("classifier-{i}"))
                .stack_size(classifier::REQUIRED_STACK_BYTES)
                .spawn(move || work(&rx, &cache, &limits))
                .map_err(|source| Error::Io {
                    path: "classifier thread".into(),
                    source,
                })?;
        }
        Ok(ClassifierPool { queue: tx, cache })
    }

    /// Classifies `files` (whose digest is `digest`), waiting at most `timeout`.
    pub async fn classify(
        &self,
        digest: &str,
        files: Vec<SourceFile>,
        timeout: Duration,
    ) -> Result<(Arc<Classification>, Hit), Error> {
        if let Some(hit) = self.cached(digest) {
            return Ok((hit, Hit::Cached));
        }
        let (reply, answer) = oneshot::channel();
        let job = Job {
            digest: digest.to_string(),
            files,
            reply,
        };
        match self.queue.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                return Err(Error::Busy("too many classifications queued"))
            }
            Err(TrySendError::Disconnected(_)) => {
                return Err(Error::Busy("classifier threads have stopped"))
            }
        }
        match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(Ok(c))) => Ok((c, Hit::Computed)),
            Ok(Ok(Err(message))) => Err(Error::ClassifierFailed(message)),
            Ok(Err(_)) => Err(Error::Busy("a classifier thread stopped")),
            Err(_) => Err(Error::Timeout(timeout)),
        }
    }

    fn cached(&self, digest: &str) -> Option<Arc<Classification>> {
        self.cache.lock().ok()?.get(digest).cloned()
    }
}

fn work(rx: &Mutex<Receiver<Job>>, cache: &Cache, limits: &Limits) {
    loop {
        let job = match rx.lock() {
            Ok(guard) => match guard.recv() {
                Ok(job) => job,
                Err(_) => return, // the pool is gone
            },
            Err(_) => return,
        };
        let result = classifier::classify(&job.files, limits)
            .map(Arc::new)
            .map_err(|e| e.to_string());
        if let Ok(c) = &result {
            if let Ok(mut cache) = cache.lock() {
                cache.put(job.digest, Arc::clone(c));
            }
        }
        // The reviewer may have given up (deadline); the cache still keeps the result.
        let _ = job.reply.send(result);
    }
}
