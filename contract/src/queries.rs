//! PromQL templates and their configuration (`prometheus.generation`, `prometheus.queries` of
//! the autoscaler's ConfigMap), shared by the autoscaler and `kn gaia status`. `{window}` is replaced by a range (`1m`, `5m`), `{quantile}` (latency
//! quantile template only) by `0.95` or `0.5`.
//!
//! Defaults exist for both Knative metric generations (see docs/autoscaler.md):
//!
//! - `opencensus` (Knative up to 1.18): queue-proxy `revision_app_request_latencies_*` in
//!   milliseconds, revision identity in the labels `namespace_name`, `revision_name`.
//! - `opentelemetry` (Knative 1.19 and later): queue-proxy
//!   `kn_serving_invocation_duration_seconds_*` in seconds. Its revision identity is an
//!   OpenTelemetry *resource* attribute, which the Prometheus exporter puts on `target_info`,
//!   not on the series; the default templates join it in with
//!   `* on (job, instance) group_left (k8s_namespace_name, kn_revision_name) target_info`.
//!   Where scrape relabeling already puts the revision on every series, override the templates
//!   and the label names (docs/autoscaler.md shows how).
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
#[serde(rename_all = "lowercase")]
pub enum Generation {
    /// Knative up to 1.18.
    OpenCensus,
    /// Knative 1.19 and later.
    OpenTelemetry,
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
    pub latency_quantile: String,
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
    /// The defaults of `generation`, with `overrides` applied. `container` is the user
    /// container's name in cAdvisor series.
    pub fn new(generation: Generation, overrides: &QueryOverrides, container: &str) -> QuerySet {
        let (p95, rate, sum_rate, ns, rev, unit) = match generation {
            Generation::OpenCensus => {
                let by = "namespace_name, revision_name";
                let m = "revision_app_request_latencies";
                (
                    format!("histogram_quantile({{quantile}}, sum by ({by}, le) (rate({m}_bucket[{{window}}])))"),
                    format!("sum by ({by}) (rate({m}_count[{{window}}]))"),
                    format!("sum by ({by}) (rate({m}_sum[{{window}}]))"),
                    "namespace_name",
                    "revision_name",
                    LatencyUnit::Milliseconds,
                )
            }
            Generation::OpenTelemetry => {
                let by = "k8s_namespace_name, kn_revision_name";
                let m = "kn_serving_invocation_duration_seconds";
                (
                    // Aggregate per scrape target first (status codes...), then join.
                    format!(
                        "histogram_quantile({{quantile}}, sum by ({by}, le) (sum by (job, instance, le) (rate({m}_bucket[{{window}}])) {OTEL_JOIN}))"
                    ),
                    format!("sum by ({by}) (sum by (job, instance) (rate({m}_count[{{window}}])) {OTEL_JOIN})"),
                    format!("sum by ({by}) (sum by (job, instance) (rate({m}_sum[{{window}}])) {OTEL_JOIN})"),
                    "k8s_namespace_name",
                    "kn_revision_name",
                    LatencyUnit::Seconds,
                )
            }
        };
        let cpu = format!(
            "sum by (namespace, pod) (rate(container_cpu_usage_seconds_total{{container=\"{}\"}}[{{window}}]))",
            container.replace('\\', "\\\\").replace('"', "\\\"")
        );
        let o = overrides;
        let pick = |over: &Option<String>, default: String| over.clone().unwrap_or(default);
        QuerySet {
            latency_quantile: pick(&o.latency_quantile, p95),
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

    /// Replaces `{window}` by the range.
    pub fn render(template: &str, window: std::time::Duration) -> String {
        template.replace("{window}", &format_duration(window))
    }

    /// Renders the latency quantile template.
    pub fn render_quantile(&self, quantile: f64, window: std::time::Duration) -> String {
        Self::render(&self.latency_quantile, window).replace("{quantile}", &quantile.to_string())
    }

    /// Every template must have a `{window}`; label names must look like labels.
    pub fn validate(&self) -> Result<(), Error> {
        if !self.latency_quantile.contains("{quantile}") {
            return Err(Error::query(
                "prometheus.queries.latencyQuantile",
                "the template has no {quantile} placeholder",
            ));
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
    /// `revision_app_request_latencies_*`, milliseconds) or `opentelemetry` (from 1.19,
    /// `kn_serving_invocation_duration_seconds_*`, seconds).
    pub generation: Generation,
    /// Replace any of the default PromQL templates or label names.
    pub queries: QueryOverrides,
}

impl Default for PrometheusConfig {
    fn default() -> Self {
        PrometheusConfig {
            url: "http://prometheus-operated.monitoring.svc:9090".into(),
            timeout: Duration::from_secs(5),
            generation: Generation::OpenTelemetry,
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
}
