//! `kn gaia explain NAME [-n NS] [-o text|json]`: why a Service has its mode (the webhook's
//! rationale and findings, with file:line) and what the autoscaler decided since (the Service's
//! Events from core/v1 and events.k8s.io/v1, oldest first).

use std::io::Write;

use gaia_contract::{keys, Finding, ServiceView};
use serde::Serialize;
use serde_json::Value;

use crate::cli::KubeArgs;
use crate::cli::Output;
use crate::cluster::{self, ServiceEvent};
use crate::Error;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The Knative Service.
    pub name: String,
    /// Namespace (default: the kubeconfig context's).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
    pub output: Output,
}

/// One finding as shown: the contract's schema, with the kind kept as text (a newer webhook's
/// kinds are shown too).
pub type ShownFinding = Finding<String>;

/// What `-o json` prints (one object).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Explanation {
    pub namespace: String,
    pub name: String,
    pub opted_in: bool,
    pub requested_mode: Option<String>,
    pub mode: Option<String>,
    pub mode_source: Option<String>,
    pub rationale: Option<String>,
    pub findings: Vec<ShownFinding>,
    pub source_digest: Option<String>,
    pub events: Vec<ServiceEvent>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// One finding's line of the text forms (`explain` and `classify`):
/// `  - KIND FILE:LINE: DETAIL [guarded, heavy]`.
pub fn write_finding(out: &mut impl Write, f: &ShownFinding) -> std::io::Result<()> {
    let flags: Vec<&str> = [(f.guarded, "guarded"), (f.heavy, "heavy")]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, n)| *n)
        .collect();
    let flags = if flags.is_empty() {
        String::new()
    } else {
        format!(" [{}]", flags.join(", "))
    };
    writeln!(
        out,
        "  - {} {}:{}: {}{flags}",
        f.kind, f.file, f.line, f.detail
    )
}

impl Explanation {
    pub fn new(svc: &Value, events: Vec<ServiceEvent>) -> Explanation {
        let own = |s: Option<&str>| s.map(str::to_string);
        let v = ServiceView::new(svc);
        let mut warnings = Vec::new();
        let findings = match v.findings() {
            None => Vec::new(),
            Some(Ok(f)) => f,
            Some(Err(e)) => {
                warnings.push(format!("unreadable {}: {e}", keys::FINDINGS));
                Vec::new()
            }
        };
        Explanation {
            namespace: v.namespace().to_string(),
            name: v.name().to_string(),
            opted_in: v.opted_in(),
            requested_mode: own(v.annotation(keys::EXECUTION_MODE)),
            mode: own(v.meta_annotation(keys::MODE)),
            mode_source: own(v.meta_annotation(keys::MODE_SOURCE)),
            rationale: own(v.meta_annotation(keys::RATIONALE)),
            findings,
            source_digest: own(v.meta_annotation(keys::SOURCE_DIGEST)),
            events,
            warnings,
        }
    }
}

/// The text form.
pub fn render_text(out: &mut impl Write, e: &Explanation) -> std::io::Result<()> {
    writeln!(out, "Service {}/{}", e.namespace, e.name)?;
    if !e.opted_in {
        writeln!(
            out,
            "  not opted in to Gaia: add the annotation {}=auto, e.g.\n  {}",
            keys::EXECUTION_MODE,
            cluster::opt_in_hint(&e.namespace, &e.name)
        )?;
    }
    let or_dash = |s: &Option<String>| s.clone().unwrap_or_else(|| "-".into());
    writeln!(
        out,
        "Mode: {} (source: {}; requested: {})",
        or_dash(&e.mode),
        or_dash(&e.mode_source),
        or_dash(&e.requested_mode)
    )?;
    if e.opted_in && e.mode.is_none() {
        writeln!(out, "  no mode written yet: is Gaia's webhook installed?")?;
    }
    if let Some(r) = &e.rationale {
        writeln!(out, "Rationale: {r}")?;
    }
    if !e.findings.is_empty() {
        writeln!(out, "Findings:")?;
        for f in &e.findings {
            write_finding(out, f)?;
        }
    }
    for w in &e.warnings {
        writeln!(out, "warning: {w}")?;
    }
    if e.events.is_empty() {
        writeln!(
            out,
            "Decisions: none recorded (no Events involving the Service)"
        )?;
        return Ok(());
    }
    writeln!(out, "Decisions (Events, oldest first):")?;
    for ev in &e.events {
        let count = if ev.count > 1 {
            format!(" (x{})", ev.count)
        } else {
            String::new()
        };
        writeln!(
            out,
            "  {}  {:<7} {}{count}  [{}]",
            ev.time.as_deref().unwrap_or("-"),
            ev.type_,
            ev.reason,
            if ev.source.is_empty() {
                "-"
            } else {
                &ev.source
            }
        )?;
        if !ev.message.is_empty() {
            writeln!(out, "      {}", ev.message)?;
        }
    }
    Ok(())
}

async fn gather(args: &Args, kube: &KubeArgs) -> Result<Explanation, Error> {
    let c = cluster::connect(kube).await?;
    let ns = args
        .namespace
        .clone()
        .unwrap_or(c.default_namespace.clone());
    let svc = cluster::get_service(&c.client, &ns, &args.name).await?;
    let events = cluster::service_events(&c.client, &ns, &args.name).await?;
    let mut e = Explanation::new(&svc, events);
    if !e.opted_in && cluster::namespace_injected(&c.client, &ns).await {
        e.opted_in = true;
    }
    Ok(e)
}

/// Runs the subcommand; returns the exit code.
pub fn run(args: &Args, kube: &KubeArgs, out: &mut impl Write, err: &mut impl Write) -> i32 {
    let e = match crate::cli::block_on(gather(args, kube)) {
        Ok(e) => e,
        Err(e) => {
            let _ = writeln!(err, "kn gaia explain: {e}");
            return 1;
        }
    };
    let written = match args.output {
        Output::Text => render_text(out, &e),
        Output::Json => serde_json::to_string(&e)
            .map_err(std::io::Error::other)
            .and_then(|l| writeln!(out, "{l}")),
    };
    match written {
        Ok(()) => 0,
        Err(x) => {
            let _ = writeln!(err, "kn gaia explain: {x}");
            1
        }
    }
}
