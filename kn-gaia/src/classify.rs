//! `kn gaia classify PATH|IMAGE... [-o text|json]`: each PATH (a file, or a directory holding one
//! function) is classified on its own; an argument that is not a path on disk but an image
//! reference (`registry/repo:tag`, `...@sha256:...`) is read from its registry with the
//! webhook's own image source (`gaia-image-source`). Exit 0 when every argument was classified;
//! 1 (with one line on stderr per argument) otherwise.

use std::io::Write;
use std::path::PathBuf;

use serde::Serialize;

use crate::cli::Output;
use crate::explain::{write_finding, ShownFinding};
use gaia_classifier::{self as classifier, Classification, Finding, Limits};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Function source files or directories, or image references.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// A registry (`host[:port]`) spoken to over plain HTTP (repeatable).
    #[arg(long = "plain-http", value_name = "REGISTRY")]
    pub plain_http: Vec<String>,
    /// A PEM file of a CA trusted for registries (repeatable).
    #[arg(long = "ca-file", value_name = "PEM")]
    pub ca_files: Vec<PathBuf>,
    /// Registry credentials: a Docker config.json / `.dockerconfigjson` (default:
    /// $DOCKER_CONFIG/config.json, else ~/.docker/config.json, when present).
    #[arg(long = "registry-config", value_name = "FILE")]
    pub registry_config: Option<PathBuf>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
    pub output: Output,
    /// Largest function to read, in bytes (all files together).
    #[arg(long, default_value_t = Limits::default().max_total_bytes)]
    pub max_bytes: usize,
}

/// One line of `-o json`.
#[derive(Serialize)]
struct JsonLine<'a> {
    path: String,
    mode: gaia_contract::ExecutionMode,
    rationale: &'a str,
    findings: &'a [Finding],
    fallback: bool,
}

/// Classifies on a thread with the stack the classifier needs.
fn classify_on_thread(path: PathBuf, limits: Limits) -> Result<Classification, String> {
    let stack = limits.required_stack_bytes();
    let shown = path.display().to_string();
    std::thread::Builder::new()
        .name("classify".into())
        .stack_size(stack)
        .spawn(move || classifier::classify_path(&path, &limits))
        .map_err(|e| format!("cannot start a thread: {e}"))?
        .join()
        .map_err(|_| format!("{shown}: the classifier failed"))?
        .map_err(|e| e.to_string())
}

fn write_text(out: &mut impl Write, path: &str, c: &Classification) -> std::io::Result<()> {
    writeln!(out, "{path}: {}", c.mode)?;
    writeln!(out, "  {}", c.rationale)?;
    for f in &c.findings {
        write_finding(out, &ShownFinding::from(f))?;
    }
    Ok(())
}

/// Whether a command-line argument names an image rather than a path: not on disk, and a
/// reference with a repository path or a tag or digest.
fn is_image(arg: &std::path::Path) -> bool {
    let text = arg.to_string_lossy();
    !arg.exists()
        && !text.starts_with('.')
        && !text.starts_with('/')
        && !text.ends_with(".py")
        && (text.contains(':') || text.contains('@'))
        && gaia_image_source::registry::registry_of(&text).is_some()
}

/// The Docker config with credentials, as a pull secret.
fn registry_credentials(args: &Args) -> Result<Vec<gaia_image_source::PullSecret>, String> {
    let path = match &args.registry_config {
        Some(p) => Some(p.clone()),
        None => std::env::var_os("DOCKER_CONFIG")
            .map(|d| PathBuf::from(d).join("config.json"))
            .or_else(|| {
                std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json"))
            })
            .filter(|p| p.exists()),
    };
    let Some(path) = path else {
        return Ok(Vec::new());
    };
    let data = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(vec![gaia_image_source::PullSecret {
        name: path.display().to_string(),
        data,
        legacy: false,
    }])
}

/// Reads the function out of an image, then classifies it like a directory.
fn classify_image(
    args: &Args,
    image: &str,
    limits: &Limits,
) -> Result<(Classification, String), String> {
    let secrets = registry_credentials(args)?;
    let options = gaia_image_source::RegistryOptions {
        plain_http: args.plain_http.clone(),
        ca_files: args.ca_files.clone(),
        ..Default::default()
    };
    let read = crate::cli::block_on(async {
        let reader = gaia_image_source::ImageReader {
            registries: gaia_image_source::Registries::new(options)
                .map_err(|e| crate::Error::Internal(e.to_string()))?,
            limits: gaia_image_source::ReadLimits::default(),
        };
        let resolved = reader
            .registries
            .resolve(image, &secrets)
            .await
            .map_err(|e| crate::Error::Internal(e.to_string()))?;
        reader
            .read(resolved, &secrets, &gaia_image_source::Command::default())
            .await
            .map_err(|e| crate::Error::Internal(e.to_string()))
    })
    .map_err(|e| e.to_string())?;
    if read.files.is_empty() {
        return Err(format!(
            "no Python function found in the image (looked in /{})",
            read.roots.join(", /")
        ));
    }
    let note = format!(
        "read from {}@{}: {} file(s), {} of {} layer(s) read, {} bytes downloaded",
        image,
        read.digest,
        read.files.len(),
        read.stats.layers_read - read.stats.layers_skipped,
        read.stats.layers,
        read.stats.downloaded_bytes
    );
    let stack = limits.required_stack_bytes();
    let (files, limits) = (read.files, limits.clone());
    let c = std::thread::Builder::new()
        .name("classify".into())
        .stack_size(stack)
        .spawn(move || classifier::classify(&files, &limits))
        .map_err(|e| format!("cannot start a thread: {e}"))?
        .join()
        .map_err(|_| "the classifier failed".to_string())?
        .map_err(|e| e.to_string())?;
    Ok((c, note))
}

/// Runs the subcommand, writing results to `out` and errors to `err`. Returns the exit code.
pub fn run(args: &Args, out: &mut impl Write, err: &mut impl Write) -> i32 {
    let limits = Limits {
        max_total_bytes: args.max_bytes,
        max_file_bytes: args.max_bytes,
        ..Limits::default()
    };
    let mut failed = false;
    for path in &args.paths {
        let shown = path.display().to_string();
        let result = if is_image(path) {
            classify_image(args, &shown, &limits).map(|(c, note)| {
                if args.output == Output::Text {
                    let _ = writeln!(err, "kn-gaia: {note}");
                }
                c
            })
        } else {
            classify_on_thread(path.clone(), limits.clone())
        };
        match result {
            Ok(c) => {
                let written = match args.output {
                    Output::Text => write_text(out, &shown, &c),
                    Output::Json => {
                        let line = JsonLine {
                            path: shown.clone(),
                            mode: c.mode,
                            rationale: &c.rationale,
                            findings: &c.findings,
                            fallback: c.fallback,
                        };
                        match serde_json::to_string(&line) {
                            Ok(s) => writeln!(out, "{s}"),
                            Err(e) => writeln!(err, "kn-gaia: {shown}: {e}"),
                        }
                    }
                };
                if written.is_err() {
                    return 1;
                }
            }
            Err(e) => {
                failed = true;
                // I/O errors already name the path.
                let line = if e.starts_with(&shown) {
                    format!("kn-gaia: {e}")
                } else {
                    format!("kn-gaia: {shown}: {e}")
                };
                let _ = writeln!(err, "{line}");
            }
        }
    }
    i32::from(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_cli(paths: &[&str], output: Output) -> (i32, String, String) {
        let args = Args {
            paths: paths.iter().map(PathBuf::from).collect(),
            output,
            max_bytes: Limits::default().max_total_bytes,
            plain_http: Vec::new(),
            ca_files: Vec::new(),
            registry_config: None,
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run(&args, &mut out, &mut err);
        (
            code,
            String::from_utf8_lossy(&out).into_owned(),
            String::from_utf8_lossy(&err).into_owned(),
        )
    }

    fn example(name: &str) -> String {
        format!(
            "{}/../examples/functions/{name}",
            env!("CARGO_MANIFEST_DIR")
        )
    }

    #[test]
    fn image_references_are_told_from_paths() {
        assert!(is_image(std::path::Path::new("registry.example/team/f:v1")));
        assert!(is_image(std::path::Path::new("127.0.0.1:5000/fn@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")));
        assert!(!is_image(std::path::Path::new(&example("matmul"))));
        assert!(!is_image(std::path::Path::new("./func.py")));
        assert!(!is_image(std::path::Path::new("no/such/dir")));
    }

    #[test]
    fn json_lines_per_path_and_exit_codes() {
        let (code, out, err) = run_cli(&[&example("matmul"), &example("idle_wait")], Output::Json);
        assert_eq!(code, 0, "{err}");
        let lines: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["mode"], "cpu_preferred");
        assert_eq!(lines[1]["mode"], "cpu");
        for l in &lines {
            for key in ["path", "mode", "rationale", "findings", "fallback"] {
                assert!(l.get(key).is_some(), "{key} missing in {l}");
            }
        }

        let (code, out, err) = run_cli(&["/no/such/function", &example("idle_wait")], Output::Text);
        assert_eq!(code, 1);
        assert!(out.contains("idle_wait: cpu"), "{out}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("kn-gaia: /no/such/function"), "{err}");
    }
}
