//! Cluster access shared by `kn gaia status` and `kn gaia explain`: the user's kubeconfig,
//! Knative Services as JSON, whether Gaia's webhook is registered, and a Service's Events.
//!
//! `kn` runs a plugin with its own environment and every argument but the plugin's name, its
//! own flags included (`kn --kubeconfig X gaia status` runs `kn-gaia --kubeconfig X status`).
//! So, like kn itself: `--kubeconfig`, else `KUBECONFIG`, else `~/.kube/config` (else
//! in-cluster); `--context` picks a context.

use gaia_contract::keys;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::{Event as CoreEvent, Namespace, Pod};
use k8s_openapi::api::events::v1::Event as NewEvent;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde::Serialize;
use serde_json::Value;

use crate::cli::KubeArgs;
use crate::Error;

/// A client and the namespace of the kubeconfig's current context.
pub struct Cluster {
    pub client: kube::Client,
    pub default_namespace: String,
}

/// Connects through `--kubeconfig`/`--context`, or what `kube::Config::infer` finds.
pub async fn connect(args: &KubeArgs) -> Result<Cluster, Error> {
    // Err means a provider is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let options = KubeConfigOptions {
        context: args.context.clone(),
        ..KubeConfigOptions::default()
    };
    let config = match (&args.kubeconfig, &args.context) {
        (Some(path), _) => {
            let kc = Kubeconfig::read_from(path)
                .map_err(|e| Error::Kubeconfig(format!("{}: {e}", path.display())))?;
            kube::Config::from_custom_kubeconfig(kc, &options)
                .await
                .map_err(|e| Error::Kubeconfig(format!("{}: {e}", path.display())))?
        }
        (None, Some(_)) => kube::Config::from_kubeconfig(&options)
            .await
            .map_err(|e| Error::Kubeconfig(e.to_string()))?,
        (None, None) => kube::Config::infer()
            .await
            .map_err(|e| Error::Kubeconfig(e.to_string()))?,
    };
    let default_namespace = config.default_namespace.clone();
    let client = kube::Client::try_from(config)?;
    Ok(Cluster {
        client,
        default_namespace,
    })
}

fn service_resource() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(
        "serving.knative.dev",
        "v1",
        "Service",
    ))
}

fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

fn to_value(o: DynamicObject) -> Result<Value, Error> {
    serde_json::to_value(o).map_err(|e| Error::Internal(format!("a Service as JSON: {e}")))
}

/// Knative Services in `namespace` (all namespaces when `None`), sorted by namespace and name.
pub async fn list_services(
    client: &kube::Client,
    namespace: Option<&str>,
) -> Result<Vec<Value>, Error> {
    let api: Api<DynamicObject> = match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &service_resource()),
        None => Api::all_with(client.clone(), &service_resource()),
    };
    let list = api.list(&ListParams::default()).await.map_err(|e| {
        if is_not_found(&e) {
            Error::KnativeMissing
        } else {
            Error::Kube(e)
        }
    })?;
    let mut out = list
        .items
        .into_iter()
        .map(to_value)
        .collect::<Result<Vec<_>, _>>()?;
    out.sort_by_key(|s| {
        let v = gaia_contract::ServiceView::new(s);
        (v.namespace().to_string(), v.name().to_string())
    });
    Ok(out)
}

/// One Knative Service. A 404 is told apart: no such Service, or no Knative at all.
pub async fn get_service(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<Value, Error> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &service_resource());
    match api.get(name).await {
        Ok(o) => to_value(o),
        Err(e) if is_not_found(&e) => {
            // Listing answers 404 only when the resource type itself is missing.
            list_services(client, Some(namespace)).await?;
            Err(Error::ServiceNotFound {
                namespace: namespace.into(),
                name: name.into(),
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// Whether a Gaia webhook is registered: a MutatingWebhookConfiguration named `gaia-webhook*`
/// or with a webhook `*.gaia.dev`. `None` when that cannot be read (e.g. not allowed).
pub async fn webhook_registered(client: &kube::Client) -> Option<bool> {
    let api: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let list = api.list(&ListParams::default()).await.ok()?;
    Some(list.items.iter().any(|c| {
        c.metadata
            .name
            .as_deref()
            .is_some_and(|n| n.starts_with("gaia-webhook"))
            || c.webhooks
                .iter()
                .flatten()
                .any(|w| w.name.ends_with(".gaia.dev"))
    }))
}

/// The Knative Serving release the cluster says it runs (the `knative-serving` namespace's
/// `app.kubernetes.io/version` label, as the preflight reads it); `None` when unreadable or not
/// a release (`devel`).
pub async fn knative_release(
    client: &kube::Client,
) -> Option<gaia_contract::queries::KnativeVersion> {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns = api.get_opt("knative-serving").await.ok()??;
    ns.metadata
        .labels?
        .get("app.kubernetes.io/version")?
        .parse()
        .ok()
}

/// Every Knative revision's pods: (namespace, pod, revision), from the label
/// `serving.knative.dev/revision` (what the autoscaler maps DCGM's per-pod series with).
pub async fn pod_revisions(client: &kube::Client) -> Result<Vec<(String, String, String)>, Error> {
    const REVISION: &str = "serving.knative.dev/revision";
    let api: Api<Pod> = Api::all(client.clone());
    let pods = api
        .list_metadata(&ListParams::default().labels(REVISION))
        .await?;
    Ok(pods
        .items
        .into_iter()
        .filter_map(|p| {
            let m = p.metadata;
            let rev = m.labels.as_ref()?.get(REVISION)?.clone();
            Some((m.namespace?, m.name?, rev))
        })
        .collect())
}

/// Whether `namespace` carries `gaia.dev/inject=enabled` (false when unreadable).
pub async fn namespace_injected(client: &kube::Client, namespace: &str) -> bool {
    let api: Api<Namespace> = Api::all(client.clone());
    match api.get(namespace).await {
        Ok(ns) => ns
            .metadata
            .labels
            .and_then(|l| l.get(keys::INJECT_LABEL).cloned())
            .is_some_and(|v| v == keys::INJECT_ENABLED),
        Err(_) => false,
    }
}

/// One Event about a Service, from either Events API.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceEvent {
    /// RFC 3339; the most recent occurrence when the Event repeated.
    pub time: Option<String>,
    #[serde(rename = "type")]
    pub type_: String,
    pub reason: String,
    pub message: String,
    /// The controller that reported it (`gaia-autoscaler`, `service-controller`, ...).
    pub source: String,
    pub count: i32,
    #[serde(skip)]
    pub uid: String,
}

fn core_event(e: CoreEvent) -> ServiceEvent {
    let time = e
        .series
        .as_ref()
        .and_then(|s| s.last_observed_time.as_ref().map(|t| t.0.to_string()))
        .or_else(|| e.last_timestamp.as_ref().map(|t| t.0.to_string()))
        .or_else(|| e.event_time.as_ref().map(|t| t.0.to_string()))
        .or_else(|| e.first_timestamp.as_ref().map(|t| t.0.to_string()))
        .or_else(|| {
            e.metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0.to_string())
        });
    let source = e
        .reporting_component
        .clone()
        .filter(|s| !s.is_empty())
        .or_else(|| e.source.as_ref().and_then(|s| s.component.clone()))
        .unwrap_or_default();
    ServiceEvent {
        time,
        type_: e.type_.unwrap_or_default(),
        reason: e.reason.unwrap_or_default(),
        message: e.message.unwrap_or_default(),
        source,
        count: e
            .series
            .as_ref()
            .and_then(|s| s.count)
            .or(e.count)
            .unwrap_or(1),
        uid: e.metadata.uid.unwrap_or_default(),
    }
}

fn new_event(e: NewEvent) -> ServiceEvent {
    let time = e
        .series
        .as_ref()
        .map(|s| s.last_observed_time.0.to_string())
        .or_else(|| e.event_time.as_ref().map(|t| t.0.to_string()))
        .or_else(|| {
            e.deprecated_last_timestamp
                .as_ref()
                .map(|t| t.0.to_string())
        })
        .or_else(|| {
            e.metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0.to_string())
        });
    ServiceEvent {
        time,
        type_: e.type_.unwrap_or_default(),
        reason: e.reason.unwrap_or_default(),
        message: e.note.unwrap_or_default(),
        source: e.reporting_controller.unwrap_or_default(),
        count: e
            .series
            .as_ref()
            .map(|s| s.count)
            .or(e.deprecated_count)
            .unwrap_or(1),
        uid: e.metadata.uid.unwrap_or_default(),
    }
}

fn is_knative_service(api_version: Option<&str>, kind: Option<&str>) -> bool {
    kind == Some("Service") && api_version.is_some_and(|v| v.starts_with("serving.knative.dev/"))
}

/// Events involving the Knative Service `name`, from core/v1 and events.k8s.io/v1 (the API
/// server serves each Event through both; duplicates are dropped by uid), oldest first.
pub async fn service_events(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<Vec<ServiceEvent>, Error> {
    let core: Api<CoreEvent> = Api::namespaced(client.clone(), namespace);
    let params = ListParams::default().fields(&format!("involvedObject.name={name}"));
    let mut events: Vec<ServiceEvent> = core
        .list(&params)
        .await?
        .items
        .into_iter()
        .filter(|e| {
            is_knative_service(
                e.involved_object.api_version.as_deref(),
                e.involved_object.kind.as_deref(),
            )
        })
        .map(core_event)
        .collect();
    let new: Api<NewEvent> = Api::namespaced(client.clone(), namespace);
    let params = ListParams::default().fields(&format!("regarding.name={name}"));
    let listed = match new.list(&params).await {
        Ok(l) => l.items,
        // Older servers may not know the field: filter here instead.
        Err(kube::Error::Api(s)) if s.code == 400 => new.list(&ListParams::default()).await?.items,
        Err(e) => return Err(e.into()),
    };
    for e in listed {
        let about_it = e.regarding.as_ref().is_some_and(|r| {
            r.name.as_deref() == Some(name)
                && is_knative_service(r.api_version.as_deref(), r.kind.as_deref())
        });
        let uid = e.metadata.uid.as_deref().unwrap_or_default();
        if about_it && !events.iter().any(|k| !uid.is_empty() && k.uid == uid) {
            events.push(new_event(e));
        }
    }
    sort_events(&mut events);
    Ok(events)
}

/// Oldest first; Events without a time first.
pub fn sort_events(events: &mut [ServiceEvent]) {
    events.sort_by(|a, b| {
        let key = |e: &ServiceEvent| {
            e.time
                .as_deref()
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        };
        key(a).cmp(&key(b))
    });
}

/// The annotation that opts a Service in, as a command to run.
pub fn opt_in_hint(namespace: &str, name: &str) -> String {
    format!(
        "kn service update {name} -n {namespace} --annotation {}=auto",
        keys::EXECUTION_MODE
    )
}
