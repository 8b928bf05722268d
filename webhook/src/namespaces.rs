//! Which namespaces opted in with the label `gaia.dev/inject=enabled`.
//!
//! AdmissionReviews do not carry namespace labels, so the webhook keeps a watch on namespace
//! metadata (labels only; no spec, no status) and answers from memory.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures::StreamExt;
use gaia_contract::keys;
use k8s_openapi::api::core::v1::Namespace;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client};
use tracing::warn;

/// Namespace labels, from a watch. Without an API client every namespace reads as not labelled.
#[derive(Clone)]
pub struct NamespaceLabels {
    store: Option<Store<PartialObjectMeta<Namespace>>>,
    ready: Arc<AtomicBool>,
}

impl NamespaceLabels {
    /// No API: only annotations opt Services in.
    pub fn none() -> NamespaceLabels {
        NamespaceLabels {
            store: None,
            ready: Arc::new(AtomicBool::new(true)),
        }
    }

    /// Starts watching namespaces on the current tokio runtime.
    pub fn watch(client: Client) -> NamespaceLabels {
        let (store, writer) = reflector::store();
        let ready = Arc::new(AtomicBool::new(false));
        // Api over PartialObjectMeta makes metadata-only requests: labels, no spec or status.
        let api: Api<PartialObjectMeta<Namespace>> = Api::all(client);
        let stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .reflect(writer)
            .touched_objects();
        tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(event) = stream.next().await {
                if let Err(e) = event {
                    warn!(error = %e, "namespace watch");
                }
            }
        });
        let waiting = store.clone();
        let flag = Arc::clone(&ready);
        tokio::spawn(async move {
            if waiting.wait_until_ready().await.is_ok() {
                flag.store(true, Ordering::Release);
            }
        });
        NamespaceLabels {
            store: Some(store),
            ready,
        }
    }

    /// True once the first list of namespaces has arrived (for `/readyz`).
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Whether `namespace` carries `gaia.dev/inject=enabled`.
    pub fn opted_in(&self, namespace: &str) -> bool {
        let Some(store) = &self.store else {
            return false;
        };
        store
            .get(&ObjectRef::new(namespace))
            .and_then(|ns| {
                ns.metadata.labels.as_ref().map(|l| {
                    l.get(keys::INJECT_LABEL).map(String::as_str) == Some(keys::INJECT_ENABLED)
                })
            })
            .unwrap_or(false)
    }
}
