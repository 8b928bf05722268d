//! `kn gaia classify PATH... [-o text|json]`: each PATH (a file, or a directory holding one
//! function) is classified on its own. Exit 0 when every PATH was classified; 1 (with one line on
//! stderr per PATH) otherwise.

use std::io::Write;
use std::path::PathBuf;

use serde::Serialize;

use super::Output;
use crate::classifier::{self, Classification, Finding, Limits};

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
        let mut flags = Vec::new();
        if f.guarded {
            flags.push("guarded");
        }
        if f.heavy {
            flags.push("heavy");
        }
        let flags = if flags.is_empty() {
            String::new()
        } else {
            format!(" [{}]", flags.join(", "))
        };
        writeln!(
            out,
            "  - {} {}:{}: {}{flags}",
            f.kind, f.file, f.line, f.detail
        )?;
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
                let _ = writeln!(err, "kn-gaia: {shown}: {e}");
            }
        }
    }
    i32::from(failed)
}
