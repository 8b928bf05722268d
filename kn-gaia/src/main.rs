//! `kn-gaia`: Gaia's `kn` plugin (`kn gaia classify|status|explain|doctor ...`), also run standalone.
//! One module per subcommand; [`cli`] lists them and dispatches.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

mod autoscaler_config;
mod classify;
mod cli;
mod cluster;
mod doctor;
mod error;
mod explain;
mod prom;
mod status;
#[cfg(test)]
mod tests;

use clap::Parser;

pub use error::Error;

fn main() {
    let cli = cli::Cli::parse();
    std::process::exit(cli::run(cli));
}
