//! `gaia-replay`: writes the virtual-clock evaluation's results as JSON.
//!
//! ```sh
//! gaia-replay --profile tests/eval/profiles/h100.json --modes classify.txt --out results.json
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use gaia_eval::profile::Profile;
use gaia_eval::{evaluate, parse_classifier_output, Error, Options};

#[derive(Debug, Parser)]
#[command(
    name = "gaia-replay",
    about = "Virtual-clock replay of the paper's experiments"
)]
struct Args {
    /// Calibrated latency profile (schema gaia-calibration/1).
    #[arg(long)]
    profile: PathBuf,
    /// Output of `kn-gaia classify examples/functions/*` (the starting modes of auto).
    /// Without it, the modes the classifier printed when the harness was written are used.
    #[arg(long)]
    modes: Option<PathBuf>,
    /// Results file to write.
    #[arg(long)]
    out: PathBuf,
    /// Seed of the latency and cold-start draws.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Where the policy came from, recorded in the results (e.g. `git describe --dirty`).
    #[arg(long, default_value = "unrecorded")]
    source: String,
    /// Seeds for the spread of the auto runs (seed, seed+1, ...).
    #[arg(long, default_value_t = 20)]
    spread_seeds: u64,
    /// Run the ladder configuration (cpu → gpu-shared → gpu, issue 16) instead; needs a
    /// profile with a `gpu_shared` section. Prints its tables as Markdown.
    #[arg(long)]
    ladder: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gaia-replay: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<String, Error> {
    let profile = Profile::load(&args.profile)?;
    let modes = match &args.modes {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
                path: path.clone(),
                source,
            })?;
            parse_classifier_output(&text)?
        }
        None => Default::default(),
    };
    let opts = Options {
        profile_name: args
            .profile
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        source: args.source.clone(),
        seed: args.seed,
        spread_seeds: args.spread_seeds,
        modes,
    };
    if args.ladder {
        use gaia_eval::ladder::{evaluate_ladder, markdown, Slice};
        let results = [Slice::TimeSliced, Slice::Mig1g]
            .into_iter()
            .map(|slice| evaluate_ladder(&profile, &opts, slice))
            .collect::<Result<Vec<_>, _>>()?;
        let text = serde_json::to_string(&results).map_err(|source| Error::Json {
            path: args.out.clone(),
            source,
        })?;
        std::fs::write(&args.out, text).map_err(|source| Error::Write {
            path: args.out.clone(),
            source,
        })?;
        let tables: Vec<String> = results.iter().map(markdown).collect();
        return Ok(format!(
            "wrote {}\n{}",
            args.out.display(),
            tables.join("\n")
        ));
    }
    let results = evaluate(&profile, &opts)?;
    let text = serde_json::to_string(&results).map_err(|source| Error::Json {
        path: args.out.clone(),
        source,
    })?;
    std::fs::write(&args.out, text).map_err(|source| Error::Write {
        path: args.out.clone(),
        source,
    })?;
    let mut lines = vec![format!("wrote {}", args.out.display())];
    for s in &results.scenarios {
        for e in s.runs.iter().filter(|e| e.group == "headline") {
            let m = &e.run.summary;
            lines.push(format!(
                "{:10} {:38} total {:8.1} s  p95 {:7.3} s  cpu {:7.1} s  gpu {:7.1} s  ${:.5}  moves {}",
                s.scenario.name,
                e.run.label,
                m.total_s,
                m.p95_latency_s,
                m.cpu_node_s,
                m.gpu_node_s,
                m.cost_usd,
                m.moves
            ));
        }
    }
    Ok(lines.join("\n"))
}
