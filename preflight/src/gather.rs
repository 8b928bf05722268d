//! The I/O half: reads the facts the checks need, each part on its own, so that one that cannot
//! be read (no right, Prometheus down) becomes that part's error and the others still count.

use std::collections::BTreeMap;
use std::time::Duration;

use gaia_contract::queries::{Generation, GenerationChoice, LabelLayout, QuerySet};
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::Client;
use serde_json::Value;
use tracing::debug;

use crate::facts::{Expectations, Facts, KnativeFacts, NodeFacts, PrometheusFacts, WebhookFacts};
use crate::Error;

const KNATIVE_NS: &str = "knative-serving";
const SERVICES_CRD: &str = "services.serving.knative.dev";
/// How far back the series check looks.
const SERIES_WINDOW: Duration = Duration::from_secs(600);

/// Reads every fact. `queries`: the autoscaler's own for a generation (its layout and
/// overrides); the generation is chosen first ([`crate::gate::generation_choice`]: the
/// configuration, the release found, the series found), so that the request series are looked
/// for with the queries the autoscaler will send.
pub async fn gather(
    client: &Client,
    want: &Expectations,
    queries: &dyn Fn(Generation, LabelLayout) -> QuerySet,
) -> Result<Facts, Error> {
    let http = http_client(want)?;
    let knative = knative(client).await;
    let services = count_services(client).await;
    let series = series_found(&http, &want.prometheus.url).await;
    let mut facts = Facts {
        knative,
        prometheus: series.map(|found| PrometheusFacts {
            series: Some(found.generations),
            promoted_labels: found.promoted_labels,
            knative_services: services,
            ..PrometheusFacts::default()
        }),
        gpu_nodes: gpu_nodes(client, want).await,
        webhook: webhook(client, want).await,
    };
    let choice = crate::gate::generation_choice(&facts, &want.prometheus);
    if let Ok(p) = facts.prometheus.as_mut() {
        let asked = queries(choice.generation, choice.layout);
        match prometheus(&http, &want.prometheus.url, &asked).await {
            Ok(revisions) => p.revisions_with_requests = revisions,
            Err(e) => facts.prometheus = Err(e),
        }
    }
    Ok(facts)
}

/// The Knative facts and the series probe only, and the generation they choose (what `kn gaia
/// status` needs to query as the autoscaler does).
pub async fn detect_generation(
    client: &Client,
    want: &Expectations,
) -> Result<GenerationChoice, Error> {
    let http = http_client(want)?;
    let facts = Facts {
        knative: knative(client).await,
        prometheus: series_found(&http, &want.prometheus.url)
            .await
            .map(|found| PrometheusFacts {
                series: Some(found.generations),
                promoted_labels: found.promoted_labels,
                ..PrometheusFacts::default()
            }),
        gpu_nodes: Ok(vec![]),
        webhook: Ok(None),
    };
    Ok(crate::gate::generation_choice(&facts, &want.prometheus))
}

fn http_client(want: &Expectations) -> Result<reqwest::Client, Error> {
    reqwest::Client::builder()
        .timeout(want.prometheus.timeout)
        .no_proxy()
        .build()
        .map_err(|e| Error::Http(e.to_string()))
}

fn err(e: kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("{} ({})", s.message, s.code),
        other => other.to_string(),
    }
}

async fn knative(client: &Client) -> Result<KnativeFacts, String> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let serving_installed = crds.get_opt(SERVICES_CRD).await.map_err(err)?.is_some();
    if !serving_installed {
        return Ok(KnativeFacts::default());
    }
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let version_label = namespaces
        .get_opt(KNATIVE_NS)
        .await
        .map_err(err)?
        .and_then(|ns| ns.metadata.labels)
        .and_then(|l| release_label(&l));
    // an Operator install labels the Deployments, not the namespace; no right to read it (an
    // older ClusterRole) is no release, not an error
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), KNATIVE_NS);
    let controller_version_label = match deployments.get_opt("controller").await {
        Ok(d) => d
            .and_then(|d| d.metadata.labels)
            .and_then(|l| release_label(&l)),
        Err(e) => {
            debug!(error = %e, "Deployment knative-serving/controller not readable");
            None
        }
    };
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), KNATIVE_NS);
    let data = |cm: Option<ConfigMap>| cm.map(|c| c.data.unwrap_or_default());
    Ok(KnativeFacts {
        serving_installed,
        version_label,
        controller_version_label,
        features: data(cms.get_opt("config-features").await.map_err(err)?),
        observability: data(cms.get_opt("config-observability").await.map_err(err)?),
        deployment: data(cms.get_opt("config-deployment").await.map_err(err)?),
    })
}

/// `app.kubernetes.io/version` (Knative 1.x release manifests), else
/// `serving.knative.dev/release` (the label releases before 1.0 stamped).
fn release_label(labels: &BTreeMap<String, String>) -> Option<String> {
    labels
        .get("app.kubernetes.io/version")
        .or_else(|| labels.get("serving.knative.dev/release"))
        .cloned()
}

/// What the series probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesFound {
    /// The generations whose request-count series Prometheus holds over the last 10 minutes.
    pub generations: Vec<Generation>,
    /// Whether the OpenTelemetry generations' count series carry `kn_revision_name` themselves
    /// (`None`: there are none).
    pub promoted_labels: Option<bool>,
}

/// Which generations' request-count series Prometheus holds over the last 10 minutes, and the
/// label layout of the OpenTelemetry ones: the label index of `__name__`, restricted to the
/// three names, then (when OpenTelemetry series exist) the label names of those series. Two
/// requests, no sample read.
pub async fn series_found(http: &reqwest::Client, url: &str) -> Result<SeriesFound, String> {
    let names = Generation::ALL
        .iter()
        .map(|g| g.count_metric())
        .collect::<Vec<_>>()
        .join("|");
    let data = label_index(http, url, "label/__name__/values", &names).await?;
    let mut generations: Vec<Generation> = data
        .iter()
        .filter_map(Value::as_str)
        .filter_map(Generation::of_count_metric)
        .collect();
    generations.sort();
    generations.dedup();
    let otel = generations
        .iter()
        .filter(|g| **g != Generation::OpenCensus)
        .map(|g| g.count_metric())
        .collect::<Vec<_>>()
        .join("|");
    let promoted_labels = if otel.is_empty() {
        None
    } else {
        let labels = label_index(http, url, "labels", &otel).await?;
        Some(
            labels
                .iter()
                .any(|l| l.as_str() == Some("kn_revision_name")),
        )
    };
    Ok(SeriesFound {
        generations,
        promoted_labels,
    })
}

/// `GET /api/v1/{path}` over the last 10 minutes for the series named by the `names` regex: the
/// answer's `data` list.
async fn label_index(
    http: &reqwest::Client,
    url: &str,
    path: &str,
    names: &str,
) -> Result<Vec<Value>, String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let start = now.saturating_sub(SERIES_WINDOW.as_secs()).to_string();
    let matcher = format!("{{__name__=~\"{names}\"}}");
    let endpoint = format!("{}/api/v1/{path}", url.trim_end_matches('/'));
    let endpoint = reqwest::Url::parse_with_params(
        &endpoint,
        &[
            ("match[]", matcher.as_str()),
            ("start", start.as_str()),
            ("end", now.to_string().as_str()),
        ],
    )
    .map_err(|e| format!("bad URL {url:?}: {e}"))?;
    let v = answer(http, endpoint).await?;
    Ok(v.get("data")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default())
}

/// GETs a Prometheus API endpoint; its JSON when `status` is `success`.
async fn answer(http: &reqwest::Client, endpoint: reqwest::Url) -> Result<Value, String> {
    let resp = http
        .get(endpoint)
        .send()
        .await
        .map_err(|e| e.without_url().to_string())?;
    let status = resp.status();
    let body = resp.text().await.map_err(|e| e.without_url().to_string())?;
    let v: Value = serde_json::from_str(&body)
        .map_err(|_| format!("HTTP {status}, not a Prometheus API answer"))?;
    if v.get("status").and_then(Value::as_str) != Some("success") {
        return Err(format!(
            "query failed: {}",
            v.get("error")
                .and_then(Value::as_str)
                .unwrap_or("no error text")
        ));
    }
    Ok(v)
}

async fn count_services(client: &Client) -> usize {
    let gvk = GroupVersionKind::gvk("serving.knative.dev", "v1", "Service");
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &ApiResource::from_gvk(&gvk));
    match api.list_metadata(&ListParams::default().limit(50)).await {
        Ok(list) => list.items.len(),
        Err(e) => {
            debug!(error = %e, "cannot list Knative Services");
            0
        }
    }
}

/// Revisions the autoscaler's request-rate query finds over the last 10 minutes.
async fn prometheus(
    http: &reqwest::Client,
    url: &str,
    queries: &QuerySet,
) -> Result<usize, String> {
    let promql = QuerySet::render(&queries.request_rate, SERIES_WINDOW);
    let endpoint = format!("{}/api/v1/query", url.trim_end_matches('/'));
    let endpoint = reqwest::Url::parse_with_params(&endpoint, &[("query", promql.as_str())])
        .map_err(|e| format!("bad URL {url:?}: {e}"))?;
    let v = answer(http, endpoint).await?;
    Ok(v.pointer("/data/result")
        .and_then(Value::as_array)
        .map_or(0, Vec::len))
}

async fn gpu_nodes(client: &Client, want: &Expectations) -> Result<Vec<NodeFacts>, String> {
    let profile = &want.placement.gpu;
    let selector = profile
        .node_selector
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let nodes: Api<Node> = Api::all(client.clone());
    let list = nodes
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(err)?;
    Ok(list
        .items
        .into_iter()
        .map(|n| {
            let spec = n.spec.unwrap_or_default();
            let status = n.status.unwrap_or_default();
            let allocatable = status.allocatable.unwrap_or_default();
            NodeFacts {
                name: n.metadata.name.unwrap_or_default(),
                ready: status
                    .conditions
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True"),
                unschedulable: spec.unschedulable.unwrap_or(false),
                taints: spec
                    .taints
                    .unwrap_or_default()
                    .into_iter()
                    .map(|t| (t.key, t.value, t.effect))
                    .collect(),
                allocatable: profile
                    .limits
                    .keys()
                    .filter_map(|r| allocatable.get(r).map(|q| (r.clone(), q.0.clone())))
                    .collect::<BTreeMap<_, _>>(),
            }
        })
        .collect())
}

async fn webhook(client: &Client, want: &Expectations) -> Result<Option<WebhookFacts>, String> {
    let api: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let Some(config) = api
        .get_opt(&want.webhook_configuration)
        .await
        .map_err(err)?
    else {
        return Ok(None);
    };
    let ca_bundles = config
        .webhooks
        .unwrap_or_default()
        .into_iter()
        .filter(|w| {
            w.client_config.service.as_ref().is_some_and(|s| {
                s.name == want.webhook_service && s.namespace == want.gaia_namespace
            })
        })
        .map(|w| {
            w.client_config
                .ca_bundle
                .map(|b| String::from_utf8_lossy(&b.0).into_owned())
        })
        .collect();
    // the caller may not read Secrets (the autoscaler may not): then only the bundle's shape
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &want.gaia_namespace);
    let secret_ca = match secrets.get_opt(&want.webhook_secret).await {
        Ok(s) => s.and_then(|s| s.data).and_then(|d| {
            d.get("ca.crt")
                .map(|b| String::from_utf8_lossy(&b.0).into_owned())
        }),
        Err(e) => {
            debug!(error = %e, "webhook Secret not readable");
            None
        }
    };
    Ok(Some(WebhookFacts {
        ca_bundles,
        secret_ca,
    }))
}
