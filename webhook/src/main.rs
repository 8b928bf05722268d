//! `gaia-webhook`: the mutating admission webhook. See `gaia_webhook::app`.

fn main() -> std::process::ExitCode {
    gaia_webhook::app::main()
}
