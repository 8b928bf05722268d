//! An in-memory index fed by a kube-runtime watcher: keyed by namespace/name, holding a
//! projection of each object (objects the projection rejects are not kept).

use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use kube::runtime::watcher::Event;
use kube::ResourceExt;

/// namespace/name (namespace empty for cluster-scoped objects).
pub type ObjectKey = (String, String);

#[derive(Debug)]
pub struct Index<T> {
    inner: RwLock<Inner<T>>,
}

#[derive(Debug)]
struct Inner<T> {
    items: HashMap<ObjectKey, Arc<T>>,
    /// Objects of a relist in progress; swapped in at `InitDone`.
    relist: Option<HashMap<ObjectKey, Arc<T>>>,
    synced: bool,
}

impl<T> Default for Index<T> {
    fn default() -> Self {
        Index {
            inner: RwLock::new(Inner {
                items: HashMap::new(),
                relist: None,
                synced: false,
            }),
        }
    }
}

fn key_of<K: ResourceExt>(obj: &K) -> ObjectKey {
    (obj.namespace().unwrap_or_default(), obj.name_any())
}

impl<T> Index<T> {
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner<T>> {
        // A panic while holding the lock leaves consistent data (single map operations).
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner<T>> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies one watcher event through `project`.
    pub fn apply<K: ResourceExt>(&self, event: Event<K>, project: impl Fn(&K) -> Option<T>) {
        let mut inner = self.write();
        match event {
            Event::Init => inner.relist = Some(HashMap::new()),
            Event::InitApply(obj) => {
                if let Some(v) = project(&obj) {
                    let key = key_of(&obj);
                    inner
                        .relist
                        .get_or_insert_with(HashMap::new)
                        .insert(key, Arc::new(v));
                }
            }
            Event::InitDone => {
                let fresh = inner.relist.take().unwrap_or_default();
                inner.items = fresh;
                inner.synced = true;
            }
            Event::Apply(obj) => {
                let key = key_of(&obj);
                match project(&obj) {
                    Some(v) => {
                        inner.items.insert(key, Arc::new(v));
                    }
                    None => {
                        inner.items.remove(&key);
                    }
                }
            }
            Event::Delete(obj) => {
                inner.items.remove(&key_of(&obj));
            }
        }
    }

    /// Every object, in no particular order.
    pub fn snapshot(&self) -> Vec<Arc<T>> {
        self.read().items.values().cloned().collect()
    }

    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<T>> {
        self.read()
            .items
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    pub fn len(&self) -> usize {
        self.read().items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True once the first full list has been applied.
    pub fn is_synced(&self) -> bool {
        self.read().synced
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;

    fn cm(name: &str, keep: bool) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                labels: keep.then(|| [("keep".to_string(), "yes".to_string())].into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn project(c: &ConfigMap) -> Option<String> {
        c.labels().contains_key("keep").then(|| c.name_any())
    }

    #[test]
    fn relist_replaces_and_projection_filters() {
        let idx: Index<String> = Index::new();
        idx.apply(Event::Apply(cm("stale", true)), project);
        assert!(!idx.is_synced());
        idx.apply(Event::Init, project);
        idx.apply(Event::InitApply(cm("a", true)), project);
        idx.apply(Event::InitApply(cm("b", false)), project);
        // until InitDone the old view is still served
        assert_eq!(idx.len(), 1);
        idx.apply(Event::InitDone, project);
        assert!(idx.is_synced());
        assert_eq!(idx.snapshot().len(), 1);
        assert!(idx.get("ns", "a").is_some());
        idx.apply(Event::Apply(cm("a", false)), project);
        assert!(idx.is_empty());
        idx.apply(Event::Apply(cm("c", true)), project);
        idx.apply(Event::Delete(cm("c", true)), project);
        assert!(idx.is_empty());
    }
}
