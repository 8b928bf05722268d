//! The webhook's configuration file (mounted from a ConfigMap in production).
//!
//! Every field has a default, so the webhook runs without a file. An invalid file stops the
//! webhook at start with a message that names the bad field.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use gaia_contract::{ExecutionMode, PlacementProfiles};
use serde::Deserialize;

use crate::classifier::Limits;
use crate::Error;

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
    /// Limits on the analysed source.
    pub source: SourceConfig,
    /// Time budget for one review, well under the apiserver's `timeoutSeconds`. When reading
    /// and classifying the source takes longer, the Service is admitted with the default mode.
    #[serde(rename = "reviewDeadlineMs", with = "millis")]
    pub review_deadline: Duration,
    /// Largest AdmissionReview body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Classifications kept in memory, keyed by source digest.
    pub cache_entries: usize,
}

/// Limits on the function source the webhook reads and analyses.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct SourceConfig {
    /// All files of one function together.
    pub max_total_bytes: usize,
    /// One file.
    pub max_file_bytes: usize,
    /// Bracket/indentation nesting depth checked before parsing.
    pub max_nesting: usize,
    /// Files of one function.
    pub max_files: usize,
}

impl Default for SourceConfig {
    fn default() -> Self {
        let l = Limits::default();
        SourceConfig {
            max_total_bytes: l.max_total_bytes,
            max_file_bytes: l.max_file_bytes,
            max_nesting: l.max_nesting,
            max_files: l.max_files,
        }
    }
}

impl SourceConfig {
    pub fn limits(&self) -> Limits {
        Limits {
            max_total_bytes: self.max_total_bytes,
            max_file_bytes: self.max_file_bytes,
            max_nesting: self.max_nesting,
            max_files: self.max_files,
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
            source: SourceConfig::default(),
            review_deadline: Duration::from_millis(1500),
            max_body_bytes: 8 * 1024 * 1024,
            cache_entries: 1024,
        }
    }
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
            serde_yaml::from_str(text).map_err(|e| Error::Config(e.to_string()))?
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
        ];
        for (field, value) in positive {
            if value == 0 {
                return Err(Error::Config(format!("{field} must be greater than 0")));
            }
        }
        if self.review_deadline.is_zero() || self.review_deadline > Duration::from_secs(25) {
            return Err(Error::Config(
                "reviewDeadlineMs must be between 1 and 25000 (the apiserver gives up after timeoutSeconds, at most 30 s)".into(),
            ));
        }
        Ok(())
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
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
reviewDeadlineMs: 800
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
    fn bad_fields_are_named() {
        for (text, needle) in [
            ("defaultMode: fast", "defaultMode"),
            ("placment: {}", "placment"),
            ("source: {maxNesting: 0}", "source.maxNesting"),
            ("reviewDeadlineMs: 60000", "reviewDeadlineMs"),
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
}
