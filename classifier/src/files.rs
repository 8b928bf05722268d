//! Reading a function from disk: a file, or every `*.py` of a directory, bounded by the
//! [`Limits`].

use std::path::Path;

use crate::{classify, Classification, Error, Limits, SourceFile};

/// Most directory entries visited by [`classify_path`] (a guard against huge trees).
const MAX_WALK_ENTRIES: usize = 100_000;

fn collect_py(
    root: &Path,
    dir: &Path,
    out: &mut Vec<SourceFile>,
    limits: &Limits,
    visited: &mut usize,
) -> Result<(), Error> {
    let io = |e: std::io::Error| Error::Io {
        path: dir.display().to_string(),
        source: e,
    };
    let mut entries: Vec<std::fs::DirEntry> = std::fs::read_dir(dir)
        .map_err(io)?
        .collect::<Result<_, _>>()
        .map_err(io)?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        *visited += 1;
        if *visited > MAX_WALK_ENTRIES {
            return Err(Error::TooManyFiles {
                count: *visited,
                limit: MAX_WALK_ENTRIES,
            });
        }
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let ty = entry.file_type().map_err(io)?;
        if ty.is_dir() {
            // Hidden directories, virtual environments and caches are not the function's code.
            if name.starts_with('.')
                || matches!(
                    name.as_ref(),
                    "__pycache__" | "venv" | "env" | "site-packages" | "node_modules"
                )
            {
                continue;
            }
            collect_py(root, &path, out, limits, visited)?;
        } else if ty.is_file() && name.ends_with(".py") {
            if out.len() >= limits.max_files {
                return Err(Error::TooManyFiles {
                    count: out.len() + 1,
                    limit: limits.max_files,
                });
            }
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            let meta = entry.metadata().map_err(io)?;
            if meta.len() > limits.max_file_bytes as u64 {
                return Err(Error::InputTooLarge {
                    what: rel,
                    size: usize::try_from(meta.len()).unwrap_or(usize::MAX),
                    limit: limits.max_file_bytes,
                });
            }
            let bytes = std::fs::read(&path).map_err(|e| Error::Io {
                path: path.display().to_string(),
                source: e,
            })?;
            out.push(SourceFile { path: rel, bytes });
        }
    }
    Ok(())
}

/// Reads the function at `path` (a file, or a directory: every `*.py` under it, skipping hidden
/// directories, `__pycache__` and virtual environments) and classifies it.
pub fn classify_path(path: &Path, limits: &Limits) -> Result<Classification, Error> {
    let meta = std::fs::metadata(path).map_err(|e| Error::Io {
        path: path.display().to_string(),
        source: e,
    })?;
    let files = if meta.is_dir() {
        let mut files = Vec::new();
        let mut visited = 0;
        collect_py(path, path, &mut files, limits, &mut visited)?;
        files
    } else {
        if meta.len() > limits.max_file_bytes as u64 {
            return Err(Error::InputTooLarge {
                what: path.display().to_string(),
                size: usize::try_from(meta.len()).unwrap_or(usize::MAX),
                limit: limits.max_file_bytes,
            });
        }
        let bytes = std::fs::read(path).map_err(|e| Error::Io {
            path: path.display().to_string(),
            source: e,
        })?;
        let name = path.file_name().map_or_else(
            || "func.py".to_owned(),
            |n| n.to_string_lossy().into_owned(),
        );
        vec![SourceFile { path: name, bytes }]
    };
    classify(&files, limits)
}
