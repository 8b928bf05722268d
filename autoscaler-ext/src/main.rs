//! `gaia-autoscaler`: see the library crate.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let args = gaia_autoscaler::config::Args::parse();
    match gaia_autoscaler::run::run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gaia-autoscaler: {e}");
            ExitCode::FAILURE
        }
    }
}
