//! Configuration: a YAML or JSON file (mounted from a ConfigMap in production) plus a few flags
//! that override it. Every field has a default; unknown fields are rejected; [`Config::validate`]
//! names the field that is wrong, and the process refuses to start with it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use gaia_contract::placement::{PlacementProfiles, GPU_RESOURCE};
use serde::{Deserialize, Serialize};

use crate::Error;
use gaia_contract::duration::{format_duration, parse_duration, serde_duration};
use gaia_contract::logging::LogFormat;
use gaia_contract::queries::{Generation, LabelLayout, PrometheusConfig, QuerySet};
use gaia_policy::ladder::LadderConfig;
use gaia_policy::{PolicyConfig, DEFAULT_CAPACITY_WITHOUT_LIMIT, DEFAULT_INTERVAL};

/// Command line. Flags override the file.
#[derive(Debug, Clone, Parser)]
#[command(name = "gaia-autoscaler", version, about)]
pub struct Args {
    /// Configuration file (YAML or JSON).
    #[arg(long, env = "GAIA_AUTOSCALER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Prometheus base URL (overrides `prometheus.url`).
    #[arg(long, env = "GAIA_PROMETHEUS_URL")]
    pub prometheus_url: Option<String>,
    /// Evaluation interval, e.g. `10s` (overrides `interval`).
    #[arg(long, value_parser = parse_duration)]
    pub interval: Option<Duration>,
    /// Address of the /metrics, /healthz and /readyz endpoints (overrides `listen`).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Act without a Lease (a single replica, or local development).
    #[arg(long)]
    pub no_leader_election: bool,
    /// Decide and log, but change nothing in the cluster.
    #[arg(long)]
    pub dry_run: bool,
    /// Log format.
    #[arg(long, env = "GAIA_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Validate the configuration, print it with all defaults filled in, and exit.
    #[arg(long)]
    pub check_config: bool,
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Config {
    /// Manage only the Services of this namespace; empty: every namespace. (Pods and nodes
    /// are always watched cluster-wide: GPUs are shared.)
    pub namespace: String,
    pub prometheus: PrometheusConfig,
    /// Time between two decision cycles.
    #[serde(with = "serde_duration")]
    pub interval: Duration,
    /// p95 objective for Services without `gaia.dev/latency-slo`.
    #[serde(with = "slo_serde")]
    pub default_slo: Duration,
    /// Every threshold the policy reads (windows included).
    pub policy: PolicyConfig,
    pub gpu: GpuConfig,
    pub cpu: CpuConfig,
    /// The placement profiles; must be the webhook's, so both rewrite templates alike.
    pub placement: PlacementProfiles,
    pub leader_election: LeaderElectionConfig,
    /// Listen address of /metrics, /healthz, /readyz.
    pub listen: SocketAddr,
    /// A "no GPU free" Event for the same Service is repeated at most this often.
    #[serde(with = "serde_duration")]
    pub no_gpu_event_every: Duration,
    /// A placement ladder (docs/ladder.md): more rungs than the two placements, each with its
    /// profile, resource, price and GPU memory. Absent (the default): today's two placements,
    /// decided as before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ladder: Option<LadderConfig>,
    /// The preflight (gaia-preflight, as `kn gaia doctor` runs it), at start and periodically:
    /// its result in the metric `gaia_autoscaler_preflight_check`, an Event when a check changes
    /// state, and no move that a failing check would make fail.
    pub preflight: PreflightConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            namespace: String::new(),
            prometheus: PrometheusConfig::default(),
            interval: DEFAULT_INTERVAL,
            default_slo: gaia_contract::DEFAULT_LATENCY_SLO,
            policy: PolicyConfig::default(),
            gpu: GpuConfig::default(),
            cpu: CpuConfig::default(),
            placement: PlacementProfiles::default(),
            leader_election: LeaderElectionConfig::default(),
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            no_gpu_event_every: Duration::from_secs(300),
            ladder: None,
            preflight: PreflightConfig::default(),
        }
    }
}

/// When the preflight runs (the `preflight` section).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct PreflightConfig {
    /// Off: no preflight, no metric, no move held for it (today's behaviour before it).
    pub enabled: bool,
    /// Time between two runs while every check passes (or only warns).
    #[serde(with = "serde_duration")]
    pub interval: Duration,
    /// Time between two runs while a check fails, so that a fix is seen soon and the moves it
    /// held go ahead.
    #[serde(with = "serde_duration")]
    pub failing_interval: Duration,
}

impl Default for PreflightConfig {
    fn default() -> Self {
        PreflightConfig {
            enabled: true,
            interval: Duration::from_secs(300),
            failing_interval: Duration::from_secs(30),
        }
    }
}

/// How free GPUs are counted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct GpuConfig {
    /// The extended resource that is a GPU.
    pub resource: String,
    /// Labels of GPU-pool nodes. Empty: the GPU placement profile's nodeSelector.
    pub node_selector: BTreeMap<String, String>,
}

impl Default for GpuConfig {
    fn default() -> Self {
        GpuConfig {
            resource: GPU_RESOURCE.into(),
            node_selector: BTreeMap::new(),
        }
    }
}

/// How CPU use is read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct CpuConfig {
    /// Name of the container that runs the function in Knative pods.
    pub container: String,
    /// Cores a container without CPU limit or request is measured against.
    pub capacity_without_limit: f64,
}

impl Default for CpuConfig {
    fn default() -> Self {
        CpuConfig {
            container: gaia_contract::queries::USER_CONTAINER.into(),
            capacity_without_limit: DEFAULT_CAPACITY_WITHOUT_LIMIT,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct LeaderElectionConfig {
    pub enabled: bool,
    /// Namespace of the Lease; empty: `$POD_NAMESPACE`, else `gaia-system`.
    pub namespace: String,
    pub name: String,
    /// A Lease not renewed for this long may be taken over.
    #[serde(with = "serde_duration")]
    pub lease_duration: Duration,
    /// The leader stops acting when it could not renew for this long.
    #[serde(with = "serde_duration")]
    pub renew_deadline: Duration,
    /// How often the Lease is renewed or tried.
    #[serde(with = "serde_duration")]
    pub retry_period: Duration,
}

impl Default for LeaderElectionConfig {
    fn default() -> Self {
        LeaderElectionConfig {
            enabled: true,
            namespace: String::new(),
            name: "gaia-autoscaler".into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

mod slo_serde {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        gaia_contract::parse_latency(&text).map_err(serde::de::Error::custom)
    }

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&gaia_contract::duration::format_latency(*d))
    }
}

impl Config {
    /// Reads a YAML (or JSON, which is YAML) file.
    pub fn from_file(path: &Path) -> Result<Config, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::ConfigRead {
            path: path.to_owned(),
            source,
        })?;
        Config::from_text(&text).map_err(|message| Error::ConfigParse {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses YAML or JSON text. serde names the field it could not read.
    pub fn from_text(text: &str) -> Result<Config, String> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        serde_saphyr::from_str(text).map_err(|e| e.to_string())
    }

    /// Loads the file named by `args` (or the defaults), applies the flags and validates.
    pub fn load(args: &Args) -> Result<Config, Error> {
        let mut config = match &args.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        if let Some(url) = &args.prometheus_url {
            config.prometheus.url = url.clone();
        }
        if let Some(interval) = args.interval {
            config.interval = interval;
        }
        if let Some(listen) = args.listen {
            config.listen = listen;
        }
        if args.no_leader_election {
            config.leader_election.enabled = false;
        }
        if config.leader_election.namespace.is_empty() {
            config.leader_election.namespace =
                std::env::var("POD_NAMESPACE").unwrap_or_else(|_| "gaia-system".into());
        }
        config.validate()?;
        Ok(config)
    }

    /// Labels that select GPU-pool nodes.
    pub fn gpu_node_selector(&self) -> BTreeMap<String, String> {
        if self.gpu.node_selector.is_empty() {
            self.placement.gpu.node_selector.clone()
        } else {
            self.gpu.node_selector.clone()
        }
    }

    /// GPUs one pod of a GPU revision asks for (the GPU profile's limit; 0 when it sets none).
    pub fn gpus_per_pod(&self) -> u32 {
        self.placement
            .gpu
            .limits
            .get(&self.gpu.resource)
            .and_then(|q| q.trim().parse::<u32>().ok())
            .unwrap_or(0)
    }

    /// The PromQL this configuration sends before the preflight has chosen a generation
    /// (`prometheus.generation`, or with `auto` the newest).
    pub fn queries(&self) -> QuerySet {
        self.prometheus.initial_queries(&self.cpu.container)
    }

    /// The PromQL this configuration sends for `generation` and `layout`.
    pub fn queries_for(&self, generation: Generation, layout: LabelLayout) -> QuerySet {
        self.prometheus
            .queries(generation, layout, &self.cpu.container)
    }

    /// Checks what types cannot. The error names the field.
    pub fn validate(&self) -> Result<(), Error> {
        let url = &self.prometheus.url;
        if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() < 10 {
            return Err(Error::config(
                "prometheus.url",
                format!("{url:?} is not an http(s) URL"),
            ));
        }
        gaia_policy::positive("prometheus.timeout", self.prometheus.timeout)?;
        if self.prometheus.timeout > Duration::from_secs(120) {
            return Err(Error::config(
                "prometheus.timeout",
                format!(
                    "{} is longer than 2m: a cycle would wait that long on a dead Prometheus",
                    format_duration(self.prometheus.timeout)
                ),
            ));
        }
        if self.interval < Duration::from_secs(1) {
            return Err(Error::config("interval", "must be at least 1s"));
        }
        self.queries()
            .validate()
            .map_err(|e| config_error("prometheus.queries", e))?;
        self.policy.validate()?;
        self.prometheus
            .knative_release()
            .map_err(|e| config_error("prometheus.knativeVersion", e))?;
        if self.gpu.resource.trim().is_empty() {
            return Err(Error::config("gpu.resource", "must not be empty"));
        }
        if self.gpu_node_selector().is_empty() {
            return Err(Error::config(
                "gpu.nodeSelector",
                "empty, and placement.gpu.nodeSelector is empty too: cannot tell GPU nodes",
            ));
        }
        if self.cpu.container.trim().is_empty() {
            return Err(Error::config("cpu.container", "must not be empty"));
        }
        if !(self.cpu.capacity_without_limit.is_finite() && self.cpu.capacity_without_limit > 0.0) {
            return Err(Error::config(
                "cpu.capacityWithoutLimit",
                "must be a positive number of cores",
            ));
        }
        self.placement
            .validate()
            .map_err(|e| Error::config("placement", e.to_string()))?;
        if let Some(ladder) = &self.ladder {
            validate_ladder(ladder)?;
        }
        if self.preflight.enabled {
            for (field, d) in [
                ("preflight.interval", self.preflight.interval),
                ("preflight.failingInterval", self.preflight.failing_interval),
            ] {
                if d < Duration::from_secs(1) {
                    return Err(Error::config(field, "must be at least 1s"));
                }
            }
            if self.preflight.failing_interval > self.preflight.interval {
                return Err(Error::config(
                    "preflight.failingInterval",
                    "longer than preflight.interval: a failing check would be looked at less often than a passing one",
                ));
            }
        }
        let le = &self.leader_election;
        if le.enabled {
            if le.name.trim().is_empty() {
                return Err(Error::config("leaderElection.name", "must not be empty"));
            }
            gaia_policy::positive("leaderElection.retryPeriod", le.retry_period)?;
            if !(le.retry_period < le.renew_deadline && le.renew_deadline < le.lease_duration) {
                return Err(Error::config(
                    "leaderElection.renewDeadline",
                    "need retryPeriod < renewDeadline < leaseDuration",
                ));
            }
        }
        Ok(())
    }
}

/// The ladder's own rules ([`LadderConfig::validate`]), then what the controller needs of each
/// rung's profile: it must be a valid profile, and a GPU rung's pods must ask for the units its
/// capacity is counted in (its `resource` in `profile.limits`, `amount` of them).
fn validate_ladder(ladder: &LadderConfig) -> Result<(), Error> {
    ladder.validate()?;
    for (i, rung) in ladder.rungs.iter().enumerate() {
        let at = |f: &str| format!("ladder.rungs[{i}].profile.{f}");
        let p = &rung.profile;
        for (k, v) in &p.node_selector {
            if k.trim().is_empty() {
                return Err(Error::config(at("nodeSelector"), "has an empty key"));
            }
            if v.len() > 63 {
                return Err(Error::config(
                    at(&format!("nodeSelector.{k}")),
                    "value longer than 63 characters",
                ));
            }
        }
        for (k, v) in &p.limits {
            if k.trim().is_empty() || v.trim().is_empty() {
                return Err(Error::config(
                    at(&format!("limits.{k}")),
                    "empty resource name or quantity",
                ));
            }
        }
        for (j, t) in p.tolerations.iter().enumerate() {
            if let Some(op) = t.operator.as_deref() {
                if op != "Equal" && op != "Exists" {
                    return Err(Error::config(
                        at(&format!("tolerations[{j}].operator")),
                        format!("{op:?} is not Equal or Exists"),
                    ));
                }
            }
        }
        match &rung.resource {
            Some(resource) => {
                let asked = p
                    .limits
                    .get(resource)
                    .and_then(|q| q.trim().parse::<u32>().ok());
                if asked != Some(rung.amount) {
                    return Err(Error::config(
                        at("limits"),
                        format!(
                            "must set {resource}: \"{}\" (the rung's amount), so its pods ask for \
                             the units its capacity is counted in",
                            rung.amount
                        ),
                    ));
                }
            }
            None => {
                if let Some(other) = ladder
                    .rungs
                    .iter()
                    .filter_map(|r| r.resource.as_deref())
                    .find(|r| p.limits.contains_key(*r))
                {
                    return Err(Error::config(
                        at("limits"),
                        format!("the CPU rung must not ask for {other}"),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// A contract error about a setting, as the configuration error naming its field.
fn config_error(field: &str, e: gaia_contract::ContractError) -> Error {
    match e {
        gaia_contract::ContractError::InvalidQuery { field, message } => {
            Error::Config { field, message }
        }
        other => Error::config(field, other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cycle::CycleSettings;

    #[test]
    fn defaults_are_valid_and_round_trip() {
        let c = Config::default();
        c.validate().unwrap();
        let yaml = serde_saphyr::to_string(&c).unwrap();
        assert_eq!(Config::from_text(&yaml).unwrap(), c);
        assert_eq!(Config::from_text("").unwrap(), c);
        assert_eq!(c.gpus_per_pod(), 1);
    }

    #[test]
    fn partial_files_keep_the_other_defaults() {
        let c = Config::from_text(
            "interval: 5s\nprometheus:\n  url: http://127.0.0.1:9090\n  generation: opencensus\npolicy:\n  promote:\n    severeFactor: 3\n",
        )
        .unwrap();
        assert_eq!(c.interval, Duration::from_secs(5));
        assert_eq!(c.policy.promote.severe_factor, 3.0);
        assert_eq!(
            c.policy.promote.sustain_cycles,
            PolicyConfig::default().promote.sustain_cycles
        );
        c.validate().unwrap();
    }

    #[test]
    fn unknown_and_malformed_fields_are_named() {
        let err = Config::from_text("intervall: 5s").unwrap_err();
        assert!(err.contains("intervall"), "{err}");
        let err = Config::from_text("interval: 5").unwrap_err();
        assert!(err.contains("no unit"), "{err}");
        let err = Config::from_text("defaultSlo: fast").unwrap_err();
        assert!(err.contains("invalid latency"), "{err}");
    }

    #[test]
    fn a_knative_release_that_truncates_latencies_is_known_from_the_config() {
        let read = |v: Option<&str>| {
            let mut c = Config::default();
            c.prometheus.knative_version = v.map(str::to_string);
            c.validate().expect("valid");
            CycleSettings::from_config(&c).latency_truncated
        };
        assert!(read(Some("1.20.0")));
        assert!(read(Some("v1.19.8")));
        assert!(!read(Some("1.21.2")));
        assert!(!read(None));
    }

    #[test]
    fn validation_names_the_field() {
        type Mutation = Box<dyn Fn(&mut Config)>;
        let cases: Vec<(&str, Mutation)> = vec![
            (
                "prometheus.url",
                Box::new(|c| c.prometheus.url = "localhost:9090".into()),
            ),
            (
                "prometheus.timeout",
                Box::new(|c| c.prometheus.timeout = Duration::from_secs(600)),
            ),
            (
                "interval",
                Box::new(|c| c.interval = Duration::from_millis(10)),
            ),
            (
                "policy.promote.severeFactor",
                Box::new(|c| c.policy.promote.severe_factor = 0.5),
            ),
            (
                "policy.longWindow",
                Box::new(|c| c.policy.long_window = Duration::from_secs(10)),
            ),
            (
                "prometheus.queries.latencyQuantile",
                Box::new(|c| c.prometheus.queries.latency_quantile = Some("up".into())),
            ),
            (
                "leaderElection.renewDeadline",
                Box::new(|c| c.leader_election.renew_deadline = Duration::from_secs(60)),
            ),
            (
                "cpu.capacityWithoutLimit",
                Box::new(|c| c.cpu.capacity_without_limit = -1.0),
            ),
            (
                "prometheus.knativeVersion",
                Box::new(|c| c.prometheus.knative_version = Some("latest".into())),
            ),
        ];
        for (field, mutate) in cases {
            let mut c = Config::default();
            mutate(&mut c);
            let err = c.validate().unwrap_err().to_string();
            assert!(err.contains(field), "expected {field} in {err}");
        }
    }

    const LADDER: &str = r#"
ladder:
  rungs:
    - name: cpu
      pricePerSecond: 0.000038
    - name: gpu-shared
      resource: nvidia.com/gpu.shared
      pricePerSecond: 0.000019
      gpuMemoryMib: 20538
      profile:
        nodeSelector: {nvidia.com/gpu.present: "true"}
        tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]
        limits: {nvidia.com/gpu.shared: "1"}
    - name: gpu
      resource: nvidia.com/gpu
      pricePerSecond: 0.000133
      gpuMemoryMib: 143771
      profile:
        nodeSelector: {nvidia.com/gpu.present: "true"}
        tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]
        limits: {nvidia.com/gpu: "1"}
"#;

    #[test]
    fn the_preflight_section_is_read_and_checked() {
        let c = Config::from_text("preflight: {interval: 10m, failingInterval: 15s}").unwrap();
        c.validate().unwrap();
        assert_eq!(c.preflight.interval, Duration::from_secs(600));
        assert_eq!(c.preflight.failing_interval, Duration::from_secs(15));
        assert!(Config::default().preflight.enabled);
        let slow = Config::from_text("preflight: {interval: 10s, failingInterval: 1m}").unwrap();
        let err = slow.validate().unwrap_err().to_string();
        assert!(err.contains("preflight.failingInterval"), "{err}");
        let err = Config::from_text("preflight: {every: 1m}").unwrap_err();
        assert!(err.contains("every"), "{err}");
        let off = Config::from_text("preflight: {enabled: false, interval: 0s}").unwrap();
        off.validate().unwrap();
    }

    #[test]
    fn no_ladder_section_is_todays_config_and_prints_the_same() {
        let c = Config::default();
        assert!(c.ladder.is_none());
        let yaml = serde_saphyr::to_string(&c).unwrap();
        assert!(!yaml.contains("ladder"), "{yaml}");
    }

    #[test]
    fn a_ladder_section_is_read_validated_and_round_trips() {
        let c = Config::from_text(LADDER).unwrap();
        c.validate().unwrap();
        let ladder = c.ladder.clone().unwrap();
        let mut expected = LadderConfig::cpu_shared_gpu(143_771.0, 7);
        expected.rungs[1].gpu_memory_mib = Some(20538.0);
        assert_eq!(ladder, expected);
        let yaml = serde_saphyr::to_string(&c).unwrap();
        assert_eq!(Config::from_text(&yaml).unwrap(), c);
    }

    #[test]
    fn the_shipped_configmap_and_its_commented_ladder_are_valid() {
        let text = include_str!("../../manifests/base/autoscaler-config.yaml");
        let body = text
            .split_once("config.yaml: |\n")
            .map(|(_, b)| b)
            .unwrap_or_default();
        let plain: Vec<&str> = body
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .map(|l| l.strip_prefix("    ").unwrap_or(l))
            .collect();
        let c = Config::from_text(&plain.join("\n")).unwrap();
        c.validate().unwrap();
        assert!(c.ladder.is_none());
        // the example, uncommented
        let example: Vec<&str> = body
            .lines()
            .skip_while(|l| l.trim() != "# ladder:")
            .filter_map(|l| l.strip_prefix("    # "))
            .collect();
        assert!(example.len() > 10, "{example:?}");
        let mut with = plain.join("\n");
        with.push('\n');
        with.push_str(&example.join("\n"));
        let c = Config::from_text(&with).unwrap();
        c.validate().unwrap();
        let names: Vec<&str> = c
            .ladder
            .as_ref()
            .unwrap()
            .rungs
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(names, ["cpu", "gpu-shared", "gpu"]);
    }

    #[test]
    fn ladder_errors_name_the_field() {
        let err = Config::from_text(&LADDER.replace("gpuMemoryMib: 20538", "gpuMemory: 20538"))
            .unwrap_err();
        assert!(err.contains("gpuMemory"), "{err}");
        type Mutation = Box<dyn Fn(&mut LadderConfig)>;
        let cases: Vec<(&str, Mutation)> = vec![
            ("ladder.rungs", Box::new(|l| l.rungs.truncate(1))),
            (
                "ladder.rungs[2].name",
                Box::new(|l| l.rungs[2].name = "cpu".into()),
            ),
            (
                "ladder.rungs[1].pricePerSecond",
                Box::new(|l| l.rungs[1].price_per_second = f64::NAN),
            ),
            (
                "ladder.rungs[0].resource",
                Box::new(|l| l.rungs[0].resource = Some("nvidia.com/gpu".into())),
            ),
            (
                "ladder.rungs[1].resource",
                Box::new(|l| l.rungs[1].resource = None),
            ),
            (
                "ladder.rungs[1].gpuMemoryMib",
                Box::new(|l| l.rungs[1].gpu_memory_mib = Some(0.0)),
            ),
            (
                "ladder.rungs[1].profile.limits",
                Box::new(|l| l.rungs[1].profile.limits.clear()),
            ),
            (
                "ladder.rungs[1].profile.limits",
                Box::new(|l| l.rungs[1].amount = 2),
            ),
            (
                "ladder.rungs[0].profile.limits",
                Box::new(|l| {
                    l.rungs[0]
                        .profile
                        .limits
                        .insert("nvidia.com/gpu".into(), "1".into());
                }),
            ),
            (
                "ladder.rungs[2].profile.tolerations[0].operator",
                Box::new(|l| l.rungs[2].profile.tolerations[0].operator = Some("Maybe".into())),
            ),
            (
                "ladder.rungs[1].profile.nodeSelector",
                Box::new(|l| {
                    l.rungs[1]
                        .profile
                        .node_selector
                        .insert(" ".into(), "x".into());
                }),
            ),
        ];
        for (field, mutate) in cases {
            let mut c = Config::from_text(LADDER).unwrap();
            if let Some(l) = c.ladder.as_mut() {
                mutate(l);
            }
            let err = c.validate().unwrap_err().to_string();
            assert!(err.contains(field), "expected {field} in {err}");
        }
    }

    #[test]
    fn flags_override_the_file() {
        let args = Args::parse_from([
            "gaia-autoscaler",
            "--prometheus-url",
            "http://127.0.0.1:9999",
            "--interval",
            "3s",
            "--no-leader-election",
        ]);
        let c = Config::load(&args).unwrap();
        assert_eq!(c.prometheus.url, "http://127.0.0.1:9999");
        assert_eq!(c.interval, Duration::from_secs(3));
        assert!(!c.leader_election.enabled);
    }
}
