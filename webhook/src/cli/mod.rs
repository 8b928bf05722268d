//! The `kn-gaia` command line (a `kn` plugin: `kn gaia <subcommand>`). One module per
//! subcommand; [`Command`] lists them and [`run`] dispatches.

pub mod classify;

use clap::{Parser, Subcommand, ValueEnum};

/// Gaia: decides whether serverless functions run on CPU or GPU.
#[derive(Debug, Parser)]
#[command(name = "kn-gaia", bin_name = "kn gaia", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Classify function source code: cpu, cpu_preferred, gpu_preferred or gpu, and why.
    Classify(classify::Args),
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// For people.
    Text,
    /// One JSON object per line.
    Json,
}

/// Runs a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    match cli.command {
        Command::Classify(args) => classify::run(
            &args,
            &mut std::io::stdout().lock(),
            &mut std::io::stderr().lock(),
        ),
    }
}
