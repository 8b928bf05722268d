//! `gaia-autoscaler`: Gaia's Dynamic Function Runtime. See the library crate.

use std::process::ExitCode;

use clap::Parser;
use gaia_contract::logging::init_logging;

#[tokio::main]
async fn main() -> ExitCode {
    let args = gaia_autoscaler::config::Args::parse();
    init_logging(args.log_format);
    match gaia_autoscaler::run::run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "gaia-autoscaler stopped");
            eprintln!("gaia-autoscaler: {e}");
            ExitCode::FAILURE
        }
    }
}
