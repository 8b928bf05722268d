//! `kn gaia status [NAME] [-n NS] [-A] [-o table|json] [--prometheus URL]`: per opted-in Service
//! its mode and where it came from, its placement, SLO, current p95 and request rate (from
//! Prometheus, when given), the p95 the autoscaler remembers per placement and its last move.
//!
//! Degrades instead of failing: no Knative → exit 1 with one line; no Gaia webhook → a note, the
//! list still shown; a named Service not opted in → says which annotation to add; Prometheus
//! unreachable → "-" and one warning line, exit 0.

use std::io::Write;
use std::time::Duration;

use clap::ValueEnum;
use gaia_contract::queries::Generation;
use gaia_contract::{keys, Observed, PlacementMove, RememberedLatency, ServiceView};
use gaia_policy::ladder::{cost_line, costs_per_1000, LadderConfig, LadderMemory, RungMove};
use serde::Serialize;
use serde_json::Value;

use crate::autoscaler_config::{self, Origin};
use crate::cli::KubeArgs;
use crate::cluster;
use crate::prom;
use crate::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns.
    Table,
    /// One JSON object per Service, one per line.
    Json,
}

/// Knative's metric names: `opentelemetry` (1.19.8+, 1.20.1+, 1.21+), `kn-queueproxy`
/// (1.19.0-1.19.7, 1.20.0), `opencensus` (up to 1.18).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Metrics {
    Opentelemetry,
    KnQueueproxy,
    Opencensus,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// One Service; all opted-in Services of the namespace when omitted.
    pub name: Option<String>,
    /// Namespace (default: the kubeconfig context's).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// All namespaces.
    #[arg(short = 'A', long, conflicts_with = "name")]
    pub all_namespaces: bool,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    pub output: Format,
    /// Prometheus base URL for current p95 and request rate.
    #[arg(long, env = "GAIA_PROMETHEUS_URL")]
    pub prometheus: Option<String>,
    /// Window of the current p95 and request rate, in seconds (default: the autoscaler's
    /// `policy.shortWindow`).
    #[arg(long)]
    pub window_seconds: Option<u64>,
    /// Knative's metric generation (default: the autoscaler's `prometheus.generation`).
    #[arg(long, value_enum)]
    pub metrics: Option<Metrics>,
    /// Namespace of Gaia's autoscaler, whose ConfigMap gives the queries and the window.
    #[arg(long, default_value = "gaia-system")]
    pub gaia_namespace: String,
}

/// The SLO and whether it was set on the Service.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Slo {
    /// The annotation's text; `None` means the autoscaler's default.
    pub value: Option<String>,
    /// `annotation` or `default`.
    pub source: &'static str,
}

/// Desired (Service metadata, written by the autoscaler) and actual (the template's).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlacementView {
    pub desired: Option<String>,
    pub template: Option<String>,
}

/// Remembered p95 per placement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Remembered {
    pub cpu: Option<RememberedLatency>,
    pub gpu: Option<RememberedLatency>,
}

/// One Service, as `-o json` prints it. Field names are stable.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceStatus {
    pub namespace: String,
    pub name: String,
    pub opted_in: bool,
    /// What the user asked for (`gaia.dev/execution-mode`).
    pub requested_mode: Option<String>,
    /// What the webhook decided (`gaia.dev/mode`) and from what (`gaia.dev/mode-source`).
    pub mode: Option<String>,
    pub mode_source: Option<String>,
    pub placement: PlacementView,
    pub latency_slo: Slo,
    /// Revisions receiving traffic.
    pub revisions: Vec<String>,
    /// The revision the autoscaler decides on (`status.latestReadyRevisionName`): what the
    /// current numbers are about.
    pub revision: Option<String>,
    pub current_p95_ms: Option<f64>,
    pub current_rps: Option<f64>,
    /// With `prometheus.dcgm`: the revision's GPU figures from DCGM (what the autoscaler's DCGM
    /// rule reads).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_gpu: Option<GpuView>,
    pub remembered_p95: Remembered,
    pub last_move: Option<PlacementMove>,
    /// Problems reading this Service's annotations.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// With a placement ladder configured: the rung and the cost of 1,000 requests per rung.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ladder: Option<LadderStatus>,
    /// What the ladder remembers (`gaia.dev/ladder`), and the pods a revision starts with.
    #[serde(skip)]
    ladder_memory: LadderMemory,
    #[serde(skip)]
    pods: u32,
}

/// The revision's GPU figures from DCGM, over its pods that have series.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GpuView {
    /// Mean `DCGM_FI_DEV_GPU_UTIL` over the autoscaler's long window, %.
    pub utilization_pct: f64,
    pub fb_used_mib: Option<f64>,
    pub fb_free_mib: Option<f64>,
    /// The long window (what the mean is over), e.g. `5m`.
    pub window: String,
}

/// A Service on the placement ladder.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LadderStatus {
    /// The rung the template was placed for (`gaia.dev/rung`); none when the ladder has not
    /// placed it yet.
    pub rung: Option<String>,
    /// Per rung, $ per 1,000 requests: at the load remembered on that rung (measured), else at
    /// the current load (estimated); none without a load.
    pub cost_per_1000: Vec<RungCostView>,
    pub last_move: Option<RungMove>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RungCostView {
    pub rung: String,
    pub usd: Option<f64>,
    pub measured: bool,
}

impl ServiceStatus {
    /// Reads a Knative Service (as JSON). Never fails: what cannot be read is a warning.
    pub fn from_service(svc: &Value) -> ServiceStatus {
        let own = |s: Option<&str>| s.map(str::to_string);
        let v = ServiceView::new(svc);
        let mut warnings = Vec::new();
        let observed = match v.observed() {
            Ok(o) => o,
            Err(e) => {
                warnings.push(format!("unreadable {}: {e}", keys::OBSERVED));
                Observed::default()
            }
        };
        let ladder_memory = match LadderMemory::from_annotation(v.meta_annotation(keys::LADDER)) {
            Ok(m) => m,
            Err(e) => {
                warnings.push(format!("unreadable {}: {e}", keys::LADDER));
                LadderMemory::default()
            }
        };
        let slo = own(v.annotation(keys::LATENCY_SLO));
        if let Some(Err(s)) = v.latency_slo() {
            warnings.push(format!(
                "invalid {} {s:?}: the default applies",
                keys::LATENCY_SLO
            ));
        }
        ServiceStatus {
            namespace: v.namespace().to_string(),
            name: v.name().to_string(),
            opted_in: v.opted_in(),
            requested_mode: own(v.annotation(keys::EXECUTION_MODE)),
            mode: own(v.meta_annotation(keys::MODE)),
            mode_source: own(v.meta_annotation(keys::MODE_SOURCE)),
            placement: PlacementView {
                desired: v.desired_placement().map(|p| p.to_string()),
                template: v.placed_for().map(|p| p.to_string()),
            },
            latency_slo: Slo {
                source: if slo.is_some() {
                    "annotation"
                } else {
                    "default"
                },
                value: slo,
            },
            revisions: v
                .traffic_revisions()
                .into_iter()
                .map(str::to_string)
                .collect(),
            revision: own(v.serving_revision()),
            current_p95_ms: None,
            current_rps: None,
            current_gpu: None,
            remembered_p95: Remembered {
                cpu: observed.cpu,
                gpu: observed.gpu,
            },
            last_move: observed.last_move,
            warnings,
            ladder: None,
            ladder_memory,
            pods: v.min_scale().max(1),
        }
    }

    /// With a ladder configured: the rung (from `gaia.dev/rung` on the template) and the cost
    /// of 1,000 requests per rung, as the autoscaler's Events state it (call after [`apply`],
    /// so that estimates use the current load).
    ///
    /// [`apply`]: ServiceStatus::apply
    pub fn with_ladder(&mut self, svc: &Value, ladder: &LadderConfig) {
        let v = ServiceView::new(svc);
        let rung = v
            .template_annotation(keys::RUNG)
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_string);
        let cost_per_1000 =
            costs_per_1000(ladder, &self.ladder_memory, self.current_rps, self.pods)
                .into_iter()
                .map(|c| RungCostView {
                    rung: c.rung,
                    usd: c.usd_per_1000,
                    measured: c.measured,
                })
                .collect();
        self.ladder = Some(LadderStatus {
            rung,
            cost_per_1000,
            last_move: self.ladder_memory.last_move.clone(),
        });
    }

    /// Fills in the current numbers: those of the revision the autoscaler decides on.
    pub fn apply(&mut self, current: &prom::Current) {
        let Some(rev) = &self.revision else {
            return;
        };
        let key = (self.namespace.clone(), rev.clone());
        self.current_p95_ms = current.p95_ms.get(&key).copied();
        self.current_rps = current.rps.get(&key).copied();
        self.current_gpu = current.gpu.get(&key).cloned();
    }
}

/// `850ms`, `1.23s`, `-`.
pub fn fmt_ms(ms: Option<f64>) -> String {
    match ms {
        None => "-".into(),
        Some(v) if v < 1000.0 => format!("{v:.0}ms"),
        Some(v) => format!("{:.2}s", v / 1000.0),
    }
}

fn fmt_rps(rps: Option<f64>) -> String {
    match rps {
        None => "-".into(),
        Some(v) if v < 10.0 => format!("{v:.2}"),
        Some(v) => format!("{v:.0}"),
    }
}

fn placement_cell(p: &PlacementView, ladder: Option<&LadderStatus>) -> String {
    if let Some(rung) = ladder.and_then(|l| l.rung.as_ref()) {
        // On the ladder the rung says more than `gpu`; a move not rolled out yet still shows.
        return match (&p.desired, &p.template) {
            (Some(d), Some(t)) if d != t => format!("{rung}->{d}"),
            _ => rung.clone(),
        };
    }
    match (&p.desired, &p.template) {
        (None, None) => "-".into(),
        (Some(d), Some(t)) if d == t => t.clone(),
        (None, Some(t)) => t.clone(),
        // The autoscaler wants a move the template does not show yet.
        (Some(d), t) => format!("{}->{d}", t.as_deref().unwrap_or("?")),
    }
}

/// "how long ago", from seconds.
pub fn ago(at: jiff::Timestamp, now: jiff::Timestamp) -> String {
    let s = (now.as_second() - at.as_second()).max(0);
    match s {
        0..=119 => format!("{s}s ago"),
        120..=7199 => format!("{}m ago", s / 60),
        7200..=172_799 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86_400),
    }
}

/// Cuts to `width` characters, with an ellipsis.
pub fn clip(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    let mut out: String = s.chars().take(width.saturating_sub(3)).collect();
    out.push_str("...");
    out
}

/// The table's width limit, in characters (column layout, the "last move" and warning lines).
pub const MAX_WIDTH: usize = 100;

/// Shortens to `width` characters by replacing the middle with "…": the beginning and the end of
/// a name (`e2e-test-st…-1a2b3`, `image-c…ication`) are what tell names apart.
pub fn elide_middle(s: &str, width: usize) -> String {
    let n = s.chars().count();
    if n <= width {
        return s.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let keep = width - 1;
    let tail = keep / 2;
    let head = keep - tail;
    let mut out: String = s.chars().take(head).collect();
    out.push('…');
    out.extend(s.chars().skip(n - tail));
    out
}

/// How far a column may shrink: `None`, never (numbers); else its shortest width and its turn:
/// columns of turn 0 shrink first (the widest first), then turn 1, then turn 2.
type Shrink = Option<(u8, usize)>;

/// Column widths: each column as wide as its widest cell; then, while the line is wider than
/// `max`, the widest column of the earliest turn that may still shrink loses one character
/// (never below its minimum).
fn fit_widths(table: &[Vec<String>], shrink: &[Shrink], max: usize) -> Vec<usize> {
    let mut widths: Vec<usize> = (0..shrink.len())
        .map(|c| {
            table
                .iter()
                .map(|row| row[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let total = |w: &[usize]| w.iter().sum::<usize>() + 2 * w.len().saturating_sub(1);
    while total(&widths) > max {
        let next = (0..widths.len())
            .filter_map(|c| match shrink[c] {
                Some((turn, min)) if widths[c] > min => Some((turn, c)),
                _ => None,
            })
            .min_by_key(|&(turn, c)| (turn, std::cmp::Reverse(widths[c]), c));
        match next {
            Some((_, c)) => widths[c] -= 1,
            None => break,
        }
    }
    widths
}

/// One row's cells (without the namespace).
fn cells(r: &ServiceStatus) -> Vec<String> {
    vec![
        r.name.clone(),
        r.mode.clone().unwrap_or_else(|| "-".into()),
        r.mode_source.clone().unwrap_or_else(|| "-".into()),
        placement_cell(&r.placement, r.ladder.as_ref()),
        r.latency_slo
            .value
            .clone()
            .unwrap_or_else(|| "default".into()),
        fmt_ms(r.current_p95_ms),
        fmt_rps(r.current_rps),
        fmt_ms(r.remembered_p95.cpu.as_ref().map(|l| l.p95_ms)),
        fmt_ms(r.remembered_p95.gpu.as_ref().map(|l| l.p95_ms)),
    ]
}

const HEADER: [&str; 9] = [
    "NAME",
    "MODE",
    "SOURCE",
    "PLACEMENT",
    "SLO",
    "P95",
    "RPS",
    "P95@CPU",
    "P95@GPU",
];
/// How each column of [`HEADER`] may shrink: first text that the user or an annotation chose
/// (mode, source, placement, SLO) down to its header's width, then the name down to 12
/// characters; the numbers never.
const SHRINK: [Shrink; 9] = [
    Some((2, 12)),
    Some((0, 13)),
    Some((0, 10)),
    Some((0, 9)),
    Some((0, 7)),
    None,
    None,
    None,
    None,
];
/// With `-A`: a NAMESPACE column, shortened down to 16 characters, while that lets the rows fit
/// with their names whole; else the rows grouped under one `namespace NS:` line each.
const NAMESPACE_SHRINK: Shrink = Some((1, 16));

fn write_row(out: &mut impl Write, row: &[String], widths: &[usize]) -> std::io::Result<()> {
    let line: Vec<String> = row
        .iter()
        .zip(widths)
        .map(|(cell, &w)| {
            let cell = elide_middle(cell, w);
            format!("{cell:<w$}")
        })
        .collect();
    writeln!(out, "{}", line.join("  ").trim_end())
}

fn write_notes(
    out: &mut impl Write,
    r: &ServiceStatus,
    now: jiff::Timestamp,
) -> std::io::Result<()> {
    if let Some(g) = &r.current_gpu {
        let memory = match (g.fb_used_mib, g.fb_free_mib) {
            (Some(u), Some(f)) => format!(", {u:.0}/{:.0} MiB used", u + f),
            (Some(u), None) => format!(", {u:.0} MiB used"),
            _ => String::new(),
        };
        writeln!(
            out,
            "  GPU (DCGM): {:.0}% busy over {}{memory}",
            g.utilization_pct, g.window
        )?;
    }
    if let Some(l) = &r.ladder {
        // The autoscaler's cost line, wrapped at the table's width (never cut: it is the point).
        let items: Vec<String> = l
            .cost_per_1000
            .iter()
            .map(|c| {
                cost_line(&[gaia_policy::ladder::RungCost {
                    rung: c.rung.clone(),
                    usd_per_1000: c.usd,
                    measured: c.measured,
                }])
                .trim_start_matches("cost per 1,000 requests: ")
                .to_string()
            })
            .collect();
        let mut line = String::from("  cost per 1,000 requests:");
        for (i, item) in items.iter().enumerate() {
            let piece = if i + 1 < items.len() {
                format!(" {item},")
            } else {
                format!(" {item}")
            };
            if line.chars().count() + piece.chars().count() > MAX_WIDTH {
                writeln!(out, "{line}")?;
                line = String::from("   ");
            }
            line.push_str(&piece);
        }
        writeln!(out, "{line}")?;
        if let Some(m) = &l.last_move {
            let line = format!(
                "  last move {}->{} ({}) {}: {}",
                m.from,
                m.to,
                m.kind.as_str(),
                ago(m.at, now),
                m.reason
            );
            writeln!(out, "{}", clip(&line, MAX_WIDTH))?;
        }
    }
    if let Some(m) = &r.last_move {
        let line = format!(
            "  last move {}->{} {}: {}",
            m.from,
            m.to,
            ago(m.at, now),
            m.reason
        );
        writeln!(out, "{}", clip(&line, MAX_WIDTH))?;
    }
    for w in &r.warnings {
        writeln!(out, "{}", clip(&format!("  warning: {w}"), MAX_WIDTH))?;
    }
    Ok(())
}

/// The table: aligned columns, each Service followed by its last move and warnings; never wider
/// than [`MAX_WIDTH`] (for normal values). Long cells lose their middle ("…"); `-o json` has them
/// whole. With `with_namespace` (`-A`), a NAMESPACE column first, or, when the namespaces are
/// too long for one, one `namespace NS:` line before each namespace's rows.
pub fn render_table(
    out: &mut impl Write,
    rows: &[ServiceStatus],
    with_namespace: bool,
    now: jiff::Timestamp,
) -> std::io::Result<()> {
    let body: Vec<Vec<String>> = rows.iter().map(cells).collect();
    let header: Vec<String> = HEADER.iter().map(|s| s.to_string()).collect();
    if with_namespace {
        // A NAMESPACE column, if it fits with the names whole and the namespaces >= 16 chars.
        let mut table = vec![std::iter::once("NAMESPACE".to_string())
            .chain(header.iter().cloned())
            .collect::<Vec<_>>()];
        for (r, c) in rows.iter().zip(&body) {
            table.push(
                std::iter::once(r.namespace.clone())
                    .chain(c.iter().cloned())
                    .collect(),
            );
        }
        let mut shrink = vec![NAMESPACE_SHRINK, None]; // names stay whole in this layout
        shrink.extend_from_slice(&SHRINK[1..]);
        let widths = fit_widths(&table, &shrink, MAX_WIDTH);
        let width = widths.iter().sum::<usize>() + 2 * (widths.len() - 1);
        if width <= MAX_WIDTH {
            write_row(out, &table[0], &widths)?;
            for (r, row) in rows.iter().zip(&table[1..]) {
                write_row(out, row, &widths)?;
                write_notes(out, r, now)?;
            }
            return Ok(());
        }
    }
    let mut table = vec![header];
    table.extend(body.iter().cloned());
    let widths = fit_widths(&table, &SHRINK, MAX_WIDTH);
    write_row(out, &table[0], &widths)?;
    let mut namespace: Option<&str> = None;
    for (r, row) in rows.iter().zip(&table[1..]) {
        if with_namespace && namespace != Some(r.namespace.as_str()) {
            namespace = Some(&r.namespace);
            let line = format!("namespace {}:", r.namespace);
            writeln!(out, "{}", elide_middle(&line, MAX_WIDTH))?;
        }
        write_row(out, row, &widths)?;
        write_notes(out, r, now)?;
    }
    Ok(())
}

/// `-o json`: one object per line.
pub fn render_json(out: &mut impl Write, rows: &[ServiceStatus]) -> std::io::Result<()> {
    for r in rows {
        let line = serde_json::to_string(r).map_err(std::io::Error::other)?;
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// What `run` found, before printing (separated so that tests can render without a cluster).
pub struct Report {
    pub rows: Vec<ServiceStatus>,
    /// Lines for stderr ("warning: ..."): not installed, Prometheus down.
    pub notes: Vec<String>,
    /// Printed instead of an empty table.
    pub empty_message: Option<String>,
}

/// Writes a report; returns the exit code.
pub fn print(
    report: &Report,
    format: Format,
    with_namespace: bool,
    out: &mut impl Write,
    err: &mut impl Write,
) -> i32 {
    for n in &report.notes {
        let _ = writeln!(err, "{n}");
    }
    let written = match (format, &report.empty_message) {
        (Format::Table, Some(msg)) if report.rows.iter().all(|r| !r.opted_in) => {
            writeln!(out, "{msg}")
        }
        (Format::Table, _) => {
            render_table(out, &report.rows, with_namespace, jiff::Timestamp::now())
        }
        (Format::Json, msg) => {
            if let Some(m) = msg {
                let _ = writeln!(err, "{m}");
            }
            render_json(out, &report.rows)
        }
    };
    match written {
        Ok(()) => 0,
        Err(e) => {
            let _ = writeln!(err, "kn gaia status: {e}");
            1
        }
    }
}

/// Reads the cluster (and Prometheus) into a [`Report`].
pub async fn gather(args: &Args, kube: &KubeArgs) -> Result<Report, Error> {
    let c = cluster::connect(kube).await?;
    let ns = args
        .namespace
        .clone()
        .unwrap_or(c.default_namespace.clone());
    let mut notes = Vec::new();
    let mut empty_message = None;
    let mut services: Vec<Value> = Vec::new();
    let mut rows: Vec<ServiceStatus> = match &args.name {
        Some(name) => {
            let svc = cluster::get_service(&c.client, &ns, name).await?;
            let mut row = ServiceStatus::from_service(&svc);
            services.push(svc);
            if !row.opted_in && cluster::namespace_injected(&c.client, &ns).await {
                row.opted_in = true;
            }
            if !row.opted_in {
                empty_message = Some(format!(
                    "Service {ns}/{name} is not opted in to Gaia: add the annotation {}=auto, e.g.\n  {}",
                    keys::EXECUTION_MODE,
                    cluster::opt_in_hint(&ns, name)
                ));
            }
            vec![row]
        }
        None => {
            let scope = (!args.all_namespaces).then_some(ns.as_str());
            let all = cluster::list_services(&c.client, scope).await?;
            services = all
                .iter()
                .filter(|s| ServiceView::new(s).opted_in())
                .cloned()
                .collect();
            let rows: Vec<ServiceStatus> =
                services.iter().map(ServiceStatus::from_service).collect();
            if rows.is_empty() {
                let where_ =
                    scope.map_or("any namespace".to_string(), |n| format!("namespace {n}"));
                let hint = cluster::opt_in_hint(scope.unwrap_or("NAMESPACE"), "NAME");
                empty_message = Some(match all.len() {
                    0 => format!("No Knative Service in {where_}."),
                    n => format!(
                        "No Service in {where_} is opted in to Gaia ({n} Knative Service(s) without {}); opt one in with\n  {hint}",
                        keys::EXECUTION_MODE
                    ),
                });
            }
            rows
        }
    };
    if cluster::webhook_registered(&c.client).await == Some(false) {
        notes.push(
            "warning: Gaia is not installed: no MutatingWebhookConfiguration gaia-webhook (see manifests/ or README.md, Install); modes below are not being decided"
                .to_string(),
        );
    }
    // The autoscaler's config: its queries (with --prometheus) and its ladder. Its absence is
    // only worth a note when its queries are used.
    let loaded = autoscaler_config::load(&c.client, &args.gaia_namespace).await;
    let ladder = loaded
        .as_ref()
        .ok()
        .and_then(|(view, _)| view.ladder.clone());
    // Without prometheus.knativeVersion the autoscaler goes by the release the cluster says it
    // runs (its preflight): say so when that release truncates latencies.
    let configured = loaded
        .as_ref()
        .ok()
        .is_some_and(|(view, _)| view.prometheus.knative_version.is_some());
    if !configured {
        if let Some(v) = cluster::knative_release(&c.client)
            .await
            .filter(|v| v.truncates_subsecond_latency())
        {
            notes.push(format!(
                "warning: Knative {}.{}.{} (found in the cluster) records latencies under 1 s as 0 s: \
                 the autoscaler holds Services with sub-second objectives (latency_unreliable)",
                v.major, v.minor, v.patch
            ));
        }
    }
    if let Some(url) = &args.prometheus {
        let mut view = match loaded {
            Ok((view, Origin::ConfigMap(_))) => view,
            Ok((view, Origin::Defaults)) => {
                notes.push(format!(
                    "note: no {}/{}: the autoscaler's default queries are used",
                    args.gaia_namespace,
                    autoscaler_config::CONFIGMAP
                ));
                view
            }
            Err(e) => {
                notes.push(format!("warning: {e}; the default queries are used"));
                autoscaler_config::AutoscalerView::default()
            }
        };
        if view.prometheus.latency_truncated() {
            notes.push(format!(
                "warning: Knative {} records latencies under 1 s as 0 s: the autoscaler holds \
                 Services with sub-second objectives (latency_unreliable)",
                view.prometheus.knative_version.as_deref().unwrap_or("?")
            ));
        }
        if let Some(m) = args.metrics {
            view.prometheus.generation = match m {
                Metrics::Opentelemetry => Generation::OpenTelemetry,
                Metrics::KnQueueproxy => Generation::KnQueueProxy,
                Metrics::Opencensus => Generation::OpenCensus,
            }
            .into();
        }
        // `auto`: the generation and label layout the autoscaler's preflight chooses, chosen
        // the same way
        if view.prometheus.generation.fixed().is_none() || view.prometheus.labels.fixed().is_none()
        {
            let mut prometheus = view.prometheus.clone();
            prometheus.url = url.clone();
            let want = gaia_preflight::Expectations::installed(view.placement.clone(), prometheus);
            match gaia_preflight::gather::detect_generation(&c.client, &want).await {
                Ok(choice) => {
                    notes.push(format!("note: metrics queried: {}", choice.why()));
                    view.prometheus.generation = choice.generation.into();
                    view.prometheus.labels = choice.layout.into();
                }
                Err(e) => notes.push(format!(
                    "warning: metric generation not detected ({e}): {} queried",
                    view.prometheus.initial_generation().name()
                )),
            }
        }
        let window = args
            .window_seconds
            .map_or(view.policy.short_window, |s| Duration::from_secs(s.max(1)));
        let pods = match view.prometheus.dcgm.enabled {
            true => cluster::pod_revisions(&c.client).await.unwrap_or_else(|e| {
                notes.push(format!("warning: pods not listed, no GPU figures: {e}"));
                Vec::new()
            }),
            false => Vec::new(),
        };
        let long = view.policy.long_window;
        match prom::current(url, &view.queries(), window, long, &pods).await {
            Ok(current) => rows.iter_mut().for_each(|r| r.apply(&current)),
            Err(e) => notes.push(format!(
                "warning: current p95 and request rate unavailable: {e}"
            )),
        }
    }
    if let Some(ladder) = &ladder {
        for (row, svc) in rows.iter_mut().zip(&services) {
            row.with_ladder(svc, ladder);
        }
    }
    Ok(Report {
        rows,
        notes,
        empty_message,
    })
}

/// Runs the subcommand; returns the exit code.
pub fn run(args: &Args, kube: &KubeArgs, out: &mut impl Write, err: &mut impl Write) -> i32 {
    let report = match crate::cli::block_on(gather(args, kube)) {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(err, "kn gaia status: {e}");
            return 1;
        }
    };
    print(&report, args.output, args.all_namespaces, out, err)
}
