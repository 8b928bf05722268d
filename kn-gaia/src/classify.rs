//! `kn gaia classify PATH... [-o text|json]`: each PATH (a file, or a directory holding one
//! function) is classified on its own. Exit 0 when every PATH was classified; 1 (with one line on
//! stderr per PATH) otherwise.

use std::io::Write;
use std::path::PathBuf;

use serde::Serialize;

use crate::cli::Output;
use crate::explain::{write_finding, ShownFinding};
use gaia_classifier::{self as classifier, Classification, Finding, Limits};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Function source files or directories.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
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
        match classify_on_thread(path.clone(), limits.clone()) {
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
