//! Prints a three-rung ladder as the autoscaler's config would hold it (JSON), for tests and
//! documentation: `cargo run -q -p gaia-policy --example ladder_config -- [shared|mig]`.

use gaia_policy::ladder::LadderConfig;

/// An H200's memory, MiB.
const H200_MIB: f64 = 143_771.0;

fn main() -> std::process::ExitCode {
    let which = std::env::args().nth(1).unwrap_or_else(|| "shared".into());
    let ladder = match which.as_str() {
        "shared" => LadderConfig::cpu_shared_gpu(H200_MIB, 7),
        "mig" => LadderConfig::cpu_mig_gpu(H200_MIB, "nvidia.com/mig-1g.18gb", 18_432.0, 7),
        other => {
            eprintln!("ladder_config: {other:?}: expected shared or mig");
            return std::process::ExitCode::FAILURE;
        }
    };
    match serde_json::to_string_pretty(&serde_json::json!({ "ladder": ladder })) {
        Ok(text) => {
            println!("{text}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ladder_config: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
