//! Where a function's source comes from, in order:
//!
//! 1. the `gaia.dev/source` annotation (one file, inline);
//! 2. ConfigMap volumes mounted into the user container (every key ending in `.py`), read
//!    through the API; a missing ConfigMap is not an error;
//! 3. the user container's image, read from its registry (`crate::image`, docs/image-source.md);
//! 4. nothing: the caller falls back to the configured default mode.
//!
//! A new source is one more variant of [`SourceProvider`], tried in [`SourceChain::fetch`] in
//! its place in the order.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use gaia_contract::{keys, placement::user_container_index};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Api, Client};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::image::{ImageSource, ReviewContext};
use crate::Error;
use gaia_classifier::SourceFile;

/// Where the analysed source was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceOrigin {
    Inline,
    ConfigMaps(Vec<String>),
    /// The user container's image, as referenced, and the manifest digest read.
    Image {
        reference: String,
        digest: String,
    },
}

impl SourceOrigin {
    /// The value of `gaia.dev/source-origin`.
    pub fn annotation(&self) -> String {
        match self {
            SourceOrigin::Inline => "annotation".to_string(),
            SourceOrigin::ConfigMaps(names) => format!("configmap:{}", names.join(",")),
            SourceOrigin::Image { reference, .. } => format!("image:{reference}"),
        }
    }

    /// The value of `gaia.dev/image-digest`, for an image.
    pub fn image_digest(&self) -> Option<&str> {
        match self {
            SourceOrigin::Image { digest, .. } => Some(digest),
            _ => None,
        }
    }
}

impl std::fmt::Display for SourceOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceOrigin::Inline => write!(f, "annotation {}", keys::SOURCE),
            SourceOrigin::ConfigMaps(names) => write!(f, "ConfigMap {}", names.join(", ")),
            SourceOrigin::Image { reference, digest } => write!(f, "image {reference}@{digest}"),
        }
    }
}

/// A function's source files and where they came from.
#[derive(Debug, Clone)]
pub struct FunctionSource {
    pub origin: SourceOrigin,
    pub files: Vec<SourceFile>,
    /// `sha256:<hex>` over the sorted paths and contents.
    pub digest: String,
}

impl FunctionSource {
    pub fn new(origin: SourceOrigin, mut files: Vec<SourceFile>) -> FunctionSource {
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let digest = digest(&files);
        FunctionSource {
            origin,
            files,
            digest,
        }
    }
}

/// The digest written to `gaia.dev/source-digest`.
pub fn digest(files: &[SourceFile]) -> String {
    let mut h = Sha256::new();
    for f in files {
        h.update((f.path.len() as u64).to_le_bytes());
        h.update(f.path.as_bytes());
        h.update((f.bytes.len() as u64).to_le_bytes());
        h.update(&f.bytes);
    }
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for b in h.finalize() {
        out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    out
}

/// One place a function's source can come from.
pub enum SourceProvider {
    /// The `gaia.dev/source` annotation on the Service or its template.
    InlineAnnotation,
    /// ConfigMap volumes mounted into the user container, read through the API.
    ConfigMapVolumes(Client),
    /// The user container's image, read from its registry.
    Image(Arc<ImageSource>),
}

impl SourceProvider {
    async fn fetch(
        &self,
        service: &Value,
        namespace: &str,
        ctx: &ReviewContext,
        deadline: Instant,
    ) -> Result<Option<FunctionSource>, Error> {
        match self {
            SourceProvider::InlineAnnotation => Ok(inline_source(service)),
            SourceProvider::ConfigMapVolumes(client) => {
                configmap_source(client, service, namespace).await
            }
            SourceProvider::Image(images) => images.fetch(service, namespace, ctx, deadline).await,
        }
    }
}

/// The providers, tried in order; the first that finds source wins.
pub struct SourceChain {
    providers: Vec<SourceProvider>,
}

impl SourceChain {
    /// Inline annotation, then ConfigMap volumes when an API client is available, then the
    /// image when an image source is configured.
    pub fn new(client: Option<Client>, images: Option<Arc<ImageSource>>) -> SourceChain {
        let mut providers = vec![SourceProvider::InlineAnnotation];
        if let Some(c) = client {
            providers.push(SourceProvider::ConfigMapVolumes(c));
        }
        if let Some(i) = images {
            providers.push(SourceProvider::Image(i));
        }
        SourceChain { providers }
    }

    /// The first source found; `deadline` bounds the waits of slow providers (the image).
    pub async fn fetch(
        &self,
        service: &Value,
        namespace: &str,
        ctx: &ReviewContext,
        deadline: Instant,
    ) -> Result<Option<FunctionSource>, Error> {
        for p in &self.providers {
            if let Some(found) = p.fetch(service, namespace, ctx, deadline).await? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }
}

fn inline_source(service: &Value) -> Option<FunctionSource> {
    let text = [
        "/metadata/annotations",
        "/spec/template/metadata/annotations",
    ]
    .iter()
    .find_map(|p| service.pointer(p)?.get(keys::SOURCE)?.as_str())?;
    Some(FunctionSource::new(
        SourceOrigin::Inline,
        vec![SourceFile {
            path: "func.py".into(),
            bytes: text.as_bytes().to_vec(),
        }],
    ))
}

/// A ConfigMap mounted into the user container: which keys land at which path.
#[derive(Debug, PartialEq)]
pub struct MountedConfigMap {
    pub name: String,
    pub mount_path: String,
    /// key -> path relative to the mount; empty means every key under its own name.
    pub items: BTreeMap<String, String>,
    pub optional: bool,
}

/// The ConfigMaps mounted into the user container, from the revision template.
pub fn mounted_configmaps(service: &Value) -> Vec<MountedConfigMap> {
    let Some(pod) = service.pointer("/spec/template/spec") else {
        return Vec::new();
    };
    let containers = pod
        .get("containers")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let Some(user) = containers.get(user_container_index(containers)) else {
        return Vec::new();
    };
    let volumes = pod
        .get("volumes")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mounts = user
        .get("volumeMounts")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut out = Vec::new();
    for mount in mounts {
        let (Some(vol_name), Some(mount_path)) = (
            mount.get("name").and_then(Value::as_str),
            mount.get("mountPath").and_then(Value::as_str),
        ) else {
            continue;
        };
        let Some(volume) = volumes
            .iter()
            .find(|v| v.get("name").and_then(Value::as_str) == Some(vol_name))
        else {
            continue;
        };
        let mut sources: Vec<&Value> = Vec::new();
        if let Some(cm) = volume.get("configMap") {
            sources.push(cm);
        }
        if let Some(projected) = volume
            .pointer("/projected/sources")
            .and_then(Value::as_array)
        {
            sources.extend(projected.iter().filter_map(|s| s.get("configMap")));
        }
        for cm in sources {
            let Some(name) = cm.get("name").and_then(Value::as_str) else {
                continue;
            };
            let items = cm
                .get("items")
                .and_then(Value::as_array)
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|i| {
                            Some((
                                i.get("key")?.as_str()?.to_string(),
                                i.get("path")?.as_str()?.to_string(),
                            ))
                        })
                        .collect()
                })
                .unwrap_or_default();
            out.push(MountedConfigMap {
                name: name.to_string(),
                mount_path: mount_path.to_string(),
                items,
                optional: cm.get("optional").and_then(Value::as_bool).unwrap_or(false),
            });
        }
    }
    out
}

/// Reads the `.py` keys of the mounted ConfigMaps. Each ConfigMap is at most 1 MiB (etcd's
/// limit); the classifier enforces the configured size limits on the result.
async fn configmap_source(
    client: &Client,
    service: &Value,
    namespace: &str,
) -> Result<Option<FunctionSource>, Error> {
    let mounted = mounted_configmaps(service);
    if mounted.is_empty() {
        return Ok(None);
    }
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let mut files = Vec::new();
    let mut names = Vec::new();
    for m in &mounted {
        let Some(cm) = api.get_opt(&m.name).await? else {
            continue; // missing: not an error, fall through
        };
        let mut found = false;
        let data = cm
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.into_bytes()));
        let binary = cm
            .binary_data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0));
        for (key, bytes) in data.chain(binary) {
            let relative = if m.items.is_empty() {
                key.clone()
            } else if let Some(p) = m.items.get(&key) {
                p.clone()
            } else {
                continue;
            };
            if !relative.ends_with(".py") {
                continue;
            }
            files.push(SourceFile {
                path: join(&m.mount_path, &relative),
                bytes,
            });
            found = true;
        }
        if found {
            names.push(m.name.clone());
        }
    }
    if files.is_empty() {
        return Ok(None);
    }
    Ok(Some(FunctionSource::new(
        SourceOrigin::ConfigMaps(names),
        strip_common_dir(files),
    )))
}

fn join(mount: &str, relative: &str) -> String {
    let mount = mount.trim_matches('/');
    if mount.is_empty() {
        relative.to_string()
    } else {
        format!("{mount}/{relative}")
    }
}

/// Paths relative to the deepest directory all files share: the function's root.
fn strip_common_dir(mut files: Vec<SourceFile>) -> Vec<SourceFile> {
    let dirs: Vec<Vec<&str>> = files
        .iter()
        .map(|f| {
            let mut parts: Vec<&str> = f.path.split('/').collect();
            parts.pop();
            parts
        })
        .collect();
    let Some(first) = dirs.first() else {
        return files;
    };
    let common = (0..first.len())
        .take_while(|&i| dirs.iter().all(|d| d.get(i) == first.get(i)))
        .count();
    if common == 0 {
        return files;
    }
    let prefix_len: usize = first[..common].iter().map(|p| p.len() + 1).sum();
    for f in &mut files {
        f.path = f.path[prefix_len..].to_string();
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn inline_source_comes_from_either_annotation() {
        let s = json!({"metadata": {"annotations": {"gaia.dev/source": "import torch\n"}}});
        let src = inline_source(&s).unwrap();
        assert_eq!(src.origin, SourceOrigin::Inline);
        assert_eq!(src.files[0].bytes, b"import torch\n");
        let t = json!({"spec": {"template": {"metadata": {"annotations": {"gaia.dev/source": "x = 1"}}}}});
        assert!(inline_source(&t).is_some());
        assert!(inline_source(&json!({"metadata": {}})).is_none());
    }

    #[test]
    fn digest_depends_on_paths_and_contents_not_order() {
        let a = SourceFile {
            path: "a.py".into(),
            bytes: b"x".to_vec(),
        };
        let b = SourceFile {
            path: "b.py".into(),
            bytes: b"y".to_vec(),
        };
        let one = FunctionSource::new(SourceOrigin::Inline, vec![a.clone(), b.clone()]);
        let two = FunctionSource::new(SourceOrigin::Inline, vec![b.clone(), a.clone()]);
        assert_eq!(one.digest, two.digest);
        assert!(one.digest.starts_with("sha256:") && one.digest.len() == 71);
        let renamed = FunctionSource::new(
            SourceOrigin::Inline,
            vec![
                SourceFile {
                    path: "c.py".into(),
                    bytes: b"x".to_vec(),
                },
                b,
            ],
        );
        assert_ne!(one.digest, renamed.digest);
    }

    #[test]
    fn finds_configmap_and_projected_volumes_of_the_user_container() {
        let s = json!({"spec": {"template": {"spec": {
            "containers": [
                {"name": "side", "volumeMounts": [{"name": "other", "mountPath": "/x"}]},
                {"name": "user", "ports": [{"containerPort": 8080}], "volumeMounts": [
                    {"name": "code", "mountPath": "/app"},
                    {"name": "lib", "mountPath": "/app/lib"}
                ]}
            ],
            "volumes": [
                {"name": "code", "configMap": {"name": "fn-code", "items": [{"key": "main", "path": "func.py"}]}},
                {"name": "lib", "projected": {"sources": [{"configMap": {"name": "fn-lib", "optional": true}}, {"secret": {"name": "s"}}]}},
                {"name": "other", "configMap": {"name": "not-mine"}}
            ]
        }}}});
        let m = mounted_configmaps(&s);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].name, "fn-code");
        assert_eq!(m[0].items["main"], "func.py");
        assert_eq!(m[1].name, "fn-lib");
        assert!(m[1].optional);
        assert_eq!(m[1].mount_path, "/app/lib");
    }

    #[test]
    fn paths_are_relative_to_the_function_root() {
        let files = strip_common_dir(vec![
            SourceFile {
                path: "app/func.py".into(),
                bytes: vec![],
            },
            SourceFile {
                path: "app/lib/model.py".into(),
                bytes: vec![],
            },
        ]);
        assert_eq!(files[0].path, "func.py");
        assert_eq!(files[1].path, "lib/model.py");
    }
}
