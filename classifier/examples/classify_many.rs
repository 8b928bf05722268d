//! A driver for counting the classifier's instructions (docs/classifier.md, "Measured again
//! without the noise"): `classify` on a function's files N times, or, with `--each-file`, on
//! every `.py` file under a directory as a one-file function, N times over.
//!
//! ```sh
//! cargo build --release -p gaia-classifier --example classify_many
//! valgrind --tool=callgrind target/release/examples/classify_many examples/functions/sentiment 51
//! valgrind --tool=callgrind target/release/examples/classify_many --each-file "$STDLIB" 1
//! ```

use std::path::{Path, PathBuf};

use gaia_classifier::{classify, Limits, SourceFile};

fn python_files(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, String)>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = rd.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if p.is_dir() {
            if !matches!(
                name.as_str(),
                "site-packages" | "dist-packages" | "__pycache__"
            ) {
                python_files(root, &p, out);
            }
        } else if name.ends_with(".py") {
            let rel = p
                .strip_prefix(root)
                .unwrap_or(&p)
                .to_string_lossy()
                .into_owned();
            out.push((p, rel));
        }
    }
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let each_file = args.first().is_some_and(|a| a == "--each-file");
    if each_file {
        args.remove(0);
    }
    let Some(dir) = args.first().map(PathBuf::from) else {
        eprintln!("usage: classify_many [--each-file] DIR [TIMES]");
        std::process::exit(2);
    };
    let times: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1);
    let mut found = Vec::new();
    python_files(&dir, &dir, &mut found);
    let files: Vec<SourceFile> = found
        .iter()
        .filter_map(|(p, rel)| Some(SourceFile::new(rel.clone(), std::fs::read(p).ok()?)))
        .collect();
    let limits = Limits::default();
    let mut modes = std::collections::BTreeMap::<String, usize>::new();
    for round in 0..times {
        let groups: Vec<&[SourceFile]> = if each_file {
            files.iter().map(std::slice::from_ref).collect()
        } else {
            vec![&files[..]]
        };
        for g in groups {
            let mode = match classify(g, &limits) {
                Ok(c) => c.mode.to_string(),
                Err(e) => format!("error: {e}"),
            };
            if round == 0 {
                *modes.entry(mode).or_default() += 1;
            }
        }
    }
    let bytes: usize = files.iter().map(|f| f.bytes.len()).sum();
    println!(
        "{} files, {bytes} bytes, {times} times: {modes:?}",
        files.len()
    );
}
