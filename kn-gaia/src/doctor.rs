//! `kn gaia doctor [--prometheus URL] [-o text|json]`: is this cluster ready for Gaia? The
//! preflight (gaia-preflight) with the autoscaler's own configuration (its ConfigMap): Knative
//! and its release, config-features, metrics export, Prometheus and the request series the
//! autoscaler's query finds, the GPU-pool nodes, the webhook's caBundle. One line per check,
//! ✓ / ! / ✗, and under each one that is not passing the exact fix. Exit 0 when nothing fails
//! (warnings allowed), 1 otherwise.

use std::io::Write;

use gaia_contract::queries::{ChosenBy, Generation, GenerationChoice, LabelLayout};
use gaia_preflight::gate::generation_choice;
use gaia_preflight::gather::gather;
use gaia_preflight::{evaluate, Expectations, Report, Status};

use crate::autoscaler_config::{self, Origin};
use crate::cli::{KubeArgs, Output};
use crate::cluster;
use crate::Error;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Prometheus base URL as seen from here (default: the autoscaler's `prometheus.url`,
    /// which is often an in-cluster name).
    #[arg(long, env = "GAIA_PROMETHEUS_URL")]
    pub prometheus: Option<String>,
    /// Where Gaia is installed.
    #[arg(long, default_value = "gaia-system")]
    pub gaia_namespace: String,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
    pub output: Output,
}

pub fn run(args: &Args, kube: &KubeArgs, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    match crate::cli::block_on(report(args, kube)) {
        Ok((report, origin, choice)) => {
            let written = match args.output {
                Output::Text => write_text(&report, &origin, &choice, out),
                Output::Json => serde_json::to_writer(&mut *out, &json(&report, &choice))
                    .map_err(std::io::Error::other)
                    .and_then(|()| writeln!(out)),
            };
            if let Err(e) = written {
                let _ = writeln!(err, "kn gaia doctor: {e}");
                return 1;
            }
            i32::from(report.failed().next().is_some())
        }
        Err(e) => {
            let _ = writeln!(err, "kn gaia doctor: {e}");
            1
        }
    }
}

/// `-o json`: the checks, and which metric generation the autoscaler queries and why
/// (`metrics.generation`, `metrics.chosenBy`: configured, release, series or default;
/// `metrics.seriesFound`: the generations whose request series Prometheus holds;
/// `metrics.labels`, `metrics.labelsChosenBy`: the label layout queried, configured, from the
/// series or by default).
pub fn json(report: &Report, choice: &GenerationChoice) -> serde_json::Value {
    let (by, version, source) = match &choice.by {
        ChosenBy::Configured => ("configured", None, None),
        ChosenBy::Release { version, source } => {
            ("release", Some(version.to_string()), Some(source.clone()))
        }
        ChosenBy::Series => ("series", None, None),
        ChosenBy::Default => ("default", None, None),
    };
    serde_json::json!({
        "checks": report.checks,
        "metrics": {
            "generation": choice.generation.name(),
            "chosenBy": by,
            "knativeVersion": version,
            "versionSource": source,
            "seriesFound": choice
                .series
                .as_ref()
                .map(|s| s.iter().map(|g| g.name()).collect::<Vec<_>>()),
            "labels": choice.layout.name(),
            "labelsChosenBy": choice.layout_by.name(),
            "why": choice.why(),
        },
    })
}

type Outcome = (Report, Origin, GenerationChoice);

async fn report(args: &Args, kube: &KubeArgs) -> Result<Outcome, Error> {
    let cluster = cluster::connect(kube).await?;
    let (view, origin) = autoscaler_config::load(&cluster.client, &args.gaia_namespace).await?;
    let mut prometheus = view.prometheus.clone();
    if let Some(url) = &args.prometheus {
        prometheus.url = url.clone();
    }
    let mut want = Expectations::installed(view.placement.clone(), prometheus);
    want.gaia_namespace = args.gaia_namespace.clone();
    let queries = |g: Generation, l: LabelLayout| view.queries_for(g, l);
    let facts = gather(&cluster.client, &want, &queries)
        .await
        .map_err(|e| Error::Internal(e.to_string()))?;
    let choice = generation_choice(&facts, &want.prometheus);
    Ok((evaluate(&facts, &want), origin, choice))
}

fn write_text(
    report: &Report,
    origin: &Origin,
    choice: &GenerationChoice,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    match origin {
        Origin::ConfigMap(name) => writeln!(out, "Gaia's configuration: {name}")?,
        Origin::Defaults => writeln!(
            out,
            "Gaia's configuration: not found, the autoscaler's defaults assumed"
        )?,
    }
    writeln!(out, "metrics queried: {}", choice.why())?;
    for c in &report.checks {
        let mark = match c.status {
            Status::Pass => "✓",
            Status::Warn => "!",
            Status::Fail => "✗",
        };
        writeln!(out, "{mark} {:<17} {}", c.id.to_string(), c.summary)?;
        if let Some(fix) = &c.fix {
            writeln!(out, "  {:<17} fix: {fix}", "")?;
        }
    }
    let failed = report.failed().count();
    if failed == 0 {
        writeln!(out, "ready for Gaia")
    } else {
        writeln!(out, "{failed} check(s) failed")
    }
}
