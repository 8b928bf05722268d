//! The webhook's command line ([`Args`]) and configuration file ([`Config`], mounted from a
//! ConfigMap in production).
//!
//! Every field has a default, so the webhook runs without a file. An invalid file stops the
//! webhook at start with a message that names the bad field.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;

use gaia_contract::{ExecutionMode, PlacementProfiles};
use serde::Deserialize;

use crate::Error;
use gaia_classifier::Limits;
use gaia_contract::duration::serde_duration;
use gaia_contract::logging::LogFormat;
use gaia_policy::ladder::LadderConfig;

/// Gaia's mutating admission webhook: classifies opted-in Knative Services and injects their
/// execution mode and node placement.
#[derive(Debug, Parser)]
#[command(name = "gaia-webhook", version)]
pub struct Args {
    /// Address of the HTTPS listener.
    #[arg(long, default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,
    /// PEM certificate (chain) of the HTTPS listener; re-read when the file changes.
    #[arg(long, requires = "tls_key", conflicts_with = "tls_secret")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of the HTTPS listener; re-read when the file changes.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Manage the certificate itself in this Secret (NAMESPACE/NAME), with a CA of its own, and
    /// keep the caBundle of --webhook-configuration in step. Replaces --tls-cert/--tls-key.
    #[arg(long, value_name = "NAMESPACE/NAME")]
    pub tls_secret: Option<String>,
    /// The webhook's Service name (the certificate's DNS names), with --tls-secret.
    #[arg(long, default_value = "gaia-webhook")]
    pub service: String,
    /// The MutatingWebhookConfiguration whose caBundle is kept in step, with --tls-secret.
    #[arg(long, default_value = "gaia-webhook")]
    pub webhook_configuration: String,
    /// Validity of a self-managed certificate, in days; renewed after two thirds of it.
    #[arg(long, default_value_t = 365)]
    pub cert_validity_days: u64,
    /// How often the self-managed certificate and caBundle are checked, in seconds.
    #[arg(long, default_value_t = 300)]
    pub cert_check_seconds: u64,
    /// How often Knative's `config-features` is read, in seconds (a placement whose fields it
    /// leaves off is not injected: Knative would reject the Service).
    #[arg(long, default_value_t = 30)]
    pub knative_features_seconds: u64,
    /// Configuration file (YAML); built-in defaults when absent.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The autoscaler's configuration file (its ConfigMap, mounted): only its `ladder:` section
    /// is read, the one source of the rungs (docs/ladder.md). With a ladder, a new
    /// `gpu_preferred` Service starts on the lowest GPU rung whose memory holds its model.
    #[arg(long, value_name = "PATH")]
    pub ladder_from: Option<PathBuf>,
    /// Plain-HTTP listener for /metrics, /healthz and /readyz (for probes and scrapers).
    #[arg(long)]
    pub metrics_listen: Option<SocketAddr>,
    /// Use the Kubernetes API (in-cluster or KUBECONFIG) for ConfigMap sources and namespace
    /// labels. Without it only the inline source annotation and Service annotations count.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub kube: bool,
    /// Classifier threads (default: one per core).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Seconds given to in-flight reviews on shutdown.
    #[arg(long, default_value_t = 10)]
    pub drain_seconds: u64,
    /// Seconds the webhook keeps answering after SIGTERM, not ready, before it stops accepting
    /// (so that Kubernetes takes the pod out of the Service's endpoints first).
    #[arg(long, default_value_t = 5)]
    pub shutdown_delay_seconds: u64,
    /// Log format.
    #[arg(long, env = "GAIA_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Config {
    /// Mode given to an opted-in Service when no source can be read, or classification fails.
    pub default_mode: ExecutionMode,
    /// Placement profiles (what a CPU or GPU placement changes in a template).
    pub placement: PlacementProfiles,
    /// Namespaces never touched, whatever their Services say.
    pub excluded_namespaces: BTreeSet<String>,
    /// Limits on the analysed source: the classifier's own [`Limits`].
    pub source: Limits,
    /// Time budget for one review (e.g. `1500ms`), well under the apiserver's `timeoutSeconds`.
    /// When reading and classifying the source takes longer, the Service is admitted with the
    /// default mode.
    #[serde(with = "serde_duration")]
    pub review_deadline: Duration,
    /// Largest AdmissionReview body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Classifications kept in memory, keyed by source digest.
    pub cache_entries: usize,
    /// Reading the function from the user container's image (after the inline annotation and
    /// ConfigMap volumes): docs/image-source.md.
    pub image: ImageConfig,
    /// The placement ladder, from the autoscaler's configuration (`--ladder-from`), never from
    /// this file: one source of the rungs.
    #[serde(skip)]
    pub ladder: Option<LadderConfig>,
}

/// The `image:` section.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ImageConfig {
    /// Read images at all.
    pub enabled: bool,
    /// Plain-HTTP registries, extra CAs, connection timeouts.
    pub registries: gaia_image_source::RegistryOptions,
    /// Registries never asked (Knative's `registries-skipping-tag-resolving` default: local
    /// names that exist only on nodes).
    pub skip_registries: BTreeSet<String>,
    /// Bytes, entries, files and time one image read may take.
    pub limits: gaia_image_source::ReadLimits,
    /// Images kept in memory by digest, and the bytes they may hold together.
    pub cache_entries: usize,
    pub cache_bytes: usize,
    /// When a review's budget runs out before the image is read, finish the read and write the
    /// verdict onto the Service (needs `patch` on services.serving.knative.dev).
    pub finish_after_deadline: bool,
    /// How long a tag's digest, as the registry last confirmed it, answers a review without
    /// asking again (`0s`: ask on every review). Each such review asks the registry again in
    /// the background; a moved tag sends the Service to the follow-up, which writes the new
    /// verdict onto it.
    #[serde(with = "serde_duration")]
    pub tag_ttl: Duration,
}

impl Default for ImageConfig {
    fn default() -> Self {
        ImageConfig {
            enabled: true,
            registries: gaia_image_source::RegistryOptions::default(),
            skip_registries: ["kind.local", "ko.local", "dev.local"]
                .into_iter()
                .map(String::from)
                .collect(),
            limits: gaia_image_source::ReadLimits::default(),
            cache_entries: 256,
            cache_bytes: 64 << 20,
            finish_after_deadline: true,
            tag_ttl: Duration::from_secs(30),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            default_mode: ExecutionMode::CpuPreferred,
            placement: PlacementProfiles::default(),
            excluded_namespaces: [
                "kube-system",
                "kube-public",
                "kube-node-lease",
                "knative-serving",
                "gaia-system",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
            source: Limits::default(),
            review_deadline: Duration::from_millis(1500),
            max_body_bytes: 8 * 1024 * 1024,
            cache_entries: 1024,
            image: ImageConfig::default(),
            ladder: None,
        }
    }
}

/// What the webhook reads of the autoscaler's configuration: the `ladder:` section alone.
#[derive(Deserialize)]
struct AutoscalerLadder {
    #[serde(default)]
    ladder: Option<LadderConfig>,
}

/// The `ladder:` section of the autoscaler's configuration file (YAML or JSON), validated by
/// the ladder's own rules. `None`: no section (or today's two rungs):
/// the webhook places as without a ladder. Errors name the file and the field.
pub fn load_ladder(path: &Path) -> Result<Option<LadderConfig>, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse_ladder(&text).map_err(|e| match e {
        Error::Config(msg) => Error::Config(format!("{}: {msg}", path.display())),
        other => other,
    })
}

pub fn parse_ladder(text: &str) -> Result<Option<LadderConfig>, Error> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    let section: AutoscalerLadder =
        serde_saphyr::from_str(text).map_err(|e| Error::Config(e.to_string()))?;
    let Some(ladder) = section.ladder else {
        return Ok(None);
    };
    // The ladder's own rules; the autoscaler, reading the same file, also checks each rung's
    // profile at its start (`--check-config`).
    ladder
        .validate()
        .map_err(|e| Error::Config(e.to_string()))?;
    Ok(ladder.is_ladder().then_some(ladder))
}

impl Config {
    /// Reads a YAML (or JSON) file. Errors name the file and the bad field.
    pub fn load(path: &Path) -> Result<Config, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        Config::parse(&text).map_err(|e| match e {
            Error::Config(msg) => Error::Config(format!("{}: {msg}", path.display())),
            other => other,
        })
    }

    pub fn parse(text: &str) -> Result<Config, Error> {
        let config: Config = if text.trim().is_empty() {
            Config::default()
        } else {
            serde_saphyr::from_str(text).map_err(|e| Error::Config(e.to_string()))?
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), Error> {
        self.placement
            .validate()
            .map_err(|e| Error::Config(e.to_string()))?;
        let positive = [
            ("source.maxTotalBytes", self.source.max_total_bytes),
            ("source.maxFileBytes", self.source.max_file_bytes),
            ("source.maxNesting", self.source.max_nesting),
            ("source.maxFiles", self.source.max_files),
            ("maxBodyBytes", self.max_body_bytes),
            ("image.cacheEntries", self.image.cache_entries),
            ("image.limits.maxFiles", self.image.limits.max_files),
        ];
        for (field, value) in positive {
            if value == 0 {
                return Err(Error::Config(format!("{field} must be greater than 0")));
            }
        }
        if self.review_deadline.is_zero() || self.review_deadline > Duration::from_secs(25) {
            return Err(Error::Config(
                "reviewDeadline must be between 1ms and 25s (the apiserver gives up after timeoutSeconds, at most 30 s)".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_means_defaults() {
        assert_eq!(Config::parse("").unwrap(), Config::default());
        assert_eq!(Config::default().default_mode, ExecutionMode::CpuPreferred);
    }

    #[test]
    fn reads_a_full_file() {
        let c = Config::parse(
            r#"
defaultMode: cpu
excludedNamespaces: [ops]
reviewDeadline: 800ms
placement:
  cpu:
    nodeSelector: {gaia.dev/pool: cpu}
  gpu:
    nodeSelector: {nvidia.com/gpu.present: "true"}
    tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]
    limits: {nvidia.com/gpu: "1"}
"#,
        )
        .unwrap();
        assert_eq!(c.default_mode, ExecutionMode::Cpu);
        assert_eq!(c.review_deadline, Duration::from_millis(800));
        assert!(c.excluded_namespaces.contains("ops"));
        assert_eq!(c.placement.cpu.node_selector["gaia.dev/pool"], "cpu");
    }

    #[test]
    fn the_shipped_configmap_parses() {
        #[derive(Deserialize)]
        struct Cm {
            data: std::collections::BTreeMap<String, String>,
        }
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../manifests/base/webhook-config.yaml"
        );
        let text = std::fs::read_to_string(path).unwrap();
        let cm: Cm = serde_saphyr::from_str(&text).unwrap();
        let c = Config::parse(&cm.data["config.yaml"]).unwrap();
        assert!(c.image.enabled);
        assert!(c.image.skip_registries.contains("dev.local"));
    }

    #[test]
    fn reads_the_image_section() {
        let c = Config::parse(
            r#"
image:
  registries: {plainHttp: ["reg.local:5000"], connectTimeout: 1s}
  skipRegistries: [dev.local]
  cacheBytes: 1048576
  finishAfterDeadline: false
  limits: {peekBytes: 1048576, timeout: 5s}
"#,
        )
        .unwrap();
        assert_eq!(c.image.registries.plain_http, ["reg.local:5000"]);
        assert_eq!(c.image.registries.connect_timeout, Duration::from_secs(1));
        assert_eq!(c.image.limits.peek_bytes, 1 << 20);
        assert_eq!(c.image.limits.timeout, Duration::from_secs(5));
        assert!(!c.image.finish_after_deadline);
        assert!(c.image.enabled, "defaults kept");
        assert_eq!(c.image.cache_entries, 256);
    }

    #[test]
    fn bad_fields_are_named() {
        for (text, needle) in [
            ("defaultMode: fast", "defaultMode"),
            ("placment: {}", "placment"),
            ("source: {maxNesting: 0}", "source.maxNesting"),
            ("reviewDeadline: 60s", "reviewDeadline"),
            ("image: {limits: {peekBytez: 1}}", "peekBytez"),
            ("image: {registries: {plainHttp: nope}}", "plainHttp"),
            (
                "placement: {cpu: {}, gpu: {tolerations: [{operator: Sometimes}]}}",
                "placement.gpu.tolerations[0].operator",
            ),
            (
                "placement: {cpu: {nodeSelectr: {}}, gpu: {}}",
                "nodeSelectr",
            ),
        ] {
            let err = Config::parse(text).unwrap_err().to_string();
            assert!(
                err.contains(needle),
                "{text:?} gave {err:?}, expected {needle:?}"
            );
        }
    }

    #[test]
    fn the_ladder_is_read_from_the_autoscalers_configuration_only() {
        // the autoscaler's file: other sections are not the webhook's business
        let text = "prometheus:\n  url: http://p:9090\npolicy: {}\n";
        assert_eq!(parse_ladder(text).unwrap(), None);
        assert_eq!(parse_ladder("").unwrap(), None);
        let ladder = LadderConfig::cpu_shared_gpu(143_771.0, 7);
        let text = format!(
            "prometheus:\n  url: http://p:9090\nladder: {}\n",
            serde_json::to_string(&ladder).unwrap()
        );
        assert_eq!(parse_ladder(&text).unwrap(), Some(ladder.clone()));
        // today's two rungs are no ladder
        let two = format!(
            "ladder: {}\n",
            serde_json::to_string(&LadderConfig::default()).unwrap()
        );
        assert_eq!(parse_ladder(&two).unwrap(), None);
        // an invalid ladder names the field
        let mut bad = ladder;
        bad.rungs[2].name = "cpu".into();
        let err = parse_ladder(&format!(
            "ladder: {}\n",
            serde_json::to_string(&bad).unwrap()
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("ladder.rungs[2].name"), "{err}");
        // and the webhook's own file has no ladder: one source of the rungs
        let err = Config::parse("ladder: {rungs: []}\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("ladder"), "{err}");
    }
}
