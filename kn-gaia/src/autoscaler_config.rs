//! The autoscaler's own configuration, read from its ConfigMap: `kn gaia status` asks Prometheus
//! the autoscaler's queries (its generation, its template overrides, its container name) over its
//! short window, and shows the default SLO it applies, so the numbers shown are the ones it
//! decides on.

use std::time::Duration;

use gaia_contract::duration::serde_duration;
use gaia_contract::placement::PlacementProfiles;
use gaia_contract::queries::{Generation, LabelLayout, PrometheusConfig, QuerySet, USER_CONTAINER};
use gaia_contract::DEFAULT_LATENCY_SLO;
use gaia_policy::ladder::LadderConfig;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use serde::Deserialize;

use crate::Error;

/// Where `manifests/` installs it.
pub const CONFIGMAP: &str = "gaia-autoscaler-config";
/// Its key.
pub const KEY: &str = "config.yaml";

/// The parts of the autoscaler's configuration that `kn gaia` reads; the rest is ignored here
/// (the autoscaler itself validates it all).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AutoscalerView {
    pub prometheus: PrometheusConfig,
    /// What a CPU or GPU placement injects (`kn gaia doctor` checks the nodes and Knative's
    /// feature flags against it).
    pub placement: PlacementProfiles,
    pub cpu: CpuView,
    pub policy: PolicyView,
    #[serde(with = "serde_latency")]
    pub default_slo: Duration,
    /// The placement ladder, when one is configured: `kn gaia status` shows each Service's
    /// rung and the cost of 1,000 requests per rung.
    pub ladder: Option<LadderConfig>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CpuView {
    pub container: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PolicyView {
    #[serde(with = "serde_duration")]
    pub short_window: Duration,
    /// The window of DCGM's mean utilisation.
    #[serde(with = "serde_duration")]
    pub long_window: Duration,
}

impl Default for AutoscalerView {
    fn default() -> Self {
        AutoscalerView {
            prometheus: PrometheusConfig::default(),
            placement: PlacementProfiles::default(),
            cpu: CpuView::default(),
            policy: PolicyView::default(),
            default_slo: DEFAULT_LATENCY_SLO,
            ladder: None,
        }
    }
}

impl Default for CpuView {
    fn default() -> Self {
        CpuView {
            container: USER_CONTAINER.into(),
        }
    }
}

impl Default for PolicyView {
    fn default() -> Self {
        PolicyView {
            short_window: gaia_policy::PolicyConfig::default().short_window,
            long_window: gaia_policy::PolicyConfig::default().long_window,
        }
    }
}

mod serde_latency {
    use super::*;
    use serde::Deserializer;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        gaia_contract::parse_latency(&text).map_err(serde::de::Error::custom)
    }
}

/// Where the view came from, for the notes `kn gaia status` prints.
#[derive(Debug, Clone, PartialEq)]
pub enum Origin {
    /// `NAMESPACE/NAME` of the ConfigMap.
    ConfigMap(String),
    /// No ConfigMap (Gaia not installed, or elsewhere): the autoscaler's defaults.
    Defaults,
}

impl AutoscalerView {
    /// Parses the ConfigMap's `config.yaml` (YAML or JSON).
    pub fn parse(text: &str) -> Result<AutoscalerView, String> {
        if text.trim().is_empty() {
            return Ok(AutoscalerView::default());
        }
        serde_saphyr::from_str(text).map_err(|e| e.to_string())
    }

    /// The PromQL the autoscaler sends before it has chosen a generation.
    pub fn queries(&self) -> QuerySet {
        self.prometheus.initial_queries(&self.cpu.container)
    }

    /// The PromQL the autoscaler sends for `generation` and `layout`.
    pub fn queries_for(&self, generation: Generation, layout: LabelLayout) -> QuerySet {
        self.prometheus
            .queries(generation, layout, &self.cpu.container)
    }
}

/// Reads the ConfigMap; its absence (or no right to read it) gives the defaults.
pub async fn load(
    client: &kube::Client,
    namespace: &str,
) -> Result<(AutoscalerView, Origin), Error> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let cm = match api.get_opt(CONFIGMAP).await {
        Ok(Some(cm)) => cm,
        Ok(None) => return Ok((AutoscalerView::default(), Origin::Defaults)),
        Err(kube::Error::Api(s)) if s.code == 403 => {
            return Ok((AutoscalerView::default(), Origin::Defaults))
        }
        Err(e) => return Err(e.into()),
    };
    let name = format!("{namespace}/{CONFIGMAP}");
    let text = cm
        .data
        .as_ref()
        .and_then(|d| d.get(KEY))
        .map(String::as_str)
        .unwrap_or_default();
    let view = AutoscalerView::parse(text)
        .map_err(|e| Error::AutoscalerConfig(format!("{name} ({KEY}): {e}")))?;
    Ok((view, Origin::ConfigMap(name)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gaia_contract::queries::GenerationSetting;

    #[test]
    fn reads_what_the_autoscaler_reads_and_ignores_the_rest() {
        let v = AutoscalerView::parse(
            r#"
prometheus:
  url: http://prom:9090
  generation: opencensus
  queries: {revisionLabel: revision}
cpu: {container: app}
policy: {shortWindow: 30s, longWindow: 5m}
defaultSlo: 300ms
leaderElection: {name: x}
"#,
        )
        .unwrap();
        assert_eq!(v.prometheus.generation, GenerationSetting::OpenCensus);
        assert_eq!(v.policy.short_window, Duration::from_secs(30));
        assert_eq!(v.default_slo, Duration::from_millis(300));
        let q = v.queries();
        assert_eq!(q.revision_label, "revision");
        assert!(q.cpu_usage.contains("container=\"app\""), "{}", q.cpu_usage);
    }

    #[test]
    fn reads_the_ladder_when_there_is_one() {
        assert!(AutoscalerView::parse("defaultSlo: 1s")
            .unwrap()
            .ladder
            .is_none());
        let v = AutoscalerView::parse(
            r#"
ladder:
  rungs:
    - {name: cpu, pricePerSecond: 0.000038}
    - name: gpu-shared
      resource: nvidia.com/gpu.shared
      pricePerSecond: 0.000019
      profile: {limits: {nvidia.com/gpu.shared: "1"}}
"#,
        )
        .unwrap();
        let l = v.ladder.unwrap();
        assert_eq!(l.rungs[1].name, "gpu-shared");
        assert_eq!(l.rungs[1].price_per_second, 0.000019);
    }

    #[test]
    fn the_shipped_configmap_parses() {
        let text = include_str!("../../manifests/base/autoscaler-config.yaml");
        // The ConfigMap's config.yaml is the block under `config.yaml: |`.
        let body: String = text
            .split_once("config.yaml: |\n")
            .map(|(_, b)| b)
            .unwrap_or_default()
            .lines()
            .map(|l| l.strip_prefix("    ").unwrap_or(l))
            .collect::<Vec<_>>()
            .join("\n");
        let v = AutoscalerView::parse(&body).unwrap();
        assert_eq!(v.prometheus.generation, GenerationSetting::Auto);
        assert!(AutoscalerView::parse("prometheus: {generation: otel}").is_err());
        assert_eq!(
            AutoscalerView::parse("").unwrap(),
            AutoscalerView::default()
        );
    }
}
