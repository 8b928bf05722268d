//! The `kn-gaia` command line (a `kn` plugin: `kn gaia <subcommand>`, or run standalone). One
//! module per subcommand; [`Command`] lists them and [`run`] dispatches.

use crate::{classify, doctor, explain, status};
use clap::{Parser, Subcommand, ValueEnum};

/// Gaia: decides whether serverless functions run on CPU or GPU.
#[derive(Debug, Parser)]
#[command(name = "kn-gaia", bin_name = "kn gaia", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub kube: KubeArgs,
}

/// How to reach the cluster (`status`, `explain`). Global, because `kn` passes its own flags
/// first: `kn --kubeconfig X gaia status` runs `kn-gaia --kubeconfig X status`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct KubeArgs {
    /// kubeconfig file (default: $KUBECONFIG, else ~/.kube/config).
    #[arg(long, global = true)]
    pub kubeconfig: Option<std::path::PathBuf>,
    /// kubeconfig context (default: the current one).
    #[arg(long, global = true)]
    pub context: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Classify function source code: cpu, cpu_preferred, gpu_preferred or gpu, and why.
    Classify(classify::Args),
    /// Opted-in Services: mode, placement, SLO, current and remembered p95, last move.
    Status(status::Args),
    /// Why a Service has its mode (rationale, findings) and the autoscaler's decisions (Events).
    Explain(explain::Args),
    /// Is the cluster ready for Gaia? Each check with the exact fix.
    Doctor(doctor::Args),
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// For people.
    Text,
    /// One JSON object per line.
    Json,
}

/// Runs a future on a small runtime of its own (the subcommands that read the cluster).
pub(crate) fn block_on<T>(
    f: impl std::future::Future<Output = Result<T, crate::Error>>,
) -> Result<T, crate::Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| crate::Error::Internal(format!("cannot start a runtime: {e}")))?
        .block_on(f)
}

/// Runs a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    let (out, err) = (&mut std::io::stdout().lock(), &mut std::io::stderr().lock());
    match cli.command {
        Command::Classify(args) => classify::run(&args, out, err),
        Command::Status(args) => status::run(&args, &cli.kube, out, err),
        Command::Explain(args) => explain::run(&args, &cli.kube, out, err),
        Command::Doctor(args) => doctor::run(&args, &cli.kube, out, err),
    }
}
