//! One layer's tar, read as a stream from the top of the image down: picks the candidate Python
//! files under the function's directories, honours the overlay, and stops early when the rest of
//! the layer cannot hold the function (a dependency layer, or a sorted layer past the
//! function's directories). Pure: any `Read` in, candidates out.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::Read;
use std::rc::Rc;
use std::time::Instant;

use tracing::debug;

use crate::entry::Plan;
use crate::limits::ReadLimits;
use crate::overlay::{marker, Marker, Overlay};
use crate::paths;
use crate::Error;

/// A layer needs this many entries in walk order before its order is trusted to end early.
const SORTED_EVIDENCE: u64 = 256;

/// The candidates found so far (image path → contents), across layers.
#[derive(Debug, Default)]
pub struct Candidates {
    pub files: BTreeMap<String, Vec<u8>>,
    /// Links among function files: path → normalised target (resolved after the walk).
    pub links: BTreeMap<String, String>,
    /// Directories holding a `pyvenv.cfg`: virtual environments, whatever their names.
    pub venvs: Vec<String>,
    /// Python files passed over, and why (for the log and the rationale).
    pub passed_over: BTreeMap<String, &'static str>,
    pub kept_bytes: u64,
}

/// Counters shared by the layers of one image read.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub entries: u64,
    pub unpacked_bytes: u64,
}

/// How a layer's walk ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Read to the end of the tar.
    Complete,
    /// Nothing under the function's directories in its first entries: a dependency or system
    /// layer, left unread.
    DependencyLayer,
    /// The layer is in walk order and has passed every function directory.
    PastTheFunction,
}

/// What one layer gave.
#[derive(Debug, Clone, Copy)]
pub struct LayerWalk {
    pub ended: Ended,
    pub entries: u64,
    pub kept: usize,
}

/// The state of one layer's byte counter.
struct Reading<'c> {
    unpacked: &'c Cell<u64>,
    limit: &'c Cell<u64>,
    /// What is left of the image's unpacked-bytes budget.
    budget: u64,
    /// Something under the function's directories was seen in this layer.
    hit: bool,
}

/// Everything a layer walk needs besides the bytes.
pub struct Walker<'a> {
    pub digest: &'a str,
    pub plan: &'a Plan,
    pub limits: &'a ReadLimits,
    pub deadline: Instant,
}

/// Counts the bytes the tar reader pulls, so budgets and the peek apply to unpacked bytes.
struct Counted<R> {
    inner: R,
    bytes: Rc<Cell<u64>>,
    /// Bytes this layer may unpack now: the peek while nothing of the function was seen, then
    /// what is left of the image's budget.
    limit: Rc<Cell<u64>>,
    /// Past it, reading stops: inside one large entry too (a decompression bomb ends at the
    /// read's timeout even when the byte budget would let it run on).
    deadline: Instant,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.limit.get().saturating_sub(self.bytes.get());
        if left == 0 {
            return Err(std::io::Error::other("read limit of the layer reached"));
        }
        if Instant::now() > self.deadline {
            return Err(std::io::Error::other("the read's timeout passed"));
        }
        let n = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
        let n = self.inner.read(&mut buf[..n])?;
        self.bytes.set(self.bytes.get() + n as u64);
        Ok(n)
    }
}

impl Walker<'_> {
    fn layer_error(&self, e: impl std::fmt::Display) -> Error {
        Error::Layer {
            digest: self.digest.to_string(),
            message: e.to_string(),
        }
    }

    /// Reads one layer's (decompressed) tar.
    pub fn walk(
        &self,
        tar_stream: impl Read,
        overlay: &mut Overlay,
        found: &mut Candidates,
        totals: &mut Totals,
    ) -> Result<LayerWalk, Error> {
        let budget = self
            .limits
            .max_unpacked_bytes
            .saturating_sub(totals.unpacked_bytes);
        let counter = Rc::new(Cell::new(0));
        let limit = Rc::new(Cell::new(budget.min(self.limits.peek_bytes)));
        let mut archive = tar::Archive::new(Counted {
            inner: tar_stream,
            bytes: Rc::clone(&counter),
            limit: Rc::clone(&limit),
            deadline: self.deadline,
        });
        let mut reading = Reading {
            unpacked: &counter,
            limit: &limit,
            budget,
            hit: false,
        };
        let result = self.walk_entries(&mut archive, &mut reading, overlay, found, totals);
        let hit = reading.hit;
        drop(archive);
        let unpacked = counter.get();
        totals.unpacked_bytes += unpacked;
        if result.is_err()
            && !hit
            && unpacked >= self.limits.peek_bytes.min(budget)
            && budget > self.limits.peek_bytes
        {
            // The peek ran out inside a large file: a dependency layer, not an error.
            overlay.finish_layer();
            return Ok(LayerWalk {
                ended: Ended::DependencyLayer,
                entries: 0,
                kept: 0,
            });
        }
        if unpacked >= budget && result.is_err() {
            return Err(Error::Budget {
                what: "unpacked layer bytes",
                limit: self.limits.max_unpacked_bytes,
                setting: "image.limits.maxUnpackedBytes",
            });
        }
        if Instant::now() > self.deadline {
            return Err(Error::Timeout(self.limits.timeout));
        }
        let walk = result?;
        overlay.finish_layer();
        debug!(digest = self.digest, entries = walk.entries, kept = walk.kept, ended = ?walk.ended, unpacked, "layer walked");
        Ok(walk)
    }

    fn walk_entries<R: Read>(
        &self,
        archive: &mut tar::Archive<Counted<R>>,
        reading: &mut Reading<'_>,
        overlay: &mut Overlay,
        found: &mut Candidates,
        totals: &mut Totals,
    ) -> Result<LayerWalk, Error> {
        let mut walk = LayerWalk {
            ended: Ended::Complete,
            entries: 0,
            kept: 0,
        };
        let mut sorted = true;
        let mut previous = String::new();
        let entries = archive.entries().map_err(|e| self.layer_error(e))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| self.layer_error(e))?;
            walk.entries += 1;
            totals.entries += 1;
            if totals.entries > self.limits.max_entries {
                return Err(Error::Budget {
                    what: "tar entries",
                    limit: self.limits.max_entries,
                    setting: "image.limits.maxEntries",
                });
            }
            if Instant::now() > self.deadline {
                return Err(Error::Timeout(self.limits.timeout));
            }
            let raw = entry.path_bytes();
            let raw = String::from_utf8_lossy(&raw).into_owned();
            let Some(path) = paths::normalise(&raw) else {
                return Err(Error::PathEscapes {
                    digest: self.digest.to_string(),
                    path: raw,
                });
            };
            if sorted && !previous.is_empty() && paths::walk_order(&previous, &path).is_gt() {
                sorted = false;
            }
            previous.clone_from(&path);
            let is_entry = self.plan.entry_file.as_deref() == Some(path.as_str());
            let root = self.plan.root_of(&path);
            if root.is_none() && !is_entry {
                if marker(&path) != Marker::None {
                    overlay.record(&path);
                }
                let peeked = walk.entries >= self.limits.peek_entries
                    || reading.unpacked.get() >= self.limits.peek_bytes;
                if !reading.hit && peeked {
                    walk.ended = Ended::DependencyLayer;
                    return Ok(walk);
                }
                if sorted && walk.entries > SORTED_EVIDENCE && self.past_every_root(&path) {
                    walk.ended = Ended::PastTheFunction;
                    return Ok(walk);
                }
                continue;
            }
            if !reading.hit {
                reading.hit = true;
                reading.limit.set(reading.budget);
            }
            if overlay.hides(&path) {
                continue;
            }
            overlay.record(&path);
            if marker(&path) != Marker::None {
                continue;
            }
            let kind = entry.header().entry_type();
            let name = paths::file_name(&path);
            if name == "pyvenv.cfg" {
                found.venvs.push(paths::parent(&path).to_string());
                continue;
            }
            if !name.ends_with(".py") {
                continue;
            }
            let relative = root.map_or(path.as_str(), |r| {
                path.get(r.len()..)
                    .unwrap_or_default()
                    .trim_start_matches('/')
            });
            if let Some(why) = paths::excluded(relative) {
                found.passed_over.insert(path, why);
                continue;
            }
            if kind.is_symlink() || kind.is_hard_link() {
                let target = entry
                    .link_name_bytes()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                // Hard links name another entry of the archive; symlinks are relative to the
                // link's directory unless absolute.
                let resolved = if kind.is_hard_link() {
                    paths::normalise(&target)
                } else {
                    paths::join(paths::parent(&path), &target)
                };
                match resolved {
                    Some(t) if self.plan.root_of(&t).is_some() => {
                        found.links.insert(path, t);
                    }
                    _ => {
                        return Err(Error::LinkOutOfRoot {
                            digest: self.digest.to_string(),
                            path,
                            target,
                        })
                    }
                }
                continue;
            }
            if !kind.is_file() {
                continue;
            }
            // The entry's size, a PAX `size` record's when there is one: the header's own field
            // can say less than what follows (a 10-byte header, a megabyte of file).
            let size = entry.size();
            if size > self.limits.max_file_bytes {
                found
                    .passed_over
                    .insert(path, "larger than image.limits.maxFileBytes");
                continue;
            }
            if found.files.len() >= self.limits.max_files {
                return Err(Error::Budget {
                    what: "Python files under the function's directories",
                    limit: self.limits.max_files as u64,
                    setting: "image.limits.maxFiles",
                });
            }
            if found.kept_bytes + size > self.limits.max_kept_bytes {
                return Err(Error::Budget {
                    what: "bytes of Python files under the function's directories",
                    limit: self.limits.max_kept_bytes,
                    setting: "image.limits.maxKeptBytes",
                });
            }
            let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
            (&mut entry)
                .take(self.limits.max_file_bytes + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| self.layer_error(format!("{path}: {e}")))?;
            found.kept_bytes += bytes.len() as u64;
            found.files.insert(path, bytes);
            walk.kept += 1;
        }
        Ok(walk)
    }

    /// In walk order, `path` comes after every function directory (and is not inside one).
    fn past_every_root(&self, path: &str) -> bool {
        self.plan
            .roots
            .iter()
            .chain(self.plan.entry_file.iter())
            .all(|r| paths::walk_order(path, r).is_gt() && !paths::is_under(path, r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::{ImageConfig, RuntimeConfig};
    use std::time::Duration;

    /// A tar whose first entry claims `size` bytes and then delivers zeros for as long as it
    /// is read: what a decompression bomb looks like after the decoder.
    struct Endless {
        header: Vec<u8>,
        at: usize,
    }

    impl Read for Endless {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len();
            for b in buf.iter_mut() {
                *b = self.header.get(self.at).copied().unwrap_or(0);
                self.at += 1;
            }
            Ok(n)
        }
    }

    #[test]
    fn one_huge_entry_stops_at_the_deadline_not_at_the_end_of_the_budget() {
        let mut h = tar::Header::new_gnu();
        h.set_path("usr/share/blob.bin").expect("path");
        h.set_size(1 << 40);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        let plan = app_plan();
        // A budget that takes far longer than the deadline to run out (4 GiB read a byte at a
        // time): only the deadline stops the walk early.
        let limits = ReadLimits {
            max_unpacked_bytes: 1 << 32,
            peek_bytes: 1 << 32,
            ..ReadLimits::default()
        };
        let walker = Walker {
            digest: "sha256:bomb",
            plan: &plan,
            limits: &limits,
            deadline: Instant::now() + Duration::from_millis(200),
        };
        let mut totals = Totals::default();
        let result = walker.walk(
            Endless {
                header: h.as_bytes().to_vec(),
                at: 0,
            },
            &mut Overlay::default(),
            &mut Candidates::default(),
            &mut totals,
        );
        assert!(matches!(result, Err(Error::Timeout(_))), "{result:?}");
        assert!(totals.unpacked_bytes < 1 << 32);
    }

    fn app_plan() -> Plan {
        Plan::new(
            &ImageConfig {
                config: Some(RuntimeConfig {
                    working_dir: Some("/app".into()),
                    ..RuntimeConfig::default()
                }),
            },
            None,
            None,
        )
    }

    /// A PAX extended header (`x`) with one record, then `name` whose ustar header says
    /// `header_size` bytes, followed by `data`.
    fn pax_sized(name: &str, header_size: u64, data: &[u8]) -> Vec<u8> {
        let body = format!("size={}\n", data.len());
        // The record's length counts its own digits.
        let mut len = body.len() + 3;
        while format!("{len} {body}").len() != len {
            len += 1;
        }
        let record = format!("{len} {body}");
        let mut tar = Vec::new();
        let mut x = tar::Header::new_ustar();
        x.set_path("PaxHeaders/x").expect("path");
        x.set_entry_type(tar::EntryType::XHeader);
        x.set_size(record.len() as u64);
        x.set_cksum();
        tar.extend_from_slice(x.as_bytes());
        tar.extend_from_slice(record.as_bytes());
        tar.resize(tar.len().div_ceil(512) * 512, 0);
        let mut h = tar::Header::new_ustar();
        h.set_path(name).expect("path");
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(header_size);
        h.set_cksum();
        tar.extend_from_slice(h.as_bytes());
        tar.extend_from_slice(data);
        tar.resize(tar.len().div_ceil(512) * 512 + 1024, 0);
        tar
    }

    #[test]
    fn a_pax_size_counts_against_the_file_limit_not_the_headers_field() {
        let limits = ReadLimits {
            max_file_bytes: 100,
            ..ReadLimits::default()
        };
        let plan = app_plan();
        let walker = Walker {
            digest: "sha256:pax",
            plan: &plan,
            limits: &limits,
            deadline: Instant::now() + Duration::from_secs(10),
        };
        let big = b"import torch\n".repeat(200);
        let mut found = Candidates::default();
        walker
            .walk(
                &pax_sized("app/func.py", 10, &big)[..],
                &mut Overlay::default(),
                &mut found,
                &mut Totals::default(),
            )
            .expect("a well-formed layer");
        assert!(found.files.is_empty(), "{:?}", found.files.keys());
        assert_eq!(
            found.passed_over.get("app/func.py"),
            Some(&"larger than image.limits.maxFileBytes")
        );
        assert_eq!(found.kept_bytes, 0);
        // Within the limit, the whole file is read, whatever the header's field says.
        let mut found = Candidates::default();
        walker
            .walk(
                &pax_sized("app/func.py", 3, b"import torch\n")[..],
                &mut Overlay::default(),
                &mut found,
                &mut Totals::default(),
            )
            .expect("a well-formed layer");
        assert_eq!(found.files["app/func.py"], b"import torch\n");
    }
}
