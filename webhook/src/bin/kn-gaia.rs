//! `kn-gaia`: Gaia's `kn` plugin (`kn gaia classify/status/explain ...`). See `gaia_webhook::cli`.

use clap::Parser;

fn main() {
    let cli = gaia_webhook::cli::Cli::parse();
    std::process::exit(gaia_webhook::cli::run(cli));
}
