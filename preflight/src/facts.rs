//! What the preflight looks at: the facts read from the cluster, and what Gaia is configured to
//! do there. Plain data, so that the checks are pure and every case is a table row.

use std::collections::BTreeMap;

use gaia_contract::placement::PlacementProfiles;
use gaia_contract::queries::{Generation, PrometheusConfig};

/// What Gaia is configured to do (the autoscaler's ConfigMap) and where it is installed.
#[derive(Debug, Clone)]
pub struct Expectations {
    /// The placement profiles the webhook and the autoscaler inject.
    pub placement: PlacementProfiles,
    /// The autoscaler's `prometheus` section (URL, metric generation, Knative release).
    pub prometheus: PrometheusConfig,
    /// The namespace Gaia runs in (`gaia-system`).
    pub gaia_namespace: String,
    /// The MutatingWebhookConfiguration's name (`gaia-webhook`).
    pub webhook_configuration: String,
    /// The webhook's Service, which the configuration's webhooks point at (`gaia-webhook`).
    pub webhook_service: String,
    /// The webhook's TLS Secret (`gaia-webhook-tls`), whose `ca.crt` the caBundle must hold.
    pub webhook_secret: String,
}

impl Expectations {
    /// The names `manifests/` installs, with the given configuration.
    pub fn installed(placement: PlacementProfiles, prometheus: PrometheusConfig) -> Expectations {
        Expectations {
            placement,
            prometheus,
            gaia_namespace: "gaia-system".into(),
            webhook_configuration: "gaia-webhook".into(),
            webhook_service: "gaia-webhook".into(),
            webhook_secret: "gaia-webhook-tls".into(),
        }
    }
}

/// Everything read, each part either what was found or why it could not be read.
#[derive(Debug, Clone)]
pub struct Facts {
    pub knative: Result<KnativeFacts, String>,
    pub prometheus: Result<PrometheusFacts, String>,
    pub gpu_nodes: Result<Vec<NodeFacts>, String>,
    /// `Ok(None)`: no such MutatingWebhookConfiguration.
    pub webhook: Result<Option<WebhookFacts>, String>,
}

/// Knative Serving as installed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KnativeFacts {
    /// Whether `services.serving.knative.dev` exists.
    pub serving_installed: bool,
    /// The `app.kubernetes.io/version` label of the `knative-serving` namespace (release
    /// manifests set it: `1.21.2`; a build from source says `devel`).
    pub version_label: Option<String>,
    /// The same label on the `controller` Deployment in `knative-serving` (the Knative Operator
    /// installs the Deployments but not the namespace; `None`: no such Deployment, or not
    /// readable).
    pub controller_version_label: Option<String>,
    /// `config-features`' data (`None`: the ConfigMap is missing).
    pub features: Option<BTreeMap<String, String>>,
    /// `config-observability`'s data.
    pub observability: Option<BTreeMap<String, String>>,
    /// `config-deployment`'s data (`pod-is-always-schedulable`, for an elastic GPU pool).
    pub deployment: Option<BTreeMap<String, String>>,
}

/// Prometheus' answer to the autoscaler's request-rate query over a long window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PrometheusFacts {
    /// Revisions with request series, as the autoscaler's own query (and join) finds them.
    pub revisions_with_requests: usize,
    /// Knative Services that exist in the cluster (0: nothing could have exported series yet).
    pub knative_services: usize,
    /// The metric generations whose request-count series Prometheus holds over the last 10
    /// minutes (`None`: the probe could not be read).
    pub series: Option<Vec<Generation>>,
    /// Whether those series of the OpenTelemetry generations carry `kn_revision_name`
    /// themselves (OTLP with promoted resource attributes) rather than on `target_info`
    /// (`None`: not read, or no such series).
    pub promoted_labels: Option<bool>,
}

/// A node the GPU placement profile's nodeSelector selects.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeFacts {
    pub name: String,
    pub ready: bool,
    pub unschedulable: bool,
    /// (key, value, effect)
    pub taints: Vec<(String, Option<String>, String)>,
    /// Allocatable of each resource the GPU profile asks for (`nvidia.com/gpu` -> 1).
    pub allocatable: BTreeMap<String, String>,
}

/// Gaia's MutatingWebhookConfiguration.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WebhookFacts {
    /// The caBundle of each of its webhooks that points at Gaia's Service (`None`: not set).
    pub ca_bundles: Vec<Option<String>>,
    /// The webhook Secret's `ca.crt`, when the caller may read it.
    pub secret_ca: Option<String>,
}
