//! The image source's layer reader on arbitrary bytes: each layer decompressed (plain tar, gzip,
//! zstd) and walked from the top of the image down as an image read does it
//! (`LayerStack::walk_layer`, then `LayerStack::select`), under small and default limits.
//!
//! Two kinds of input:
//! - anything not starting with 0xFF: byte 0 says each layer's compression (two bits a layer:
//!   plain, gzip, zstd, plain) and the limits (its top two bits); the rest is up to four layer
//!   blobs, top first, separated by `SEPARATOR`;
//! - 0xFF then bytes for a structure-aware stack: up to four layers of tar entries (files,
//!   directories, symlinks and hard links in and out of the function's directories, `..`
//!   names, whiteouts and opaque markers, large files that compress to nothing), each plain,
//!   gzip or zstd, sometimes cut short or with a byte changed, read under one of four image
//!   configs.
//!
//! Checks: never panics; the limits hold after every layer, read or refused (entries, unpacked
//! bytes, files, bytes kept, the size of each file); every file kept is a normalised `.py`
//! path under the function's directories (or the entry file), every link kept points inside
//! them; a layer ends within the read's timeout. For an intact structure-aware stack whose layers
//! were all read to the end: a file kept has the contents of its topmost copy, and no layer above
//! it deletes it (whiteout), makes a directory above it opaque, or holds the same path; every
//! visible function file within the limits is kept; a symlink out of the function's directories
//! is refused; selection gives files from those kept only.
#![no_main]

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use arbitrary::{Arbitrary, Unstructured};
use gaia_image_source::decode::Compression;
use gaia_image_source::entry::{ImageConfig, Plan, RuntimeConfig};
use gaia_image_source::overlay::{OPAQUE_MARKER, WHITEOUT_PREFIX};
use gaia_image_source::paths;
use gaia_image_source::read::LayerStack;
use gaia_image_source::walk::{Ended, Walker};
use gaia_image_source::ReadLimits;
use libfuzzer_sys::fuzz_target;

/// Between two layer blobs of a raw input (seeds hold it; libFuzzer's dictionary-free
/// mutations keep it more often than not).
const SEPARATOR: &[u8] = b"\n--gaia-layer--\n";
const TIMEOUT: Duration = Duration::from_secs(3);

fn limits(preset: u8) -> ReadLimits {
    let small = ReadLimits {
        max_download_bytes: 1 << 20,
        max_unpacked_bytes: 1 << 20,
        max_entries: 64,
        max_layers: 4,
        max_files: 16,
        max_file_bytes: 4096,
        max_kept_bytes: 16384,
        peek_entries: 64,
        peek_bytes: 1 << 20,
        timeout: TIMEOUT,
    };
    match preset % 4 {
        0 => small,
        1 => ReadLimits {
            max_unpacked_bytes: 8192,
            max_entries: 6,
            max_files: 2,
            max_file_bytes: 100,
            max_kept_bytes: 150,
            peek_entries: 4,
            peek_bytes: 4096,
            ..small
        },
        2 => ReadLimits {
            peek_entries: 2,
            peek_bytes: 1024,
            ..small
        },
        _ => ReadLimits {
            timeout: TIMEOUT,
            ..ReadLimits::default()
        },
    }
}

fn compression(bits: u8) -> Compression {
    match bits % 4 {
        1 => Compression::Gzip,
        2 => Compression::Zstd,
        _ => Compression::None,
    }
}

fn config(i: u8) -> ImageConfig {
    let words = |w: &[&str]| Some(w.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    let rc = match i % 4 {
        0 => RuntimeConfig {
            working_dir: Some("/app".into()),
            cmd: words(&["python", "func.py"]),
            env: words(&["PYTHONPATH=lib"]),
            ..RuntimeConfig::default()
        },
        1 => RuntimeConfig::default(),
        2 => RuntimeConfig {
            working_dir: Some("/workspace".into()),
            entrypoint: words(&["uvicorn", "main:app"]),
            ..RuntimeConfig::default()
        },
        _ => RuntimeConfig {
            entrypoint: words(&["python3", "/usr/local/lib/server.py"]),
            env: words(&["GAIA_FUNCTION_DIR=/app"]),
            ..RuntimeConfig::default()
        },
    };
    ImageConfig { config: Some(rc) }
}

/// What the walk of the whole stack gave.
struct Walked {
    stack: LayerStack,
    /// Every layer was read to its end without an error.
    complete: bool,
}

/// Walks the layers top down as an image read does, checking the limits after each.
fn walk(layers: &[(Compression, Vec<u8>)], plan: &Plan, limits: &ReadLimits) -> Walked {
    let mut stack = LayerStack::default();
    let mut complete = true;
    for (i, (comp, blob)) in layers.iter().enumerate().take(limits.max_layers) {
        let digest = format!("sha256:layer{i}");
        let started = Instant::now();
        let walker = Walker {
            digest: &digest,
            plan,
            limits,
            deadline: started + limits.timeout,
        };
        let result = stack.walk_layer(&walker, *comp, &blob[..]);
        assert!(
            started.elapsed() < limits.timeout + Duration::from_secs(2),
            "a layer outlived the read's timeout: {:?}",
            started.elapsed()
        );
        within_limits(&stack, plan, limits, result.is_err());
        match result {
            Ok(w) => complete &= w.ended == Ended::Complete,
            Err(_) => {
                complete = false;
                break; // an image read stops at the first refused layer
            }
        }
    }
    Walked { stack, complete }
}

fn within_limits(stack: &LayerStack, plan: &Plan, limits: &ReadLimits, refused: bool) {
    let t = &stack.totals;
    assert!(
        t.unpacked_bytes <= limits.max_unpacked_bytes,
        "unpacked {}",
        t.unpacked_bytes
    );
    // The entry over the limit is counted, then refused.
    assert!(
        t.entries <= limits.max_entries + u64::from(refused),
        "entries {}",
        t.entries
    );
    let found = &stack.found;
    assert!(
        found.files.len() <= limits.max_files,
        "files {}",
        found.files.len()
    );
    let kept: u64 = found.files.values().map(|b| b.len() as u64).sum();
    assert!(
        kept <= found.kept_bytes && found.kept_bytes <= limits.max_kept_bytes,
        "kept {kept}"
    );
    for (path, bytes) in &found.files {
        assert!(
            bytes.len() as u64 <= limits.max_file_bytes,
            "{path}: {} bytes",
            bytes.len()
        );
        in_function(path, plan);
    }
    for (link, target) in &found.links {
        in_function(link, plan);
        assert!(
            plan.root_of(target).is_some(),
            "{link} -> {target} leaves the function"
        );
        assert_eq!(paths::normalise(target).as_deref(), Some(target.as_str()));
    }
}

fn in_function(path: &str, plan: &Plan) {
    assert_eq!(
        paths::normalise(path).as_deref(),
        Some(path),
        "not normalised: {path:?}"
    );
    assert!(path.ends_with(".py"), "{path:?}");
    assert!(
        plan.root_of(path).is_some() || plan.entry_file.as_deref() == Some(path),
        "{path:?} is outside the function's directories {:?}",
        plan.roots
    );
}

fn select(read: Walked, plan: &Plan) {
    let found = &read.stack.found;
    // A link is the contents of the file its chain of links ends at, unless a file of its own
    // name was kept.
    let known: BTreeMap<String, Vec<u8>> = found
        .links
        .keys()
        .filter_map(|l| {
            let mut at = found.links.get(l)?;
            for _ in 0..gaia_image_source::read::MAX_LINK_HOPS {
                if let Some(b) = found.files.get(at) {
                    return Some((l.clone(), b.clone()));
                }
                at = found.links.get(at)?;
            }
            None
        })
        .chain(found.files.iter().map(|(p, b)| (p.clone(), b.clone())))
        .collect();
    let (files, entry) = read.stack.select(plan);
    for f in &files {
        let kept = known
            .get(&f.path)
            .unwrap_or_else(|| panic!("{} was not kept", f.path));
        assert_eq!(&f.bytes, kept, "{}", f.path);
    }
    if let Some(e) = entry {
        assert!(
            files.iter().any(|f| f.path == e),
            "entry {e} not among the files"
        );
    }
}

fn raw(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let mut layers = Vec::new();
    let mut left = rest;
    for i in 0..4 {
        let comp = if i < 3 {
            compression(selector >> (2 * i))
        } else {
            Compression::None
        };
        match find(left, SEPARATOR) {
            Some(at) if i < 3 => {
                layers.push((comp, left[..at].to_vec()));
                left = &left[at + SEPARATOR.len()..];
            }
            _ => {
                layers.push((comp, left.to_vec()));
                break;
            }
        }
    }
    let plan = Plan::new(&config(0), None, None);
    let limits = limits(selector >> 6);
    let read = walk(&layers, &plan, &limits);
    select(read, &plan);
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

// ---- the structure-aware stack ----

const DIRS: &[&str] = &[
    "app",
    "app/lib",
    "app/pkg",
    "workspace",
    "",
    "usr/local/lib",
    "app/tests",
    "app/.venv/lib/python3.12/site-packages",
    "etc",
    "function",
];
/// The first four are always function files when under a function directory.
const NAMES: &[&str] = &[
    "func.py",
    "model.py",
    "util.py",
    "main.py",
    "__init__.py",
    "server.py",
    "test_func.py",
    "setup.py",
    "pyvenv.cfg",
    "README.md",
];
const LINK_TARGETS: &[&str] = &[
    "model.py",
    "../lib/util.py",
    "/etc/passwd",
    "/app/func.py",
    "../../../../x.py",
    "lib",
    "",
    "/workspace/main.py",
];
const CONTENTS: &[&str] = &[
    "import torch\nmodel = torch.nn.Linear(8, 8).cuda()\n",
    "def handle(req):\n    return {}\n",
    "from lib import util\nfrom .model import m\n",
    "import importlib\nimportlib.import_module('model')\n",
];

#[derive(Debug, Arbitrary)]
enum Kind {
    File {
        content: u8,
        stamp: u8,
    },
    /// A file of `kib` KiB of zeros: gzip and zstd make it a few bytes (a tar bomb in small).
    Zeros {
        kib: u8,
    },
    /// A file whose PAX `size` record gives its length while its header says `header_size`.
    PaxSized {
        content: u8,
        repeat: u8,
        header_size: u8,
    },
    Dir,
    Symlink(u8),
    HardLink(u8),
    Whiteout,
    Opaque,
}

#[derive(Debug, Arbitrary)]
struct Entry {
    dir: u8,
    name: u8,
    /// `./` or `/` before the name, or a `..` step inside it.
    spelling: u8,
    kind: Kind,
}

#[derive(Debug, Arbitrary)]
struct Layer {
    compression: u8,
    entries: Vec<Entry>,
    /// Cut the blob to this fraction (of 256), or change one byte: a corrupt layer.
    cut: Option<u8>,
    flip: Option<(u16, u8)>,
}

#[derive(Debug, Arbitrary)]
struct Stack {
    config: u8,
    limits: u8,
    layers: Vec<Layer>,
}

/// One entry as the model sees it.
#[derive(Debug, Clone)]
enum Model {
    File(Vec<u8>),
    Link(String),
    Other,
    Whiteout(String),
    Opaque(String),
}

fn pick(list: &'static [&'static str], i: u8) -> &'static str {
    list[usize::from(i) % list.len()]
}

fn header(name: &str, kind: tar::EntryType, size: u64, link: &str) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    // Names written as they are: the tar crate's setters refuse `..`, which is the point.
    let old = h.as_old_mut();
    let n = name.as_bytes();
    old.name[..n.len().min(100)].copy_from_slice(&n[..n.len().min(100)]);
    let l = link.as_bytes();
    old.linkname[..l.len().min(100)].copy_from_slice(&l[..l.len().min(100)]);
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
    h.set_mtime(1);
    h.set_cksum();
    h
}

/// The layer's tar, and its entries as the model sees them (path, normalised; `None` for a
/// path that leaves the root).
fn build(layer: &Layer) -> (Vec<u8>, Vec<(Option<String>, Model)>, bool) {
    let mut tar = Vec::new();
    let mut model = Vec::new();
    let mut odd = false;
    for e in layer.entries.iter().take(24) {
        let dir = pick(DIRS, e.dir);
        let base = match &e.kind {
            Kind::Dir => pick(&["lib", "pkg", "tests", "app"], e.name).to_string(),
            Kind::Whiteout => {
                // Deletes a name or a directory of this directory.
                let victims = ["func.py", "model.py", "util.py", "main.py", "lib", "pkg"];
                format!(
                    "{WHITEOUT_PREFIX}{}",
                    victims[usize::from(e.name) % victims.len()]
                )
            }
            Kind::Opaque => OPAQUE_MARKER.to_string(),
            _ => pick(NAMES, e.name).to_string(),
        };
        let path = if dir.is_empty() {
            base.to_string()
        } else {
            format!("{dir}/{base}")
        };
        let spelled = match e.spelling % 8 {
            1 => format!("./{path}"),
            2 => format!("/{path}"),
            3 => {
                odd = true;
                format!("{dir}/../{path}")
            }
            4 => {
                odd = true;
                format!("../{path}")
            }
            _ => path.clone(),
        };
        let normal = paths::normalise(&spelled);
        let mut pax_header = None;
        let (kind, data, link, m): (tar::EntryType, Vec<u8>, &str, Model) = match &e.kind {
            Kind::File { content, stamp } => {
                let mut d = pick(CONTENTS, *content).as_bytes().to_vec();
                d.extend_from_slice(format!("# {stamp}\n").as_bytes());
                (tar::EntryType::Regular, d.clone(), "", Model::File(d))
            }
            Kind::Zeros { kib } => {
                let d = vec![0u8; usize::from(*kib) * 1024];
                (tar::EntryType::Regular, d.clone(), "", Model::File(d))
            }
            Kind::PaxSized {
                content,
                repeat,
                header_size,
            } => {
                let d = pick(CONTENTS, *content)
                    .repeat(usize::from(*repeat) + 1)
                    .into_bytes();
                tar.extend_from_slice(&pax_size_record(d.len()));
                pax_header = Some(u64::from(*header_size));
                (tar::EntryType::Regular, d.clone(), "", Model::File(d))
            }
            Kind::Dir => (tar::EntryType::Directory, Vec::new(), "", Model::Other),
            Kind::Symlink(t) => {
                let t = pick(LINK_TARGETS, *t);
                (
                    tar::EntryType::Symlink,
                    Vec::new(),
                    t,
                    Model::Link(t.to_string()),
                )
            }
            Kind::HardLink(t) => {
                odd = true; // resolved against the archive, not the directory: not modelled
                let t = pick(LINK_TARGETS, *t);
                (tar::EntryType::Link, Vec::new(), t, Model::Other)
            }
            Kind::Whiteout => {
                let victim = normal.as_deref().map(|n| {
                    let (d, f) = (paths::parent(n), paths::file_name(n));
                    let gone = &f[WHITEOUT_PREFIX.len()..];
                    if d.is_empty() {
                        gone.to_string()
                    } else {
                        format!("{d}/{gone}")
                    }
                });
                (
                    tar::EntryType::Regular,
                    Vec::new(),
                    "",
                    Model::Whiteout(victim.unwrap_or_default()),
                )
            }
            Kind::Opaque => (
                tar::EntryType::Regular,
                Vec::new(),
                "",
                Model::Opaque(
                    normal
                        .as_deref()
                        .map(paths::parent)
                        .unwrap_or_default()
                        .to_string(),
                ),
            ),
        };
        let size = pax_header.take().unwrap_or(data.len() as u64);
        tar.extend_from_slice(header(&spelled, kind, size, link).as_bytes());
        tar.extend_from_slice(&data);
        tar.resize(tar.len().div_ceil(512) * 512, 0);
        model.push((normal, m));
    }
    tar.extend_from_slice(&[0u8; 1024]);
    (tar, model, odd)
}

/// A PAX extended header whose one record sets the next entry's size.
fn pax_size_record(size: usize) -> Vec<u8> {
    let body = format!("size={size}\n");
    let mut len = body.len() + 3;
    while format!("{len} {body}").len() != len {
        len += 1;
    }
    let record = format!("{len} {body}");
    let mut out = header(
        "PaxHeaders/x",
        tar::EntryType::XHeader,
        record.len() as u64,
        "",
    )
    .as_bytes()
    .to_vec();
    out.extend_from_slice(record.as_bytes());
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

fn compress(comp: Compression, tar: Vec<u8>) -> Vec<u8> {
    match comp {
        Compression::None => tar,
        Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&tar).expect("gzip in memory");
            e.finish().expect("gzip in memory")
        }
        Compression::Zstd => {
            ruzstd::encoding::compress_to_vec(&tar[..], ruzstd::encoding::CompressionLevel::Fastest)
        }
    }
}

fn is_under(path: &str, dir: &str) -> bool {
    paths::is_under(path, dir)
}

/// Whether the layers above `layer` hide `path`.
fn hidden(models: &[Vec<(Option<String>, Model)>], layer: usize, path: &str) -> bool {
    models[..layer].iter().flatten().any(|(p, m)| match m {
        Model::Whiteout(gone) => is_under(path, gone),
        Model::Opaque(dir) => path != dir && is_under(path, dir),
        _ => p.as_deref() == Some(path),
    })
}

fn structured(rest: &[u8]) {
    let Ok(s) = Stack::arbitrary_take_rest(Unstructured::new(rest)) else {
        return;
    };
    let plan = Plan::new(&config(s.config), None, None);
    let limits = limits(s.limits);
    let mut blobs = Vec::new();
    let mut models = Vec::new();
    let mut intact = true;
    for l in s.layers.iter().take(4) {
        let comp = compression(l.compression);
        let (tar, model, odd) = build(l);
        let mut blob = compress(comp, tar);
        if let Some(c) = l.cut {
            blob.truncate(blob.len() * usize::from(c) / 256);
            intact = false;
        }
        if let Some((at, x)) = l.flip {
            if !blob.is_empty() && x != 0 {
                let at = usize::from(at) % blob.len();
                blob[at] ^= x;
                intact = false;
            }
        }
        intact &= !odd;
        blobs.push((comp, blob));
        models.push(model);
    }
    let read = walk(&blobs, &plan, &limits);
    if intact && read.complete {
        model_check(&read.stack, &models, &plan, &limits);
    }
    select(read, &plan);
}

/// The overlay, as the OCI image spec describes it, against what the walk kept.
fn model_check(
    stack: &LayerStack,
    models: &[Vec<(Option<String>, Model)>],
    plan: &Plan,
    limits: &ReadLimits,
) {
    let topmost = |path: &str| {
        models
            .iter()
            .position(|l| l.iter().any(|(p, _)| p.as_deref() == Some(path)))
    };
    for (path, bytes) in &stack.found.files {
        let layer = topmost(path).expect("a file no layer holds");
        assert!(
            !hidden(models, layer, path),
            "{path} is hidden by a layer above {layer}"
        );
        let copies: Vec<&Vec<u8>> = models[layer]
            .iter()
            .filter(|(p, _)| p.as_deref() == Some(path))
            .filter_map(|(_, m)| match m {
                Model::File(b) => Some(b),
                _ => None,
            })
            .collect();
        assert!(
            copies.contains(&bytes),
            "{path}: not the contents of its topmost copy"
        );
    }
    // Every visible function file (plain names in plain function directories) within the
    // limits is kept; a visible function symlink out of the function is refused (the walk
    // would have failed, and it did not).
    for (layer, entries) in models.iter().enumerate() {
        for (path, m) in entries {
            let Some(path) = path.as_deref() else {
                continue;
            };
            if topmost(path) != Some(layer) || hidden(models, layer, path) {
                continue;
            }
            let plain_dir = ["app", "app/lib", "app/pkg", "workspace", "function"]
                .iter()
                .any(|d| paths::parent(path) == *d);
            let plain_name = NAMES[..4].contains(&paths::file_name(path));
            if !(plain_dir && plain_name && plan.root_of(path).is_some()) {
                continue;
            }
            match m {
                Model::File(b) if b.len() as u64 <= limits.max_file_bytes => {
                    assert!(stack.found.files.contains_key(path), "{path} was not kept");
                }
                Model::Link(t) => {
                    let inside = paths::join(paths::parent(path), t)
                        .is_some_and(|t| plan.root_of(&t).is_some());
                    assert!(
                        inside,
                        "{path} -> {t} leaves the function and was not refused"
                    );
                }
                _ => {}
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((0xFF, rest)) => structured(rest),
        _ => raw(data),
    }
});
