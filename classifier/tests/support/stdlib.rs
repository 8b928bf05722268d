//! The machine's CPython standard library as test input, for the stdlib robustness test
//! (tests/classifier_stdlib.rs) and the classifier benchmark (benches/classifier.rs), each of
//! which includes this file with `#[path]`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The standard library's directory, as `python3` on the PATH reports it; `None` without one.
pub fn stdlib_dir() -> Option<PathBuf> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['stdlib'])",
        ])
        .output()
        .ok()?;
    let dir = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!dir.is_empty()).then(|| PathBuf::from(dir))
}

/// Appends every `.py` file under `dir` to `out`, in file-name order within each directory,
/// outside `site-packages`, `dist-packages` and `__pycache__`.
pub fn python_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = rd.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        match e.file_type() {
            Ok(t)
                if t.is_dir()
                    && name != "site-packages"
                    && name != "dist-packages"
                    && name != "__pycache__" =>
            {
                python_files(&p, out);
            }
            Ok(t) if t.is_file() && name.ends_with(".py") => out.push(p),
            _ => {}
        }
    }
}
