//! The checks: pure functions of the facts and the expectations. Each says pass, warn or fail,
//! in one line, with the exact fix (a command to run or a setting to change) and what a failure
//! would break.

use std::fmt;

use gaia_contract::placement::{knative_feature_on, PlacementProfile, Toleration};
use gaia_contract::queries::{ChosenBy, Generation, GenerationChoice, KnativeVersion};
use serde::Serialize;

use crate::facts::{Expectations, Facts, KnativeFacts, NodeFacts, WebhookFacts};

/// The checks, in the order they are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckId {
    /// Knative Serving is installed; which release.
    Knative,
    /// `config-features` lets Knative accept what the placement profiles inject.
    KnativeFeatures,
    /// `config-observability` makes the queue-proxies export request metrics.
    MetricsExported,
    /// Prometheus answers the autoscaler's queries.
    Prometheus,
    /// Prometheus holds request series for the revisions, found by the autoscaler's own query.
    LatencySeries,
    /// Nodes for the GPU placement: selected, schedulable, tolerated, with the resource.
    GpuNodes,
    /// Gaia's webhook is registered and its caBundle holds the CA that signs its certificate.
    Webhook,
}

impl fmt::Display for CheckId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CheckId::Knative => "knative",
            CheckId::KnativeFeatures => "knative-features",
            CheckId::MetricsExported => "metrics-exported",
            CheckId::Prometheus => "prometheus",
            CheckId::LatencySeries => "latency-series",
            CheckId::GpuNodes => "gpu-nodes",
            CheckId::Webhook => "webhook",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    /// Works, but something is off (an unknown release, no traffic yet).
    Warn,
    Fail,
}

/// What a failed check would make go wrong, so that the autoscaler can refuse exactly those
/// moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Blocks {
    /// Nothing Gaia does fails; the numbers may be off.
    Nothing,
    /// Moves to a GPU would fail (no node could run the pod).
    Promotions,
    /// Every move would fail, or be made on no data.
    AllMoves,
    /// Classification at admission (the webhook).
    Admission,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    pub id: CheckId,
    pub status: Status,
    /// One line: what was found.
    pub summary: String,
    /// How to fix it (a command or a setting), when it is not passing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    pub blocks: Blocks,
}

/// All the checks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    pub fn failed(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.status == Status::Fail)
    }

    /// Whether a failed check blocks moves to a GPU.
    pub fn blocks_promotions(&self) -> bool {
        self.failed()
            .any(|c| matches!(c.blocks, Blocks::Promotions | Blocks::AllMoves))
    }

    /// Whether a failed check blocks every move.
    pub fn blocks_all_moves(&self) -> bool {
        self.failed().any(|c| c.blocks == Blocks::AllMoves)
    }
}

const KNATIVE_NS: &str = "knative-serving";

fn pass(id: CheckId, summary: String, blocks: Blocks) -> Check {
    Check {
        id,
        status: Status::Pass,
        summary,
        fix: None,
        blocks,
    }
}

fn not_passing(id: CheckId, status: Status, summary: String, fix: String, blocks: Blocks) -> Check {
    Check {
        id,
        status,
        summary,
        fix: Some(fix),
        blocks,
    }
}

/// Evaluates every check.
pub fn evaluate(facts: &Facts, want: &Expectations) -> Report {
    let choice = crate::gate::generation_choice(facts, &want.prometheus);
    let mut checks = knative_checks(&facts.knative, want, &choice);
    checks.extend(prometheus_checks(facts, want));
    checks.push(gpu_nodes(&facts.gpu_nodes, &want.placement.gpu));
    checks.push(webhook(&facts.webhook, want));
    Report { checks }
}

fn knative_checks(
    knative: &Result<KnativeFacts, String>,
    want: &Expectations,
    choice: &GenerationChoice,
) -> Vec<Check> {
    let k = match knative {
        Ok(k) if k.serving_installed => k,
        Ok(_) => {
            return vec![not_passing(
                CheckId::Knative,
                Status::Fail,
                "Knative Serving is not installed (no services.serving.knative.dev)".into(),
                "install Knative Serving 1.19 or newer (see the README's prerequisites)".into(),
                Blocks::AllMoves,
            )]
        }
        Err(e) => {
            return vec![not_passing(
                CheckId::Knative,
                Status::Fail,
                format!("cannot read Knative's configuration: {e}"),
                "check the kubeconfig's rights (get on CRDs, and on ConfigMaps in knative-serving)"
                    .into(),
                Blocks::AllMoves,
            )]
        }
    };
    vec![
        knative_release(k, want, choice),
        features(k, want),
        metrics_exported(k, choice.generation),
    ]
}

fn knative_release(k: &KnativeFacts, want: &Expectations, choice: &GenerationChoice) -> Check {
    let queried = choice.generation.name();
    let cm = format!("ConfigMap {}/gaia-autoscaler-config", want.gaia_namespace);
    let label = k.version_label.as_deref().unwrap_or("");
    let found = label
        .parse::<KnativeVersion>()
        .ok()
        .or_else(|| k.controller_version_label.as_deref()?.parse().ok());
    let release = match &choice.by {
        ChosenBy::Release { version, .. } => Some(*version),
        _ => found,
    };
    let Some(v) = release else {
        return not_passing(
            CheckId::Knative,
            Status::Warn,
            format!(
                "Knative Serving is installed; its release is unknown (namespace label app.kubernetes.io/version: {label:?}); the autoscaler queries {}",
                choice.why()
            ),
            format!(
                "if that is not what the queue-proxies export, set prometheus.generation (opencensus up to 1.18, kn-queueproxy for 1.19.0-1.19.7 and 1.20.0, opentelemetry after) or prometheus.knativeVersion in {cm}"
            ),
            Blocks::Nothing,
        );
    };
    let expected = Generation::of_knative(v);
    if choice.by == ChosenBy::Configured && expected != choice.generation {
        return not_passing(
            CheckId::Knative,
            Status::Fail,
            format!(
                "Knative Serving {v} exports {} metrics, the autoscaler queries {queried}",
                expected.name()
            ),
            format!(
                "set prometheus.generation: {} (or auto) in {cm}",
                expected.name()
            ),
            Blocks::AllMoves,
        );
    }
    if let Some(other) = choice.contradicted() {
        return not_passing(
            CheckId::Knative,
            Status::Warn,
            format!(
                "Knative Serving {v} should export {queried} metrics, but Prometheus holds only {} series ({})",
                other.name(),
                choice.why()
            ),
            format!(
                "check the release label of namespace knative-serving, or set prometheus.generation: {} in {cm}",
                other.name()
            ),
            Blocks::Nothing,
        );
    }
    if v.truncates_subsecond_latency() {
        return not_passing(
            CheckId::Knative,
            Status::Warn,
            format!(
                "Knative Serving {v} records latencies under 1 s as 0 s (fixed in 1.19.9, 1.20.2, 1.21.0): Services with sub-second SLOs are held (latency_unreliable); the autoscaler queries {}",
                choice.why()
            ),
            "upgrade Knative Serving to 1.19.9, 1.20.2, 1.21.0 or newer".into(),
            Blocks::Nothing,
        );
    }
    pass(
        CheckId::Knative,
        format!(
            "Knative Serving {v}: the autoscaler queries {}",
            choice.why()
        ),
        Blocks::AllMoves,
    )
}

fn features(k: &KnativeFacts, want: &Expectations) -> Check {
    let mut needed = want.placement.gpu.knative_flags();
    for f in want.placement.cpu.knative_flags() {
        if !needed.contains(&f) {
            needed.push(f);
        }
    }
    let data = k.features.clone().unwrap_or_default();
    let off: Vec<&str> = needed
        .iter()
        .copied()
        .filter(|f| !knative_feature_on(&data, f))
        .collect();
    let always_schedulable = k
        .deployment
        .as_ref()
        .and_then(|d| d.get("pod-is-always-schedulable"))
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    if off.is_empty() && want.placement.gpu.elastic && !always_schedulable {
        return not_passing(
            CheckId::KnativeFeatures,
            Status::Warn,
            format!(
                "config-features enables {}; the GPU pool is elastic, but config-deployment's pod-is-always-schedulable is not true: Knative reports a GPU revision failed (Unschedulable) until its node joins (traffic stays on the CPU revision)",
                if needed.is_empty() { "what is needed".to_string() } else { needed.join(", ") }
            ),
            format!(
                "kubectl patch configmap config-deployment -n {KNATIVE_NS} --type merge -p '{{\"data\":{{\"pod-is-always-schedulable\":\"true\"}}}}'"
            ),
            Blocks::Nothing,
        );
    }
    if off.is_empty() {
        return pass(
            CheckId::KnativeFeatures,
            if needed.is_empty() {
                "the placement profiles inject nothing that config-features gates".into()
            } else {
                format!("config-features enables {}", needed.join(", "))
            },
            Blocks::AllMoves,
        );
    }
    let patch = off
        .iter()
        .map(|f| format!("\"{f}\":\"enabled\""))
        .collect::<Vec<_>>()
        .join(",");
    not_passing(
        CheckId::KnativeFeatures,
        Status::Fail,
        format!(
            "Knative rejects what the placement profiles inject: {} not enabled in config-features",
            off.join(", ")
        ),
        format!(
            "kubectl apply -k manifests/knative-features   (or: kubectl patch configmap config-features -n {KNATIVE_NS} --type merge -p '{{\"data\":{{{patch}}}}}')"
        ),
        Blocks::AllMoves,
    )
}

fn metrics_exported(k: &KnativeFacts, generation: Generation) -> Check {
    let data = k.observability.clone().unwrap_or_default();
    let (key, default) = match generation {
        // Knative up to 1.18: OpenCensus, Prometheus by default
        Generation::OpenCensus => ("metrics.request-metrics-backend-destination", "prometheus"),
        // 1.19+: OpenTelemetry, off by default
        Generation::KnQueueProxy | Generation::OpenTelemetry => {
            ("request-metrics-protocol", "none")
        }
    };
    let value = data
        .get(key)
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| default.to_string());
    if value.is_empty() || value == "none" {
        return not_passing(
            CheckId::MetricsExported,
            Status::Fail,
            format!(
                "queue-proxies export no request metrics ({key}: {})",
                if data.contains_key(key) { value.as_str() } else { "unset, Knative's default none" }
            ),
            format!(
                "kubectl patch configmap config-observability -n {KNATIVE_NS} --type merge -p '{{\"data\":{{\"{key}\":\"prometheus\"}}}}'   (then new revisions export; Prometheus must scrape port http-usermetric)"
            ),
            Blocks::AllMoves,
        );
    }
    pass(
        CheckId::MetricsExported,
        format!("queue-proxies export request metrics ({key}: {value})"),
        Blocks::AllMoves,
    )
}

fn prometheus_checks(facts: &Facts, want: &Expectations) -> Vec<Check> {
    let url = &want.prometheus.url;
    let p = match &facts.prometheus {
        Ok(p) => p,
        Err(e) => {
            return vec![not_passing(
                CheckId::Prometheus,
                Status::Fail,
                format!("Prometheus at {url} does not answer: {e}"),
                format!(
                    "set prometheus.url in ConfigMap {}/gaia-autoscaler-config to your Prometheus (the autoscaler holds every Service while it cannot read metrics)",
                    want.gaia_namespace
                ),
                Blocks::AllMoves,
            )]
        }
    };
    let reachable = pass(
        CheckId::Prometheus,
        format!("Prometheus at {url} answers"),
        Blocks::AllMoves,
    );
    // No series blocks nothing by itself: the autoscaler already holds each Service whose
    // revision has none (no_latency_data), and a cluster-wide count is transient (a Service
    // created a minute ago, every revision scaled to zero), so gating every move on it would
    // hold Services that do have data, and GPU revisions idle by their absence.
    let series = if p.revisions_with_requests > 0 {
        pass(
            CheckId::LatencySeries,
            format!(
                "request series for {} revision(s), found with the autoscaler's own query",
                p.revisions_with_requests
            ),
            Blocks::Nothing,
        )
    } else if p.knative_services == 0 {
        not_passing(
            CheckId::LatencySeries,
            Status::Warn,
            "no Knative Service yet, so no request series to look for".into(),
            "run this again once a Service has served requests".into(),
            Blocks::Nothing,
        )
    } else {
        not_passing(
            CheckId::LatencySeries,
            Status::Fail,
            format!(
                "{} Knative Service(s), but the autoscaler's query finds no request series in the last 10m",
                p.knative_services
            ),
            "make Prometheus scrape the queue-proxies (container port http-usermetric, 9091; manifests/overlays/servicemonitor with the Prometheus Operator), send a request, and check prometheus.generation and prometheus.labels (kn gaia doctor -o json: metrics.why)".into(),
            Blocks::Nothing,
        )
    };
    vec![reachable, series]
}

fn tolerated(taint: &(String, Option<String>, String), tolerations: &[Toleration]) -> bool {
    let (key, value, effect) = taint;
    tolerations
        .iter()
        .any(|t| t.tolerates(key, value.as_deref().unwrap_or_default(), effect))
}

/// Whether a GPU pod could run on the node: schedulable, every NoSchedule/NoExecute taint
/// tolerated, and the resources it asks for allocatable.
fn usable(node: &NodeFacts, profile: &PlacementProfile) -> Result<(), String> {
    if !node.ready {
        return Err("not Ready".into());
    }
    if node.unschedulable {
        return Err("cordoned".into());
    }
    if let Some(t) = node.taints.iter().find(|t| {
        (t.2 == "NoSchedule" || t.2 == "NoExecute") && !tolerated(t, &profile.tolerations)
    }) {
        return Err(format!("taint {}:{} not tolerated", t.0, t.2));
    }
    for (resource, amount) in &profile.limits {
        let have = node
            .allocatable
            .get(resource)
            .and_then(|q| q.parse::<f64>().ok())
            .unwrap_or(0.0);
        let need = amount.parse::<f64>().unwrap_or(1.0);
        if have < need {
            return Err(format!("{resource} allocatable {have} < {need}"));
        }
    }
    Ok(())
}

fn selector_text(profile: &PlacementProfile) -> String {
    profile
        .node_selector
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn gpu_nodes(nodes: &Result<Vec<NodeFacts>, String>, profile: &PlacementProfile) -> Check {
    let nodes = match nodes {
        Ok(n) => n,
        Err(e) => {
            return not_passing(
                CheckId::GpuNodes,
                Status::Fail,
                format!("cannot list nodes: {e}"),
                "check the kubeconfig's rights (list nodes)".into(),
                Blocks::Promotions,
            )
        }
    };
    let selector = selector_text(profile);
    let resources = profile
        .limits
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join(", ");
    let (good, bad): (Vec<_>, Vec<_>) = nodes
        .iter()
        .map(|n| (n, usable(n, profile)))
        .partition(|(_, r)| r.is_ok());
    if !good.is_empty() {
        return pass(
            CheckId::GpuNodes,
            format!(
                "{} node(s) for the GPU placement ({}): {}",
                good.len(),
                if selector.is_empty() {
                    "any node"
                } else {
                    selector.as_str()
                },
                good.iter()
                    .map(|(n, _)| n.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Blocks::Promotions,
        );
    }
    let why = if bad.is_empty() {
        format!(
            "no node has the GPU placement's labels ({})",
            if selector.is_empty() {
                "none"
            } else {
                selector.as_str()
            }
        )
    } else {
        format!(
            "no node can run a GPU pod: {}",
            bad.iter()
                .map(|(n, r)| format!(
                    "{} ({})",
                    n.name,
                    r.as_ref().err().map_or("", |e| e.as_str())
                ))
                .collect::<Vec<_>>()
                .join("; ")
        )
    };
    if profile.elastic {
        return not_passing(
            CheckId::GpuNodes,
            Status::Warn,
            format!(
                "{why}; the GPU pool grows on demand (placement.gpu.elastic): a GPU pod waits up to {} (nodeJoinDeadline) for a node to join",
                gaia_contract::duration::format_duration(profile.node_join_deadline)
            ),
            "make sure your node provisioner (Karpenter, the cluster autoscaler) adds nodes for a Pending pod with the GPU placement's nodeSelector, tolerations and resource".into(),
            Blocks::Nothing,
        );
    }
    not_passing(
        CheckId::GpuNodes,
        Status::Fail,
        why,
        format!(
            "label the GPU nodes {} and advertise {} (NVIDIA's GPU operator does both), or change placement.gpu in the webhook's and the autoscaler's ConfigMaps to match your nodes",
            if selector.is_empty() { "as placement.gpu.nodeSelector says".to_string() } else { selector.clone() },
            if resources.is_empty() { "the GPU resource".to_string() } else { resources }
        ),
        Blocks::Promotions,
    )
}

/// The first PEM certificate of a bundle, trimmed (what `secret_for` keeps as the newest CA).
fn first_certificate(pem: &str) -> Option<&str> {
    let start = pem.find("-----BEGIN CERTIFICATE-----")?;
    let end_marker = "-----END CERTIFICATE-----";
    let end = pem[start..].find(end_marker)? + start + end_marker.len();
    Some(pem[start..end].trim())
}

fn webhook(w: &Result<Option<WebhookFacts>, String>, want: &Expectations) -> Check {
    let name = &want.webhook_configuration;
    let restart = format!(
        "kubectl rollout restart deployment/gaia-webhook -n {}   (the webhook writes the caBundle when it starts; with the cert-manager overlay, check cert-manager's cainjector)",
        want.gaia_namespace
    );
    let w = match w {
        Ok(Some(w)) => w,
        Ok(None) => {
            return not_passing(
                CheckId::Webhook,
                Status::Fail,
                format!("MutatingWebhookConfiguration {name} not found: no Service is classified"),
                "kubectl apply -k manifests/".into(),
                Blocks::Admission,
            )
        }
        Err(e) => {
            return not_passing(
                CheckId::Webhook,
                Status::Fail,
                format!("cannot read MutatingWebhookConfiguration {name}: {e}"),
                "check the kubeconfig's rights (get mutatingwebhookconfigurations)".into(),
                Blocks::Admission,
            )
        }
    };
    if w.ca_bundles.is_empty() {
        return not_passing(
            CheckId::Webhook,
            Status::Fail,
            format!(
                "MutatingWebhookConfiguration {name} has no webhook pointing at Service {}/{}",
                want.gaia_namespace, want.webhook_service
            ),
            "kubectl apply -k manifests/".into(),
            Blocks::Admission,
        );
    }
    let mut problems = Vec::new();
    for (i, bundle) in w.ca_bundles.iter().enumerate() {
        match bundle.as_deref().and_then(first_certificate) {
            None => problems.push(format!(
                "webhook #{} has no PEM certificate in caBundle",
                i + 1
            )),
            Some(_) => {
                if let Some(ca) = w.secret_ca.as_deref().and_then(first_certificate) {
                    if !bundle.as_deref().is_some_and(|b| b.contains(ca)) {
                        problems.push(format!(
                            "webhook #{}'s caBundle does not hold the CA of Secret {}/{} (the apiserver cannot verify the webhook's certificate)",
                            i + 1,
                            want.gaia_namespace,
                            want.webhook_secret
                        ));
                    }
                }
            }
        }
    }
    if !problems.is_empty() {
        return not_passing(
            CheckId::Webhook,
            Status::Fail,
            problems.join("; "),
            restart,
            Blocks::Admission,
        );
    }
    pass(
        CheckId::Webhook,
        format!(
            "MutatingWebhookConfiguration {name}: caBundle set{}",
            if w.secret_ca.is_some() {
                " and holds the webhook's CA"
            } else {
                " (the webhook's Secret was not readable to compare)"
            }
        ),
        Blocks::Admission,
    )
}

#[cfg(test)]
mod tests;
