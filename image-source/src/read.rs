//! One image read end to end: resolve, manifest, config, then the layers from the top down,
//! each streamed from the registry into the tar walk on a blocking thread, then links, virtual
//! environments and import following.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gaia_classifier::SourceFile;
use oci_client::manifest::OciDescriptor;
use tokio::sync::mpsc;
use tracing::{debug, info, info_span, Instrument};

use crate::decode::{compression, decoder, Compression};
use crate::entry::{ImageConfig, Plan};
use crate::imports::reachable;
use crate::limits::ReadLimits;
use crate::overlay::Overlay;
use crate::paths;
use crate::registry::{ChannelReader, Registries, Resolved};
use crate::walk::{Candidates, Ended, LayerWalk, Totals, Walker};
use crate::{Error, PullSecret};

/// Largest image config read (they are a few KiB).
const MAX_CONFIG_BYTES: u64 = 4 << 20;
/// Chunks buffered between the download and the tar walk.
const CHANNEL_CHUNKS: usize = 8;

/// Entry files by name when the command line names none (Knative `func`'s `func.py` first;
/// the classifier's own list).
pub const ENTRY_NAMES: &[&str] = &[
    "func.py",
    "main.py",
    "app.py",
    "handler.py",
    "lambda_function.py",
    "service.py",
    "__main__.py",
];

/// What the container runs, when the Service overrides the image's Entrypoint/Cmd.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Command {
    pub command: Option<Vec<String>>,
    pub args: Option<Vec<String>>,
}

/// How much of the image was read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadStats {
    pub layers: usize,
    pub layers_read: usize,
    /// Layers left unread or stopped early (dependency layers, past the function).
    pub layers_skipped: usize,
    pub downloaded_bytes: u64,
    pub unpacked_bytes: u64,
    pub entries: u64,
    pub elapsed: Duration,
}

/// A function read from an image.
#[derive(Debug, Clone)]
pub struct ImageFunction {
    /// As written in the Service.
    pub reference: String,
    /// The manifest digest that was read.
    pub digest: String,
    /// The function's files by image path (`app/func.py`), sorted.
    pub files: Vec<SourceFile>,
    /// The entry file (image path), when found.
    pub entry: Option<String>,
    /// The directories looked in.
    pub roots: Vec<String>,
    pub stats: ReadStats,
}

impl ImageFunction {
    /// Bytes held in memory (for the cache's bound).
    pub fn weight(&self) -> usize {
        self.files
            .iter()
            .map(|f| f.path.len() + f.bytes.len() + 64)
            .sum::<usize>()
            + self.reference.len()
            + 256
    }
}

/// Reads functions out of images.
pub struct ImageReader {
    pub registries: Registries,
    pub limits: ReadLimits,
}

impl ImageReader {
    /// Reads the image `resolved` names (see [`Registries::resolve`]), within the limits and
    /// their timeout.
    pub async fn read(
        &self,
        resolved: Resolved,
        secrets: &[PullSecret],
        command: &Command,
    ) -> Result<ImageFunction, Error> {
        let span =
            info_span!("image_read", reference = %resolved.reference, digest = %resolved.digest);
        let timeout = self.limits.timeout;
        match tokio::time::timeout(timeout, self.read_inner(resolved, secrets, command))
            .instrument(span)
            .await
        {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout(timeout)),
        }
    }

    async fn read_inner(
        &self,
        mut resolved: Resolved,
        secrets: &[PullSecret],
        command: &Command,
    ) -> Result<ImageFunction, Error> {
        let started = Instant::now();
        let deadline = started + self.limits.timeout;
        let (manifest, _) = self.registries.manifest(&mut resolved, secrets).await?;
        let downloaded = Arc::new(AtomicU64::new(0));
        let config_bytes = fetch_small(&resolved, &manifest.config).await?;
        let config: ImageConfig =
            serde_json::from_slice(&config_bytes).map_err(|e| Error::Image {
                reference: resolved.reference.clone(),
                message: format!("image config: {e}"),
            })?;
        let plan = Arc::new(Plan::new(
            &config,
            command.command.as_deref(),
            command.args.as_deref(),
        ));
        debug!(roots = ?plan.roots, entry = ?plan.entry_file, module = ?plan.entry_module, "plan");
        let mut stats = ReadStats {
            layers: manifest.layers.len(),
            ..ReadStats::default()
        };
        let mut state = LayerStack::default();
        for layer in manifest.layers.iter().rev().take(self.limits.max_layers) {
            let Some(comp) = compression(&layer.media_type) else {
                stats.layers_skipped += 1;
                continue;
            };
            let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
            let pump = {
                let resolved = resolved.clone();
                let layer = layer.clone();
                let downloaded = Arc::clone(&downloaded);
                let limit = self.limits.max_download_bytes;
                AbortOnDrop(tokio::spawn(async move {
                    Registries::stream_blob(&resolved, &layer, tx, downloaded, limit).await
                }))
            };
            let digest = layer.digest.clone();
            let limits = self.limits.clone();
            let plan_for_walk = Arc::clone(&plan);
            let mut moved = std::mem::take(&mut state);
            let walked = tokio::task::spawn_blocking(move || {
                let walker = Walker {
                    digest: &digest,
                    plan: &plan_for_walk,
                    limits: &limits,
                    deadline,
                };
                let result = moved.walk_layer(&walker, comp, ChannelReader::new(rx));
                (moved, result)
            })
            .await
            .map_err(|e| Error::Internal(format!("the layer walk stopped: {e}")))?;
            state = walked.0;
            // A failed download explains a truncated tar better than the tar does.
            if let Ok(Ok(Err(e))) = tokio::time::timeout(Duration::ZERO, pump.join()).await {
                if walked.1.is_err() {
                    return Err(e);
                }
            }
            if downloaded.load(Ordering::Relaxed) > self.limits.max_download_bytes {
                return Err(Error::Budget {
                    what: "downloaded layer bytes",
                    limit: self.limits.max_download_bytes,
                    setting: "image.limits.maxDownloadBytes",
                });
            }
            let walk = walked.1?;
            stats.layers_read += 1;
            if walk.ended != Ended::Complete {
                stats.layers_skipped += 1;
            }
        }
        stats.downloaded_bytes = downloaded.load(Ordering::Relaxed);
        stats.unpacked_bytes = state.totals.unpacked_bytes;
        stats.entries = state.totals.entries;
        let (files, entry) = state.select(&plan);
        stats.elapsed = started.elapsed();
        info!(files = files.len(), entry = ?entry, downloaded = stats.downloaded_bytes, unpacked = stats.unpacked_bytes, layers = stats.layers, skipped = stats.layers_skipped, elapsed_ms = stats.elapsed.as_millis() as u64, "image read");
        Ok(ImageFunction {
            reference: resolved.reference.clone(),
            digest: resolved.digest.clone(),
            files,
            entry,
            roots: plan.roots.clone(),
            stats,
        })
    }
}

/// What a read carries from one layer to the next, top down: what the layers above hide, the
/// candidates so far, the counters the budgets apply to. Pure: the registry is only where the
/// layer bytes come from (the fuzz target `image_layer` feeds it arbitrary bytes).
#[derive(Debug, Default)]
pub struct LayerStack {
    pub overlay: Overlay,
    pub found: Candidates,
    pub totals: Totals,
}

impl LayerStack {
    /// One layer blob, decompressed as it is read (`compression` from its media type) and
    /// walked; the next call is the layer below.
    pub fn walk_layer(
        &mut self,
        walker: &Walker<'_>,
        compression: Compression,
        blob: impl std::io::Read,
    ) -> Result<LayerWalk, Error> {
        let tar = decoder(compression, blob, walker.digest)?;
        walker.walk(tar, &mut self.overlay, &mut self.found, &mut self.totals)
    }

    /// The function's files once every layer is walked ([`select`]).
    pub fn select(self, plan: &Plan) -> (Vec<SourceFile>, Option<String>) {
        select(self.found, plan)
    }
}

/// A spawned task that is aborted when its handle goes away (a timed-out read stops its
/// downloads).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> AbortOnDrop<T> {
    async fn join(mut self) -> Result<T, tokio::task::JoinError> {
        (&mut self.0).await
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn fetch_small(resolved: &Resolved, descriptor: &OciDescriptor) -> Result<Vec<u8>, Error> {
    if descriptor.size < 0 || descriptor.size as u64 > MAX_CONFIG_BYTES {
        return Err(Error::Image {
            reference: resolved.reference.clone(),
            message: format!(
                "config of {} bytes (at most {MAX_CONFIG_BYTES})",
                descriptor.size
            ),
        });
    }
    let (tx, mut rx) = mpsc::channel(CHANNEL_CHUNKS);
    let counter = Arc::new(AtomicU64::new(0));
    let pump = Registries::stream_blob(resolved, descriptor, tx, counter, MAX_CONFIG_BYTES);
    let collect = async {
        let mut out = Vec::new();
        while let Some(chunk) = rx.recv().await {
            let chunk = chunk.map_err(|e| Error::Image {
                reference: resolved.reference.clone(),
                message: format!("config: {e}"),
            })?;
            out.extend_from_slice(&chunk);
        }
        Ok::<_, Error>(out)
    };
    let (pumped, collected) = tokio::join!(pump, collect);
    pumped?;
    collected
}

/// Links followed at most this many times (Linux's own limit is 40).
pub const MAX_LINK_HOPS: usize = 40;

/// The contents of the file `link` leads to, through links among the function's files.
pub fn link_target<'a>(
    files: &'a std::collections::BTreeMap<String, Vec<u8>>,
    links: &std::collections::BTreeMap<String, String>,
    link: &str,
) -> Option<&'a Vec<u8>> {
    let mut at = links.get(link)?;
    for _ in 0..MAX_LINK_HOPS {
        if let Some(bytes) = files.get(at) {
            return Some(bytes);
        }
        at = links.get(at)?;
    }
    None
}

/// The function's files from the candidates: links resolved, virtual environments dropped,
/// then what the entry reaches (every candidate when no entry is known). Paths are image paths.
pub fn select(found: Candidates, plan: &Plan) -> (Vec<SourceFile>, Option<String>) {
    let Candidates {
        mut files,
        links,
        venvs,
        ..
    } = found;
    // A link to a link is followed to the file at its end, whatever the order of the names (a
    // file of the link's own name still wins); a loop or a chain longer than
    // MAX_LINK_HOPS gives nothing.
    let resolved: Vec<(String, Vec<u8>)> = links
        .keys()
        .filter_map(|link| Some((link.clone(), link_target(&files, &links, link)?.clone())))
        .collect();
    for (link, bytes) in resolved {
        files.entry(link).or_insert(bytes);
    }
    files.retain(|path, _| !venvs.iter().any(|v| paths::is_under(path, v)));
    let mut entries: Vec<String> = plan
        .entry_file
        .iter()
        .filter(|e| files.contains_key(*e))
        .cloned()
        .collect();
    // A server script outside the function's directories (Gaia's runtime image runs
    // /usr/local/lib/gaia/function_server.py, which imports func.py by path) is not the function:
    // the usual entry names in those directories are entries too.
    let entry_outside = plan
        .entry_file
        .as_deref()
        .is_some_and(|e| plan.root_of(e).is_none());
    if (entries.is_empty() || entry_outside) && plan.entry_module.is_none() {
        for dir in plan.search.iter().chain(&plan.roots) {
            if let Some(name) = ENTRY_NAMES
                .iter()
                .map(|n| {
                    if dir.is_empty() {
                        n.to_string()
                    } else {
                        format!("{dir}/{n}")
                    }
                })
                .find(|p| files.contains_key(p))
            {
                if !entries.contains(&name) {
                    entries.push(name);
                }
            }
        }
    }
    let has_entry = !entries.is_empty() || plan.entry_module.is_some();
    let keep = has_entry.then(|| reachable(&files, plan, &entries));
    let entry = entries.first().cloned();
    let out = files
        .into_iter()
        .filter(|(p, _)| keep.as_ref().is_none_or(|k| k.contains(p)))
        .map(|(path, bytes)| SourceFile { path, bytes })
        .collect();
    (out, entry)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::{ImageConfig, RuntimeConfig};

    #[test]
    fn a_chain_of_links_ends_at_its_file_in_either_order_and_a_loop_at_nothing() {
        let file = |s: &str| s.as_bytes().to_vec();
        let mut files = std::collections::BTreeMap::new();
        files.insert("app/real.py".to_string(), file("import torch\n"));
        let mut links = std::collections::BTreeMap::new();
        // "app/a.py" sorts before the link it points to, "app/z.py" after.
        links.insert("app/a.py".to_string(), "app/m.py".to_string());
        links.insert("app/m.py".to_string(), "app/real.py".to_string());
        links.insert("app/z.py".to_string(), "app/m.py".to_string());
        links.insert("app/loop1.py".to_string(), "app/loop2.py".to_string());
        links.insert("app/loop2.py".to_string(), "app/loop1.py".to_string());
        for l in ["app/a.py", "app/m.py", "app/z.py"] {
            assert_eq!(
                link_target(&files, &links, l),
                Some(&file("import torch\n")),
                "{l}"
            );
        }
        assert_eq!(link_target(&files, &links, "app/loop1.py"), None);
        let plan = Plan::new(&ImageConfig::default(), None, None);
        let found = Candidates {
            files,
            links,
            ..Candidates::default()
        };
        let (selected, _) = select(found, &plan);
        let mut paths: Vec<&str> = selected.iter().map(|f| f.path.as_str()).collect();
        paths.sort_unstable();
        assert_eq!(paths, ["app/a.py", "app/m.py", "app/real.py", "app/z.py"]);
    }

    #[test]
    fn a_server_script_outside_the_function_does_not_hide_it() {
        let config = ImageConfig {
            config: Some(RuntimeConfig {
                entrypoint: Some(vec![
                    "python3".into(),
                    "/usr/local/lib/gaia/function_server.py".into(),
                ]),
                ..RuntimeConfig::default()
            }),
        };
        let plan = Plan::new(&config, None, None);
        let mut found = Candidates::default();
        for (p, t) in [
            (
                "usr/local/lib/gaia/function_server.py",
                "import importlib\n",
            ),
            ("opt/gaia/function/func.py", "from model import m\n"),
            ("opt/gaia/function/model.py", "import torch\n"),
            ("opt/gaia/function/unused.py", "import jax\n"),
        ] {
            found.files.insert(p.to_string(), t.as_bytes().to_vec());
        }
        let (files, _) = select(found, &plan);
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "opt/gaia/function/func.py",
                "opt/gaia/function/model.py",
                "usr/local/lib/gaia/function_server.py"
            ]
        );
    }
}
