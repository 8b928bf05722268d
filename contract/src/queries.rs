//! PromQL templates and their configuration (`prometheus.generation`, `prometheus.queries` of
//! the autoscaler's ConfigMap), shared by the autoscaler and `kn gaia status`. `{window}` is replaced by a range (`1m`, `5m`), `{quantile}` (latency
//! quantile template only) by `0.95` or `0.5`.
//!
//! Defaults exist for the three Knative metric generations (see docs/autoscaler.md;
//! [`Generation::of_knative`] tells which a version exports):
//!
//! - `opencensus` (Knative up to 1.18): queue-proxy `revision_app_request_latencies_*` in
//!   milliseconds, revision identity in the labels `namespace_name`, `revision_name`.
//! - `kn-queueproxy` (Knative 1.19.0 to 1.19.7 and 1.20.0): `kn_queueproxy_app_duration_seconds_*`.
//! - `opentelemetry` (Knative 1.19.8+, 1.20.1+, 1.21 and later):
//!   `kn_serving_invocation_duration_seconds_*`.
//!
//! The two OpenTelemetry generations are in seconds, and the revision's identity is an
//! OpenTelemetry *resource* attribute. Two [`LabelLayout`]s: scraped by Prometheus, the
//! exporter puts resource attributes on `target_info` only, and the templates join them in with
//! `* on (job, instance) group_left (k8s_namespace_name, kn_revision_name) target_info`
//! (`target_info`, the default); pushed by OTLP with promoted resource attributes (the upstream
//! monitoring stack), they are labels of every series (`promoted`).
//!
//! CPU comes from cAdvisor, per pod of the user container; pods are mapped to revisions with
//! the API's pod labels, so no kube-state-metrics is needed.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::duration::{format_duration, serde_duration};
use crate::ContractError as Error;

/// The name Knative gives the function's container in its pods (cAdvisor's `container` label).
pub const USER_CONTAINER: &str = "user-container";

/// Ordered oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Generation {
    /// Knative up to 1.18: `revision_app_request_latencies`, milliseconds.
    #[serde(rename = "opencensus")]
    OpenCensus,
    /// Knative 1.19.0 to 1.19.7 and 1.20.0: `kn_queueproxy_app_duration_seconds`.
    #[serde(rename = "kn-queueproxy")]
    KnQueueProxy,
    /// Knative 1.19.8+, 1.20.1+, 1.21+: `kn_serving_invocation_duration_seconds`.
    #[serde(rename = "opentelemetry")]
    OpenTelemetry,
}

impl Generation {
    /// Every generation, oldest first.
    pub const ALL: [Generation; 3] = [
        Generation::OpenCensus,
        Generation::KnQueueProxy,
        Generation::OpenTelemetry,
    ];

    /// The name in the configuration (`opentelemetry`).
    pub fn name(self) -> &'static str {
        match self {
            Generation::OpenCensus => "opencensus",
            Generation::KnQueueProxy => "kn-queueproxy",
            Generation::OpenTelemetry => "opentelemetry",
        }
    }

    /// The request-count series of the queue-proxy's latency histogram (what the series
    /// probe looks for).
    pub fn count_metric(self) -> &'static str {
        match self {
            Generation::OpenCensus => "revision_app_request_latencies_count",
            Generation::KnQueueProxy => "kn_queueproxy_app_duration_seconds_count",
            Generation::OpenTelemetry => "kn_serving_invocation_duration_seconds_count",
        }
    }

    /// The generation whose count series is `metric`.
    pub fn of_count_metric(metric: &str) -> Option<Generation> {
        Generation::ALL
            .into_iter()
            .find(|g| g.count_metric() == metric)
    }
}

/// `prometheus.generation`: a generation, or `auto` (the default): chosen from the Knative
/// release the cluster says it runs, else from the series Prometheus holds
/// ([`choose_generation`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum GenerationSetting {
    #[default]
    #[serde(rename = "auto")]
    Auto,
    #[serde(rename = "opencensus")]
    OpenCensus,
    #[serde(rename = "kn-queueproxy")]
    KnQueueProxy,
    #[serde(rename = "opentelemetry")]
    OpenTelemetry,
}

impl GenerationSetting {
    /// The configured generation; `None` for `auto`.
    pub fn fixed(self) -> Option<Generation> {
        match self {
            GenerationSetting::Auto => None,
            GenerationSetting::OpenCensus => Some(Generation::OpenCensus),
            GenerationSetting::KnQueueProxy => Some(Generation::KnQueueProxy),
            GenerationSetting::OpenTelemetry => Some(Generation::OpenTelemetry),
        }
    }
}

impl From<Generation> for GenerationSetting {
    fn from(g: Generation) -> Self {
        match g {
            Generation::OpenCensus => GenerationSetting::OpenCensus,
            Generation::KnQueueProxy => GenerationSetting::KnQueueProxy,
            Generation::OpenTelemetry => GenerationSetting::OpenTelemetry,
        }
    }
}

/// Why the generation queried is the one it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChosenBy {
    /// `prometheus.generation` names it.
    Configured,
    /// `auto`: the Knative release found (`source` says where: a label, the configuration).
    Release {
        version: KnativeVersion,
        source: String,
    },
    /// `auto`, the release unknown: the series Prometheus holds.
    Series,
    /// `auto`, no release and no series of any generation (or Prometheus unreadable): the
    /// newest generation, asked again at the next preflight.
    Default,
}

/// The generation the autoscaler queries, and why ([`choose_generation`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerationChoice {
    pub generation: Generation,
    pub by: ChosenBy,
    /// The generations whose request series Prometheus holds (`None`: not read).
    pub series: Option<Vec<Generation>>,
    /// Where the OpenTelemetry generations' revision identity is read ([`choose_layout`]).
    pub layout: LabelLayout,
    pub layout_by: LayoutBy,
}

impl GenerationChoice {
    /// One line: what is queried and why (logs, the preflight, `kn gaia doctor`).
    pub fn why(&self) -> String {
        let g = self.generation.name();
        let found = match &self.series {
            None => "series not read".to_string(),
            Some(s) if s.is_empty() => "no request series in Prometheus yet".to_string(),
            Some(s) => format!(
                "series found: {}",
                s.iter()
                    .map(|g| g.count_metric())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let generation = match &self.by {
            ChosenBy::Configured => format!("{g} (prometheus.generation; {found})"),
            ChosenBy::Release { version, source } => {
                format!("{g} (auto: Knative Serving {version}, from {source}; {found})")
            }
            ChosenBy::Series => format!("{g} (auto: release unknown; {found})"),
            ChosenBy::Default => format!("{g} (auto: release unknown, {found}: the newest)"),
        };
        if self.generation == Generation::OpenCensus {
            return generation;
        }
        let layout = self.layout.name();
        let layout = match self.layout_by {
            LayoutBy::Configured => format!("{layout} (prometheus.labels)"),
            LayoutBy::Series => format!("{layout} (auto: as the series carry them)"),
            LayoutBy::Default => {
                format!("{layout} (auto: no series to tell yet, the scraped layout)")
            }
        };
        format!("{generation}; revision labels on {layout}")
    }

    /// The same choice, its layout chosen by [`choose_layout`].
    pub fn with_layout(self, (layout, layout_by): (LabelLayout, LayoutBy)) -> GenerationChoice {
        GenerationChoice {
            layout,
            layout_by,
            ..self
        }
    }

    /// The release says one generation but Prometheus holds only another's series: the
    /// release label is wrong or the series come from elsewhere.
    pub fn contradicted(&self) -> Option<Generation> {
        let s = self.series.as_ref()?;
        if s.is_empty() || s.contains(&self.generation) {
            return None;
        }
        s.last().copied()
    }
}

/// The pure rule of `prometheus.generation`: a configured generation wins; with `auto`, the
/// release found (`release`: the version and where it was read) decides
/// ([`Generation::of_knative`]); without one, the series found (`series`, the generations whose
/// request series exist; the newest when several: an upgrade leaves the old ones behind for a
/// while); without any, the newest generation.
pub fn choose_generation(
    setting: GenerationSetting,
    release: Option<(KnativeVersion, String)>,
    series: Option<Vec<Generation>>,
) -> GenerationChoice {
    let (generation, by) = match (setting.fixed(), release) {
        (Some(g), _) => (g, ChosenBy::Configured),
        (None, Some((version, source))) => (
            Generation::of_knative(version),
            ChosenBy::Release { version, source },
        ),
        (None, None) => match series.as_ref().and_then(|s| s.iter().max().copied()) {
            Some(g) => (g, ChosenBy::Series),
            None => (Generation::OpenTelemetry, ChosenBy::Default),
        },
    };
    GenerationChoice {
        generation,
        by,
        series,
        layout: LabelLayout::TargetInfo,
        layout_by: LayoutBy::Default,
    }
}

/// The pure rule of `prometheus.labels`: a configured layout wins; with `auto`, the promoted
/// layout when the OpenTelemetry request-count series carry `kn_revision_name` themselves
/// (`promoted_found`: `Some(true)`), else the scraped one (`target_info`), which is also the
/// answer while there are no series to tell (`None`, or no OpenTelemetry series at all).
pub fn choose_layout(
    setting: LayoutSetting,
    promoted_found: Option<bool>,
) -> (LabelLayout, LayoutBy) {
    match (setting.fixed(), promoted_found) {
        (Some(l), _) => (l, LayoutBy::Configured),
        (None, Some(true)) => (LabelLayout::Promoted, LayoutBy::Series),
        (None, Some(false)) => (LabelLayout::TargetInfo, LayoutBy::Series),
        (None, None) => (LabelLayout::TargetInfo, LayoutBy::Default),
    }
}

/// Why the label layout is the one it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayoutBy {
    /// `prometheus.labels` names it.
    Configured,
    /// `auto`: the OpenTelemetry request series found show it.
    Series,
    /// `auto`, no OpenTelemetry request series yet: `target_info`, asked again at the next
    /// preflight.
    Default,
}

impl LayoutBy {
    pub fn name(self) -> &'static str {
        match self {
            LayoutBy::Configured => "configured",
            LayoutBy::Series => "series",
            LayoutBy::Default => "default",
        }
    }
}

/// Where an OpenTelemetry generation's revision identity is (see the module documentation).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelLayout {
    /// On `target_info`, joined on `job` and `instance` (Prometheus scraping the queue-proxy).
    #[default]
    TargetInfo,
    /// On every series (OTLP push with promoted resource attributes).
    Promoted,
}

impl LabelLayout {
    pub fn name(self) -> &'static str {
        match self {
            LabelLayout::TargetInfo => "target_info",
            LabelLayout::Promoted => "promoted",
        }
    }
}

/// `prometheus.labels`: a layout, or `auto` (the default: as the series found carry the
/// revision labels, [`choose_layout`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LayoutSetting {
    #[default]
    Auto,
    TargetInfo,
    Promoted,
}

impl From<LabelLayout> for LayoutSetting {
    fn from(l: LabelLayout) -> LayoutSetting {
        match l {
            LabelLayout::TargetInfo => LayoutSetting::TargetInfo,
            LabelLayout::Promoted => LayoutSetting::Promoted,
        }
    }
}

impl LayoutSetting {
    /// The layout it names (`None` for `auto`).
    pub fn fixed(self) -> Option<LabelLayout> {
        match self {
            LayoutSetting::Auto => None,
            LayoutSetting::TargetInfo => Some(LabelLayout::TargetInfo),
            LayoutSetting::Promoted => Some(LabelLayout::Promoted),
        }
    }
}

/// A Knative Serving release, `1.21.2` or `v1.21.2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct KnativeVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl std::str::FromStr for KnativeVersion {
    type Err = String;

    fn from_str(text: &str) -> Result<KnativeVersion, String> {
        let t = text.trim().trim_start_matches('v');
        let core = t.split(['-', '+']).next().unwrap_or_default();
        let mut parts = core.split('.').map(str::parse::<u32>);
        match (
            parts.next(),
            parts.next(),
            parts.next().unwrap_or(Ok(0)),
            parts.next(),
        ) {
            (Some(Ok(major)), Some(Ok(minor)), Ok(patch), None) => Ok(KnativeVersion {
                major,
                minor,
                patch,
            }),
            _ => Err(format!("{text:?} is not a Knative version (like 1.21.2)")),
        }
    }
}

impl std::fmt::Display for KnativeVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl KnativeVersion {
    const fn v(major: u32, minor: u32, patch: u32) -> KnativeVersion {
        KnativeVersion {
            major,
            minor,
            patch,
        }
    }

    /// The queue-proxy of these releases records every request under 1 s as 0 s
    /// (`float64(latency / time.Second)`; fixed by knative/serving#16358 in 1.19.9, 1.20.2 and
    /// 1.21.0): their p95 says nothing against a sub-second objective.
    pub fn truncates_subsecond_latency(self) -> bool {
        let v = KnativeVersion::v;
        (self >= v(1, 19, 0) && self < v(1, 19, 9)) || (self >= v(1, 20, 0) && self < v(1, 20, 2))
    }
}

impl PrometheusConfig {
    /// `knative_version`, read; `Ok(None)` when not given.
    pub fn knative_release(&self) -> Result<Option<KnativeVersion>, Error> {
        self.knative_version
            .as_deref()
            .map(|v| {
                v.parse()
                    .map_err(|why: String| Error::query("prometheus.knativeVersion", why))
            })
            .transpose()
    }

    /// The generation queried when nothing was detected yet: the configured one, or the newest.
    pub fn initial_generation(&self) -> Generation {
        match (self.generation.fixed(), self.knative_release()) {
            (Some(g), _) => g,
            (None, Ok(Some(v))) => Generation::of_knative(v),
            (None, _) => Generation::OpenTelemetry,
        }
    }

    /// The layout queried when nothing was detected yet: the configured one, or `target_info`.
    pub fn initial_layout(&self) -> LabelLayout {
        self.labels.fixed().unwrap_or_default()
    }

    /// The queries sent before the preflight has chosen: [`Self::initial_generation`] and
    /// [`Self::initial_layout`]. `container`: the user container's name in cAdvisor series.
    pub fn initial_queries(&self, container: &str) -> QuerySet {
        self.queries(self.initial_generation(), self.initial_layout(), container)
    }

    /// The queries of `generation` and `layout` with this section's overrides and DCGM query.
    pub fn queries(
        &self,
        generation: Generation,
        layout: LabelLayout,
        container: &str,
    ) -> QuerySet {
        QuerySet {
            gpu_use: self.dcgm.query(),
            ..QuerySet::with_layout(generation, layout, &self.queries, container)
        }
    }

    /// The configured release truncates latencies under 1 s.
    pub fn latency_truncated(&self) -> bool {
        matches!(self.knative_release(), Ok(Some(v)) if v.truncates_subsecond_latency())
    }
}

impl Generation {
    /// The metric names a Knative release's queue-proxy exports.
    pub fn of_knative(version: KnativeVersion) -> Generation {
        let v = KnativeVersion::v;
        if version < v(1, 19, 0) {
            Generation::OpenCensus
        } else if version < v(1, 19, 8) || (version >= v(1, 20, 0) && version < v(1, 20, 1)) {
            Generation::KnQueueProxy
        } else {
            Generation::OpenTelemetry
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LatencyUnit {
    #[serde(rename = "ms")]
    Milliseconds,
    #[serde(rename = "s")]
    Seconds,
}

impl LatencyUnit {
    pub fn to_ms(self, v: f64) -> f64 {
        match self {
            LatencyUnit::Milliseconds => v,
            LatencyUnit::Seconds => v * 1e3,
        }
    }
}

/// Optional replacements for the defaults of the chosen generation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct QueryOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_quantile: Option<String>,
    /// Per-revision bucket rates (the expression inside `histogram_quantile`), with `{window}`
    /// and `{selector}` after the bucket metric's name. Give it with `latencyQuantile` (the
    /// same expression inside `histogram_quantile`) for the tiered shape; without it an
    /// overridden `latencyQuantile` is asked in the flat shape.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_buckets: Option<String>,
    /// Where the revisions' scrape targets are (`job`, `instance` and the revision labels),
    /// when the bucket series carry no revision labels (`target_info`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision_targets: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_rate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_sum_rate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_usage: Option<String>,
    /// Label holding the namespace in the latency and rate answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace_label: Option<String>,
    /// Label holding the revision name in the latency and rate answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision_label: Option<String>,
    /// Unit of the latency answers (`ms` or `s`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_unit: Option<LatencyUnit>,
    /// Labels holding namespace and pod name in the CPU answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_namespace_label: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_label: Option<String>,
}

/// The templates and label names actually used.
#[derive(Debug, Clone, PartialEq)]
pub struct QuerySet {
    /// `{quantile}`, `{window}` and, for the tiered shape, `{selector}` (see
    /// [`QuerySet::latency_buckets`]).
    pub latency_quantile: String,
    /// Per-revision bucket rates (`sum by (namespace, revision, le)`), `{window}` and
    /// `{selector}` right after the bucket metric's name: `{selector}` becomes nothing, a `le`
    /// matcher (the cheap first tier) or a matcher on the candidates' revisions or targets.
    /// `None`: only the flat shape can be asked (an overridden `latencyQuantile` alone).
    pub latency_buckets: Option<String>,
    /// `job`, `instance`, namespace and revision of every scrape target, when the bucket
    /// series carry no revision labels (`target_info` layout): the candidates' buckets are
    /// then selected by `instance`. `None`: by the revision labels.
    pub revision_targets: Option<String>,
    pub request_rate: String,
    pub latency_sum_rate: String,
    pub cpu_usage: String,
    pub namespace_label: String,
    pub revision_label: String,
    pub latency_unit: LatencyUnit,
    pub pod_namespace_label: String,
    pub pod_label: String,
    /// GPU utilisation and memory per pod from NVIDIA's DCGM exporter (`prometheus.dcgm`);
    /// `None` when not configured.
    pub gpu_use: Option<GpuUseQuery>,
    /// `latencyQuantile` is `histogram_quantile` over `latencyBuckets` (not overridden on its
    /// own): the tiered shape then reads the candidates' buckets and computes the quantiles
    /// itself, two queries instead of three.
    pub quantiles_from_buckets: bool,
    /// The same rates per scrape target, without the `target_info` join, which the autoscaler
    /// then does itself from `revisionTargets` (the default `target_info` layout, none of its
    /// templates overridden). `None`: the joined templates are asked.
    pub per_target: Option<PerTargetQueries>,
}

/// The rates of the `target_info` layout per scrape target (`job`, `instance`): the joined
/// templates' inner expression. In PromQL the join costs Prometheus more than the rates (for
/// every query it reads `target_info` again and builds each answer's labels); done here from
/// the one targets query, it costs a hash lookup per target.
#[derive(Debug, Clone, PartialEq)]
pub struct PerTargetQueries {
    pub request_rate: String,
    pub latency_sum_rate: String,
    /// `{selector}` and `{window}` as in [`QuerySet::latency_buckets`].
    pub latency_buckets: String,
}

/// One query for every pod's GPU figures ([`DcgmConfig`]): `{window}` is the long window.
/// Each answer carries the label [`GPU_FIGURE`] naming the figure.
#[derive(Debug, Clone, PartialEq)]
pub struct GpuUseQuery {
    pub template: String,
    pub namespace_label: String,
    pub pod_label: String,
}

/// The label of a [`GpuUseQuery`] answer saying which figure it is: [`GPU_UTIL`] (mean
/// `DCGM_FI_DEV_GPU_UTIL` over the window, %, averaged over the pod's GPUs), [`GPU_FB_USED`]
/// and [`GPU_FB_FREE`] (`DCGM_FI_DEV_FB_USED` / `_FREE`, MiB, summed over the pod's GPUs).
pub const GPU_FIGURE: &str = "gaia_gpu";
pub const GPU_UTIL: &str = "util_pct";
pub const GPU_FB_USED: &str = "fb_used_mib";
pub const GPU_FB_FREE: &str = "fb_free_mib";

/// Where DCGM's series name the pod that uses a GPU.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DcgmLabels {
    /// `pod`, `namespace`: the exporter's own labels, scraped with `honor_labels: true`.
    #[default]
    Pod,
    /// `exported_pod`, `exported_namespace`: behind the Helm chart's ServiceMonitor, Prometheus
    /// renames the exporter's labels that clash with the target's own.
    Exported,
}

/// `prometheus.dcgm`: GPU utilisation and memory per pod, from NVIDIA's DCGM exporter
/// (`DCGM_FI_DEV_GPU_UTIL` in %, `DCGM_FI_DEV_FB_USED`/`_FREE` in MiB, sampled every 30 s by
/// default). Off unless enabled; with it the policy can demote a GPU revision whose GPU idles
/// sooner (`policy.demote.gpuIdleUtilization`, docs/autoscaler.md).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct DcgmConfig {
    pub enabled: bool,
    /// `pod` (default) or `exported`.
    pub labels: DcgmLabels,
    /// Replaces the whole query (answers keyed by `namespaceLabel`/`podLabel`, each with the
    /// label `gaia_gpu`: `util_pct`, `fb_used_mib` or `fb_free_mib`; `{window}` the long window).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
}

impl DcgmConfig {
    /// The query, when enabled.
    pub fn query(&self) -> Option<GpuUseQuery> {
        if !self.enabled {
            return None;
        }
        let (ns, pod) = match self.labels {
            DcgmLabels::Pod => ("namespace", "pod"),
            DcgmLabels::Exported => ("exported_namespace", "exported_pod"),
        };
        let figure = |expr: String, name: &str| {
            format!("label_replace({expr}, \"{GPU_FIGURE}\", \"{name}\", \"\", \"\")")
        };
        let template = self.query.clone().unwrap_or_else(|| {
            [
                figure(
                    format!("avg by ({ns}, {pod}) (avg_over_time(DCGM_FI_DEV_GPU_UTIL{{{pod}!=\"\"}}[{{window}}]))"),
                    GPU_UTIL,
                ),
                figure(
                    format!("sum by ({ns}, {pod}) (DCGM_FI_DEV_FB_USED{{{pod}!=\"\"}})"),
                    GPU_FB_USED,
                ),
                figure(
                    format!("sum by ({ns}, {pod}) (DCGM_FI_DEV_FB_FREE{{{pod}!=\"\"}})"),
                    GPU_FB_FREE,
                ),
            ]
            .join(" or ")
        });
        Some(GpuUseQuery {
            template,
            namespace_label: ns.into(),
            pod_label: pod.into(),
        })
    }
}

const OTEL_JOIN: &str =
    "* on (job, instance) group_left (k8s_namespace_name, kn_revision_name) target_info";

impl QuerySet {
    /// The defaults of `generation` with its revision identity on `target_info`, with
    /// `overrides` applied. `container` is the user container's name in cAdvisor series.
    pub fn new(generation: Generation, overrides: &QueryOverrides, container: &str) -> QuerySet {
        QuerySet::with_layout(generation, LabelLayout::TargetInfo, overrides, container)
    }

    /// The defaults of `generation` and `layout`, with `overrides` applied.
    pub fn with_layout(
        generation: Generation,
        layout: LabelLayout,
        overrides: &QueryOverrides,
        container: &str,
    ) -> QuerySet {
        let otel = |m: &str| {
            let by = "k8s_namespace_name, kn_revision_name";
            let (buckets, rate, sum_rate, targets, per_target) = match layout {
                // Aggregate per scrape target first (status codes...), then join.
                LabelLayout::TargetInfo => {
                    let per_target = PerTargetQueries {
                        request_rate: format!(
                            "sum by (job, instance) (rate({m}_count[{{window}}]))"
                        ),
                        latency_sum_rate: format!(
                            "sum by (job, instance) (rate({m}_sum[{{window}}]))"
                        ),
                        latency_buckets: format!(
                            "sum by (job, instance, le) (rate({m}_bucket{{selector}}[{{window}}]))"
                        ),
                    };
                    (
                        format!(
                            "sum by ({by}, le) ({} {OTEL_JOIN})",
                            per_target.latency_buckets
                        ),
                        format!("sum by ({by}) ({} {OTEL_JOIN})", per_target.request_rate),
                        format!(
                            "sum by ({by}) ({} {OTEL_JOIN})",
                            per_target.latency_sum_rate
                        ),
                        Some(format!("group by (job, instance, {by}) (target_info)")),
                        Some(per_target),
                    )
                }
                LabelLayout::Promoted => (
                    format!("sum by ({by}, le) (rate({m}_bucket{{selector}}[{{window}}]))"),
                    format!("sum by ({by}) (rate({m}_count[{{window}}]))"),
                    format!("sum by ({by}) (rate({m}_sum[{{window}}]))"),
                    None,
                    None,
                ),
            };
            (
                buckets,
                rate,
                sum_rate,
                targets,
                per_target,
                "k8s_namespace_name",
                "kn_revision_name",
                LatencyUnit::Seconds,
            )
        };
        let (buckets, rate, sum_rate, targets, per_target, ns, rev, unit) = match generation {
            Generation::OpenCensus => {
                let by = "namespace_name, revision_name";
                let m = "revision_app_request_latencies";
                (
                    format!("sum by ({by}, le) (rate({m}_bucket{{selector}}[{{window}}]))"),
                    format!("sum by ({by}) (rate({m}_count[{{window}}]))"),
                    format!("sum by ({by}) (rate({m}_sum[{{window}}]))"),
                    None,
                    None,
                    "namespace_name",
                    "revision_name",
                    LatencyUnit::Milliseconds,
                )
            }
            Generation::KnQueueProxy => otel("kn_queueproxy_app_duration_seconds"),
            Generation::OpenTelemetry => otel("kn_serving_invocation_duration_seconds"),
        };
        let cpu = format!(
            "sum by (namespace, pod) (rate(container_cpu_usage_seconds_total{{container=\"{}\"}}[{{window}}]))",
            container.replace('\\', "\\\\").replace('"', "\\\"")
        );
        let o = overrides;
        let pick = |over: &Option<String>, default: String| over.clone().unwrap_or(default);
        // The quantile is the buckets inside `histogram_quantile`: an overridden quantile
        // comes with its own buckets (and is then selected by its revision labels), or alone
        // (flat shape only).
        let (latency_quantile, latency_buckets, revision_targets) =
            match (&o.latency_quantile, &o.latency_buckets) {
                (None, None) => (
                    format!("histogram_quantile({{quantile}}, {buckets})"),
                    Some(buckets),
                    o.revision_targets.clone().or(targets),
                ),
                (Some(q), b) => (q.clone(), b.clone(), o.revision_targets.clone()),
                // Buckets alone: the quantile is read from them.
                (None, Some(b)) => (
                    format!("histogram_quantile({{quantile}}, {b})"),
                    Some(b.clone()),
                    o.revision_targets.clone(),
                ),
            };
        // Joined here only when every joined template is the default.
        let per_target = per_target.filter(|_| {
            o.latency_quantile.is_none()
                && o.latency_buckets.is_none()
                && o.revision_targets.is_none()
                && o.request_rate.is_none()
                && o.latency_sum_rate.is_none()
                && o.namespace_label.is_none()
                && o.revision_label.is_none()
        });
        QuerySet {
            quantiles_from_buckets: o.latency_quantile.is_none(),
            per_target,
            latency_quantile,
            latency_buckets,
            revision_targets,
            request_rate: pick(&o.request_rate, rate),
            latency_sum_rate: pick(&o.latency_sum_rate, sum_rate),
            cpu_usage: pick(&o.cpu_usage, cpu),
            namespace_label: pick(&o.namespace_label, ns.into()),
            revision_label: pick(&o.revision_label, rev.into()),
            latency_unit: o.latency_unit.unwrap_or(unit),
            pod_namespace_label: pick(&o.pod_namespace_label, "namespace".into()),
            pod_label: pick(&o.pod_label, "pod".into()),
            gpu_use: None,
        }
    }

    /// Replaces `{window}` by the range (and `{selector}` by nothing: every revision).
    pub fn render(template: &str, window: std::time::Duration) -> String {
        Self::render_selected(template, window, "")
    }

    /// Replaces `{window}` by the range and `{selector}` by `selector` (a PromQL matcher list
    /// in braces, or nothing).
    pub fn render_selected(template: &str, window: std::time::Duration, selector: &str) -> String {
        template
            .replace("{window}", &format_duration(window))
            .replace("{selector}", selector)
    }

    /// Renders the latency quantile template for every revision.
    pub fn render_quantile(&self, quantile: f64, window: std::time::Duration) -> String {
        self.render_quantile_selected(quantile, window, "")
    }

    /// Renders the latency quantile template for the series `selector` matches.
    pub fn render_quantile_selected(
        &self,
        quantile: f64,
        window: std::time::Duration,
        selector: &str,
    ) -> String {
        Self::render_selected(&self.latency_quantile, window, selector)
            .replace("{quantile}", &quantile.to_string())
    }

    /// Whether the tiered shape can be asked: the bucket template and a quantile template that
    /// both take a `{selector}`.
    pub fn tiered(&self) -> bool {
        self.latency_buckets.is_some() && self.latency_quantile.contains("{selector}")
    }

    /// The bucket series' metric name: the name right before `{selector}` in the bucket
    /// template (whose `le` values the first tier matches).
    pub fn bucket_metric(&self) -> Option<&str> {
        let t = self.latency_buckets.as_deref()?;
        let head = &t[..t.find("{selector}")?];
        let start = head
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .map_or(0, |i| i + 1);
        let name = &head[start..];
        (!name.is_empty() && !name.starts_with(|c: char| c.is_ascii_digit())).then_some(name)
    }

    /// Every template must have a `{window}`; label names must look like labels.
    pub fn validate(&self) -> Result<(), Error> {
        if !self.latency_quantile.contains("{quantile}") {
            return Err(Error::query(
                "prometheus.queries.latencyQuantile",
                "the template has no {quantile} placeholder",
            ));
        }
        if let Some(b) = &self.latency_buckets {
            if !b.contains("{window}") || self.bucket_metric().is_none() {
                return Err(Error::query(
                    "prometheus.queries.latencyBuckets",
                    "the template needs {window} and {selector} right after the bucket metric's \
                     name (rate(my_latency_bucket{selector}[{window}]))",
                ));
            }
            if !self.latency_quantile.contains("{selector}") {
                return Err(Error::query(
                    "prometheus.queries.latencyQuantile",
                    "with latencyBuckets, the quantile template must be the same expression \
                     inside histogram_quantile, {selector} included",
                ));
            }
        }
        if let Some(g) = &self.gpu_use {
            if !g.template.contains("{window}") {
                return Err(Error::query(
                    "prometheus.dcgm.query",
                    "the template has no {window} placeholder",
                ));
            }
        }
        if let Some(t) = &self.revision_targets {
            if t.trim().is_empty() {
                return Err(Error::query(
                    "prometheus.queries.revisionTargets",
                    "the template is empty",
                ));
            }
        }
        for (field, t) in [
            ("prometheus.queries.latencyQuantile", &self.latency_quantile),
            ("prometheus.queries.requestRate", &self.request_rate),
            ("prometheus.queries.latencySumRate", &self.latency_sum_rate),
            ("prometheus.queries.cpuUsage", &self.cpu_usage),
        ] {
            if !t.contains("{window}") {
                return Err(Error::query(
                    field,
                    "the template has no {window} placeholder",
                ));
            }
        }
        for (field, l) in [
            ("prometheus.queries.namespaceLabel", &self.namespace_label),
            ("prometheus.queries.revisionLabel", &self.revision_label),
            (
                "prometheus.queries.podNamespaceLabel",
                &self.pod_namespace_label,
            ),
            ("prometheus.queries.podLabel", &self.pod_label),
        ] {
            let ok = !l.is_empty()
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !l.starts_with(|c: char| c.is_ascii_digit());
            if !ok {
                return Err(Error::query(field, format!("{l:?} is not a label name")));
            }
        }
        Ok(())
    }
}

/// How the autoscaler asks for the latency quantiles (docs/autoscaler.md, "Observing").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueryShape {
    /// Cheap per-revision series for every revision each cycle (request and latency-sum
    /// rates, CPU, two buckets per revision); the quantiles only for the revisions whose
    /// decision reads them. The same decisions as `flat`.
    #[default]
    Tiered,
    /// Every quantile for every revision each cycle (seven queries).
    Flat,
}

/// The `prometheus` section of the autoscaler's configuration: where Prometheus answers and
/// what to ask it. `kn gaia status` reads the same section from the autoscaler's ConfigMap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct PrometheusConfig {
    /// Base URL of the Prometheus HTTP API.
    pub url: String,
    /// Timeout of one query.
    #[serde(with = "serde_duration")]
    pub timeout: Duration,
    /// Which Knative metric names to query by default: `auto` (the default: from the Knative
    /// release found in the cluster, else from the series Prometheus holds, see
    /// [`choose_generation`]), `opencensus` (Knative up to 1.18,
    /// `revision_app_request_latencies_*`, milliseconds), `kn-queueproxy` (1.19.0 to 1.19.7 and
    /// 1.20.0, `kn_queueproxy_app_duration_seconds_*`) or `opentelemetry` (1.19.8+, 1.20.1+,
    /// 1.21+, `kn_serving_invocation_duration_seconds_*`).
    pub generation: GenerationSetting,
    /// Where the OpenTelemetry generations' revision identity is: `auto` (the default: as the
    /// request series found carry it, see [`choose_layout`]), `target_info` (scraped) or
    /// `promoted` (OTLP with promoted resource attributes).
    pub labels: LayoutSetting,
    /// The cluster's Knative Serving release (`1.20.0`), when given: on a release whose
    /// queue-proxy records latencies under 1 s as 0 s, sub-second objectives are held
    /// (`latency_unreliable`) instead of judged on whole seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub knative_version: Option<String>,
    /// `tiered` (default) or `flat`: see [`QueryShape`]. Templates that cannot be asked
    /// tiered (an overridden `latencyQuantile` without `latencyBuckets`) are asked flat.
    pub query_shape: QueryShape,
    /// Replace any of the default PromQL templates or label names.
    pub queries: QueryOverrides,
    /// GPU utilisation and memory from NVIDIA's DCGM exporter (off by default).
    pub dcgm: DcgmConfig,
}

impl Default for PrometheusConfig {
    fn default() -> Self {
        PrometheusConfig {
            url: "http://prometheus-operated.monitoring.svc:9090".into(),
            timeout: Duration::from_secs(5),
            generation: GenerationSetting::Auto,
            labels: LayoutSetting::Auto,
            knative_version: None,
            query_shape: QueryShape::Tiered,
            queries: QueryOverrides::default(),
            dcgm: DcgmConfig::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn defaults_name_the_right_metrics_and_units() {
        let oc = QuerySet::new(
            Generation::OpenCensus,
            &QueryOverrides::default(),
            "user-container",
        );
        assert!(oc
            .latency_quantile
            .contains("revision_app_request_latencies_bucket"));
        assert_eq!(oc.latency_unit, LatencyUnit::Milliseconds);
        assert_eq!(oc.revision_label, "revision_name");
        let otel = QuerySet::new(
            Generation::OpenTelemetry,
            &QueryOverrides::default(),
            "user-container",
        );
        assert!(otel
            .latency_quantile
            .contains("kn_serving_invocation_duration_seconds_bucket"));
        assert!(otel.latency_quantile.contains("target_info"));
        assert_eq!(otel.latency_unit, LatencyUnit::Seconds);
        assert!(otel.cpu_usage.contains("container=\"user-container\""));
        oc.validate().unwrap();
        otel.validate().unwrap();
        assert_eq!(
            QuerySet::render("rate(x[{window}])", Duration::from_secs(90)),
            "rate(x[90s])"
        );
    }

    #[test]
    fn overrides_replace_defaults() {
        let o = QueryOverrides {
            revision_label: Some("revision".into()),
            latency_unit: Some(LatencyUnit::Milliseconds),
            ..Default::default()
        };
        let q = QuerySet::new(Generation::OpenTelemetry, &o, "user-container");
        assert_eq!(q.revision_label, "revision");
        assert_eq!(q.latency_unit, LatencyUnit::Milliseconds);
        let bad = QuerySet {
            pod_label: "pod-name".into(),
            ..q
        };
        assert!(bad.validate().unwrap_err().to_string().contains("podLabel"));
    }

    #[test]
    fn each_knative_release_has_its_generation_and_the_bug_releases_are_known() {
        let g = |v: &str| Generation::of_knative(v.parse().unwrap());
        let bug = |v: &str| {
            v.parse::<KnativeVersion>()
                .unwrap()
                .truncates_subsecond_latency()
        };
        for (version, generation, truncates) in [
            ("1.18.2", Generation::OpenCensus, false),
            ("v1.19.0", Generation::KnQueueProxy, true),
            ("1.19.7", Generation::KnQueueProxy, true),
            ("1.19.8", Generation::OpenTelemetry, true),
            ("1.19.9", Generation::OpenTelemetry, false),
            ("1.20.0", Generation::KnQueueProxy, true),
            ("1.20.1", Generation::OpenTelemetry, true),
            ("1.20.2", Generation::OpenTelemetry, false),
            ("1.21.0", Generation::OpenTelemetry, false),
            ("1.21.2", Generation::OpenTelemetry, false),
            ("1.22", Generation::OpenTelemetry, false),
        ] {
            assert_eq!(g(version), generation, "{version}");
            assert_eq!(bug(version), truncates, "{version}");
        }
        for bad in ["", "1", "one.two", "1.2.3.4"] {
            assert!(bad.parse::<KnativeVersion>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn auto_chooses_from_the_release_at_every_boundary_then_the_series_then_the_newest() {
        let v = |t: &str| t.parse::<KnativeVersion>().unwrap();
        let label = || "namespace label app.kubernetes.io/version".to_string();
        for (version, generation) in [
            ("1.18.0", Generation::OpenCensus),
            ("1.18.4", Generation::OpenCensus),
            ("1.19.0", Generation::KnQueueProxy),
            ("1.19.7", Generation::KnQueueProxy),
            ("1.19.8", Generation::OpenTelemetry),
            ("1.19.9", Generation::OpenTelemetry),
            ("1.20.0", Generation::KnQueueProxy),
            ("1.20.1", Generation::OpenTelemetry),
            ("1.20.2", Generation::OpenTelemetry),
            ("1.21", Generation::OpenTelemetry),
            ("1.21.2", Generation::OpenTelemetry),
            ("v0.26.0", Generation::OpenCensus),
        ] {
            // the release decides even when Prometheus holds another generation's series
            let c = choose_generation(
                GenerationSetting::Auto,
                Some((v(version), label())),
                Some(vec![Generation::OpenCensus]),
            );
            assert_eq!(c.generation, generation, "{version}");
            assert_eq!(
                c.by,
                ChosenBy::Release {
                    version: v(version),
                    source: label()
                }
            );
            assert!(c.why().contains(&format!("Knative Serving {}", v(version))));
            assert_eq!(
                c.contradicted(),
                (generation != Generation::OpenCensus).then_some(Generation::OpenCensus),
                "{version}"
            );
        }
        // a configured generation wins over the release
        let c = choose_generation(
            GenerationSetting::KnQueueProxy,
            Some((v("1.21.2"), label())),
            None,
        );
        assert_eq!(
            (c.generation, c.by),
            (Generation::KnQueueProxy, ChosenBy::Configured)
        );
        // no release: the series, the newest of them when several
        let c = choose_generation(
            GenerationSetting::Auto,
            None,
            Some(vec![Generation::OpenCensus, Generation::KnQueueProxy]),
        );
        assert_eq!(
            (c.generation, &c.by),
            (Generation::KnQueueProxy, &ChosenBy::Series)
        );
        assert!(
            c.why().contains("kn_queueproxy_app_duration_seconds_count"),
            "{}",
            c.why()
        );
        assert_eq!(c.contradicted(), None);
        // nothing known: the newest, said so
        for series in [None, Some(vec![])] {
            let c = choose_generation(GenerationSetting::Auto, None, series);
            assert_eq!(
                (c.generation, &c.by),
                (Generation::OpenTelemetry, &ChosenBy::Default)
            );
            assert!(c.why().contains("the newest"), "{}", c.why());
        }
        // the setting's spellings
        for (text, setting) in [
            ("auto", GenerationSetting::Auto),
            ("opencensus", GenerationSetting::OpenCensus),
            ("kn-queueproxy", GenerationSetting::KnQueueProxy),
            ("opentelemetry", GenerationSetting::OpenTelemetry),
        ] {
            let cfg: PrometheusConfig =
                serde_json::from_str(&format!(r#"{{"generation":"{text}"}}"#)).unwrap();
            assert_eq!(cfg.generation, setting);
            assert_eq!(
                setting.fixed().map(Generation::name),
                (text != "auto").then_some(text)
            );
        }
        assert_eq!(
            PrometheusConfig::default().generation,
            GenerationSetting::Auto
        );
        assert!(serde_json::from_str::<PrometheusConfig>(r#"{"generation":"otel"}"#).is_err());
        let pinned = PrometheusConfig {
            knative_version: Some("1.20.0".into()),
            ..PrometheusConfig::default()
        };
        assert_eq!(pinned.initial_generation(), Generation::KnQueueProxy);
        assert_eq!(
            PrometheusConfig::default().initial_generation(),
            Generation::OpenTelemetry
        );
        for g in Generation::ALL {
            assert_eq!(Generation::of_count_metric(g.count_metric()), Some(g));
        }
    }

    #[test]
    fn the_layout_is_configured_else_as_the_series_carry_the_labels_else_target_info() {
        use LayoutSetting as S;
        for (setting, found, layout, by) in [
            (S::Auto, Some(true), LabelLayout::Promoted, LayoutBy::Series),
            (
                S::Auto,
                Some(false),
                LabelLayout::TargetInfo,
                LayoutBy::Series,
            ),
            (S::Auto, None, LabelLayout::TargetInfo, LayoutBy::Default),
            (
                S::TargetInfo,
                Some(true),
                LabelLayout::TargetInfo,
                LayoutBy::Configured,
            ),
            (
                S::Promoted,
                Some(false),
                LabelLayout::Promoted,
                LayoutBy::Configured,
            ),
            (
                S::Promoted,
                None,
                LabelLayout::Promoted,
                LayoutBy::Configured,
            ),
        ] {
            assert_eq!(
                choose_layout(setting, found),
                (layout, by),
                "{setting:?} {found:?}"
            );
        }
        let cfg: PrometheusConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(
            (cfg.labels, cfg.initial_layout()),
            (S::Auto, LabelLayout::TargetInfo)
        );
        for (text, setting) in [
            ("auto", S::Auto),
            ("target_info", S::TargetInfo),
            ("promoted", S::Promoted),
        ] {
            let cfg: PrometheusConfig =
                serde_json::from_str(&format!(r#"{{"labels":"{text}"}}"#)).unwrap();
            assert_eq!(cfg.labels, setting);
        }
        assert!(serde_json::from_str::<PrometheusConfig>(r#"{"labels":"pushed"}"#).is_err());
        // the why names the layout for OpenTelemetry, not for OpenCensus (it has no layouts)
        let otel = choose_generation(
            GenerationSetting::Auto,
            None,
            Some(vec![Generation::OpenTelemetry]),
        )
        .with_layout(choose_layout(S::Auto, Some(true)));
        assert!(
            otel.why()
                .ends_with("revision labels on promoted (auto: as the series carry them)"),
            "{}",
            otel.why()
        );
        let oc = choose_generation(GenerationSetting::OpenCensus, None, None);
        assert!(!oc.why().contains("revision labels"), "{}", oc.why());
    }

    #[test]
    fn the_dcgm_query_is_off_by_default_and_names_the_pod_labels_of_its_layout() {
        let off = PrometheusConfig::default();
        assert_eq!(
            off.queries(Generation::OpenTelemetry, LabelLayout::TargetInfo, "c")
                .gpu_use,
            None
        );
        let cfg: PrometheusConfig =
            serde_json::from_str(r#"{"dcgm":{"enabled":true,"labels":"exported"}}"#).unwrap();
        let q = cfg.queries(Generation::OpenTelemetry, LabelLayout::TargetInfo, "c");
        q.validate().unwrap();
        let g = q.gpu_use.unwrap();
        assert_eq!(
            (g.namespace_label.as_str(), g.pod_label.as_str()),
            ("exported_namespace", "exported_pod")
        );
        assert_eq!(
            QuerySet::render(&g.template, Duration::from_secs(300)),
            "label_replace(avg by (exported_namespace, exported_pod) (avg_over_time(DCGM_FI_DEV_GPU_UTIL{exported_pod!=\"\"}[5m])), \"gaia_gpu\", \"util_pct\", \"\", \"\") or label_replace(sum by (exported_namespace, exported_pod) (DCGM_FI_DEV_FB_USED{exported_pod!=\"\"}), \"gaia_gpu\", \"fb_used_mib\", \"\", \"\") or label_replace(sum by (exported_namespace, exported_pod) (DCGM_FI_DEV_FB_FREE{exported_pod!=\"\"}), \"gaia_gpu\", \"fb_free_mib\", \"\", \"\")"
        );
        let pod: PrometheusConfig = serde_json::from_str(r#"{"dcgm":{"enabled":true}}"#).unwrap();
        assert_eq!(pod.dcgm.query().unwrap().pod_label, "pod");
        assert!(serde_json::from_str::<PrometheusConfig>(
            r#"{"dcgm":{"enabled":true,"labels":"node"}}"#
        )
        .is_err());
        let bad: PrometheusConfig =
            serde_json::from_str(r#"{"dcgm":{"enabled":true,"query":"up"}}"#).unwrap();
        let err = bad
            .queries(Generation::OpenTelemetry, LabelLayout::TargetInfo, "c")
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("prometheus.dcgm.query"), "{err}");
    }

    #[test]
    fn every_generation_and_layout_names_its_metric_and_labels() {
        for (generation, metric) in [
            (
                Generation::KnQueueProxy,
                "kn_queueproxy_app_duration_seconds",
            ),
            (
                Generation::OpenTelemetry,
                "kn_serving_invocation_duration_seconds",
            ),
        ] {
            let d = QueryOverrides::default();
            let joined = QuerySet::with_layout(generation, LabelLayout::TargetInfo, &d, "c");
            let promoted = QuerySet::with_layout(generation, LabelLayout::Promoted, &d, "c");
            for q in [&joined, &promoted] {
                q.validate().unwrap();
                assert!(q.latency_quantile.contains(&format!("{metric}_bucket")));
                assert!(q.request_rate.contains(&format!("{metric}_count")));
                assert_eq!(q.revision_label, "kn_revision_name");
                assert_eq!(q.latency_unit, LatencyUnit::Seconds);
            }
            assert!(joined.request_rate.contains("target_info"));
            assert!(!promoted.request_rate.contains("target_info"));
        }
        let names: Vec<String> = ["opencensus", "kn-queueproxy", "opentelemetry"]
            .iter()
            .map(|n| format!("{n:?}"))
            .collect();
        for n in &names {
            let g: Generation = serde_json::from_str(n).unwrap();
            assert_eq!(&serde_json::to_string(&g).unwrap(), n);
        }
    }

    #[test]
    fn the_flat_shape_asks_what_it_asked_before_and_the_tiers_insert_their_selector() {
        let d = QueryOverrides::default();
        let q = QuerySet::new(Generation::OpenTelemetry, &d, "user-container");
        assert_eq!(
            q.render_quantile(0.95, Duration::from_secs(60)),
            "histogram_quantile(0.95, sum by (k8s_namespace_name, kn_revision_name, le) (sum by (job, instance, le) (rate(kn_serving_invocation_duration_seconds_bucket[1m])) * on (job, instance) group_left (k8s_namespace_name, kn_revision_name) target_info))"
        );
        assert_eq!(
            q.render_quantile_selected(0.5, Duration::from_secs(300), "{instance=~\"a|b\"}"),
            "histogram_quantile(0.5, sum by (k8s_namespace_name, kn_revision_name, le) (sum by (job, instance, le) (rate(kn_serving_invocation_duration_seconds_bucket{instance=~\"a|b\"}[5m])) * on (job, instance) group_left (k8s_namespace_name, kn_revision_name) target_info))"
        );
        assert!(q.tiered());
        assert_eq!(
            q.bucket_metric(),
            Some("kn_serving_invocation_duration_seconds_bucket")
        );
        assert!(q
            .revision_targets
            .as_deref()
            .unwrap()
            .contains("target_info"));
        let oc = QuerySet::new(Generation::OpenCensus, &d, "user-container");
        assert_eq!(
            oc.render_quantile(0.95, Duration::from_secs(60)),
            "histogram_quantile(0.95, sum by (namespace_name, revision_name, le) (rate(revision_app_request_latencies_bucket[1m])))"
        );
        assert_eq!(oc.revision_targets, None);
        let promoted = QuerySet::with_layout(
            Generation::OpenTelemetry,
            LabelLayout::Promoted,
            &d,
            "user-container",
        );
        assert!(promoted.tiered() && promoted.revision_targets.is_none());
    }

    #[test]
    fn an_overridden_quantile_alone_is_asked_flat_and_buckets_come_with_a_selector() {
        let alone = QueryOverrides {
            latency_quantile: Some(
                "histogram_quantile({quantile}, sum by (namespace, revision, le) (rate(x_bucket[{window}])))".into(),
            ),
            ..Default::default()
        };
        let q = QuerySet::new(Generation::OpenTelemetry, &alone, "c");
        q.validate().unwrap();
        assert!(!q.tiered());
        let buckets = QueryOverrides {
            latency_buckets: Some(
                "sum by (namespace, revision, le) (rate(my:latency_bucket{selector}[{window}]))"
                    .into(),
            ),
            ..Default::default()
        };
        let q = QuerySet::new(Generation::OpenTelemetry, &buckets, "c");
        q.validate().unwrap();
        assert!(q.tiered());
        assert_eq!(q.bucket_metric(), Some("my:latency_bucket"));
        assert_eq!(q.revision_targets, None);
        assert!(q
            .latency_quantile
            .starts_with("histogram_quantile({quantile}, sum by (namespace"));
        let no_selector = QueryOverrides {
            latency_buckets: Some("sum by (le) (rate(x_bucket[{window}]))".into()),
            ..Default::default()
        };
        let err = QuerySet::new(Generation::OpenTelemetry, &no_selector, "c")
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("latencyBuckets"), "{err}");
        let mismatched = QueryOverrides {
            latency_buckets: Some("sum by (le) (rate(x_bucket{selector}[{window}]))".into()),
            ..alone
        };
        let err = QuerySet::new(Generation::OpenTelemetry, &mismatched, "c")
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("latencyQuantile"), "{err}");
        let cfg: PrometheusConfig = serde_json::from_str(r#"{"queryShape":"flat"}"#).unwrap();
        assert_eq!(cfg.query_shape, QueryShape::Flat);
        assert_eq!(PrometheusConfig::default().query_shape, QueryShape::Tiered);
    }
}
