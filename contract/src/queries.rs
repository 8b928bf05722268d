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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
            let (buckets, rate, sum_rate, targets) = match layout {
                // Aggregate per scrape target first (status codes...), then join.
                LabelLayout::TargetInfo => (
                    format!(
                        "sum by ({by}, le) (sum by (job, instance, le) (rate({m}_bucket{{selector}}[{{window}}])) {OTEL_JOIN})"
                    ),
                    format!("sum by ({by}) (sum by (job, instance) (rate({m}_count[{{window}}])) {OTEL_JOIN})"),
                    format!("sum by ({by}) (sum by (job, instance) (rate({m}_sum[{{window}}])) {OTEL_JOIN})"),
                    Some(format!("group by (job, instance, {by}) (target_info)")),
                ),
                LabelLayout::Promoted => (
                    format!("sum by ({by}, le) (rate({m}_bucket{{selector}}[{{window}}]))"),
                    format!("sum by ({by}) (rate({m}_count[{{window}}]))"),
                    format!("sum by ({by}) (rate({m}_sum[{{window}}]))"),
                    None,
                ),
            };
            (
                buckets,
                rate,
                sum_rate,
                targets,
                "k8s_namespace_name",
                "kn_revision_name",
                LatencyUnit::Seconds,
            )
        };
        let (buckets, rate, sum_rate, targets, ns, rev, unit) = match generation {
            Generation::OpenCensus => {
                let by = "namespace_name, revision_name";
                let m = "revision_app_request_latencies";
                (
                    format!("sum by ({by}, le) (rate({m}_bucket{{selector}}[{{window}}]))"),
                    format!("sum by ({by}) (rate({m}_count[{{window}}]))"),
                    format!("sum by ({by}) (rate({m}_sum[{{window}}]))"),
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
        QuerySet {
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
    /// Which Knative metric names to query by default: `opencensus` (Knative up to 1.18,
    /// `revision_app_request_latencies_*`, milliseconds), `kn-queueproxy` (1.19.0 to 1.19.7 and
    /// 1.20.0, `kn_queueproxy_app_duration_seconds_*`) or `opentelemetry` (1.19.8+, 1.20.1+,
    /// 1.21+, `kn_serving_invocation_duration_seconds_*`).
    pub generation: Generation,
    /// Where the OpenTelemetry generations' revision identity is: `target_info` (scraped,
    /// the default) or `promoted` (OTLP with promoted resource attributes).
    pub labels: LabelLayout,
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
}

impl Default for PrometheusConfig {
    fn default() -> Self {
        PrometheusConfig {
            url: "http://prometheus-operated.monitoring.svc:9090".into(),
            timeout: Duration::from_secs(5),
            generation: Generation::OpenTelemetry,
            labels: LabelLayout::TargetInfo,
            knative_version: None,
            query_shape: QueryShape::Tiered,
            queries: QueryOverrides::default(),
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
