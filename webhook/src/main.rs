//! `gaia-webhook`: the mutating admission webhook. See the library crate.

use std::process::ExitCode;

use clap::Parser;
use gaia_contract::logging::init_logging;

#[tokio::main]
async fn main() -> ExitCode {
    let args = gaia_webhook::config::Args::parse();
    init_logging(args.log_format);
    match gaia_webhook::run::run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "gaia-webhook stopped");
            eprintln!("gaia-webhook: {e}");
            ExitCode::FAILURE
        }
    }
}
