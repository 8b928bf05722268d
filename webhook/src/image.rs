//! The image source of the webhook: the user container's image, read with
//! `gaia-image-source`, cached by digest, with reads that outlive a review's budget finished in
//! the background (and followed up by [`crate::follow_up`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use gaia_contract::placement::user_container_index;
use gaia_image_source::{Command, ImageCache, ImageFunction, ImageReader, PullSecret, Registries};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::{Api, Client};
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use crate::config::ImageConfig;
use crate::sources::{FunctionSource, SourceOrigin};
use crate::Error;

/// Time left for classification after the image wait, within a review's budget (at most a
/// quarter of it).
pub const CLASSIFY_MARGIN: Duration = Duration::from_millis(150);

/// The user container's image and how it is started.
#[derive(Debug, Clone, PartialEq)]
pub struct UserImage {
    pub image: String,
    pub command: Command,
}

/// The user container's `image`, `command` and `args`.
pub fn user_image(service: &Value) -> Option<UserImage> {
    let containers = service
        .pointer("/spec/template/spec/containers")?
        .as_array()?;
    let user = containers.get(user_container_index(containers))?;
    let image = user.get("image")?.as_str()?.trim();
    if image.is_empty() {
        return None;
    }
    let strings = |key: &str| {
        user.get(key)?.as_array().map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect::<Vec<_>>()
        })
    };
    Some(UserImage {
        image: image.to_string(),
        command: Command {
            command: strings("command"),
            args: strings("args"),
        },
    })
}

/// The pull secrets the kubelet would use for the Service's pods: the template's
/// `imagePullSecrets`, then its ServiceAccount's (`default` when none is named). Missing
/// secrets and ServiceAccounts are skipped, as the kubelet does.
pub async fn pull_secrets(client: &Client, service: &Value, namespace: &str) -> Vec<PullSecret> {
    let spec = service.pointer("/spec/template/spec");
    let names_of = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.get("name")?.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut names = names_of(spec.and_then(|s| s.get("imagePullSecrets")));
    let account = spec
        .and_then(|s| s.get("serviceAccountName"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or("default");
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    match accounts.get_opt(account).await {
        Ok(Some(sa)) => {
            for r in sa.image_pull_secrets.unwrap_or_default() {
                if !names.contains(&r.name) {
                    names.push(r.name);
                }
            }
        }
        Ok(None) => {}
        Err(e) => debug!(%account, error = %e, "ServiceAccount not read"),
    }
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let mut out = Vec::new();
    for name in names {
        let secret = match secrets.get_opt(&name).await {
            Ok(Some(s)) => s,
            Ok(None) => continue,
            Err(e) => {
                warn!(secret = %name, error = %e, "pull secret not read");
                continue;
            }
        };
        let data = secret.data.unwrap_or_default();
        let (key, legacy) = match secret.type_.as_deref() {
            Some("kubernetes.io/dockercfg") => (".dockercfg", true),
            _ => (".dockerconfigjson", false),
        };
        if let Some(bytes) = data.get(key) {
            out.push(PullSecret {
                name: format!("{namespace}/{name}"),
                data: bytes.0.clone(),
                legacy,
            });
        }
    }
    out
}

type ReadResult = Option<Result<Arc<ImageFunction>, String>>;
/// Reads running now, by digest and command line.
type Inflight = Arc<Mutex<HashMap<(String, Command), watch::Receiver<ReadResult>>>>;

/// A Service to finish classifying once its image is read.
#[derive(Debug, Clone)]
pub struct FollowUp {
    pub namespace: String,
    pub name: String,
    /// The image the review saw; a Service that changed image since is left to its new review.
    pub image: String,
    pub why: String,
}

/// What a review tells the image source about itself.
#[derive(Debug, Clone, Default)]
pub struct ReviewContext {
    pub name: String,
    /// Dry runs and follow-ups themselves are not followed up.
    pub follow_up: bool,
}

/// Images read, being read, and the reviews waiting for them.
pub struct ImageSource {
    pub reader: Arc<ImageReader>,
    pub cache: Arc<ImageCache>,
    inflight: Inflight,
    client: Option<Client>,
    follow_ups: OnceLock<mpsc::UnboundedSender<FollowUp>>,
    finish_after_deadline: bool,
    skip_registries: std::collections::BTreeSet<String>,
}

impl ImageSource {
    pub fn new(config: &ImageConfig, client: Option<Client>) -> Result<ImageSource, Error> {
        let registries = Registries::new(config.registries.clone())?;
        Ok(ImageSource {
            reader: Arc::new(ImageReader {
                registries,
                limits: config.limits.clone(),
            }),
            cache: Arc::new(ImageCache::new(config.cache_entries, config.cache_bytes)),
            inflight: Arc::new(Mutex::new(HashMap::new())),
            client,
            follow_ups: OnceLock::new(),
            finish_after_deadline: config.finish_after_deadline,
            skip_registries: config.skip_registries.clone(),
        })
    }

    /// Where follow-ups go (set once, by the process wiring).
    pub fn set_follow_ups(&self, tx: mpsc::UnboundedSender<FollowUp>) {
        let _ = self.follow_ups.set(tx);
    }

    fn follow_up(&self, service: &Value, namespace: &str, ctx: &ReviewContext, why: String) {
        if !ctx.follow_up || ctx.name.is_empty() || !self.finish_after_deadline {
            return;
        }
        let (Some(tx), Some(user)) = (self.follow_ups.get(), user_image(service)) else {
            return;
        };
        let _ = tx.send(FollowUp {
            namespace: namespace.to_string(),
            name: ctx.name.clone(),
            image: user.image,
            why,
        });
    }

    /// The function in the user container's image, waiting at most until `deadline` (less the
    /// classification's margin). `Ok(None)` when the Service names no image.
    pub async fn fetch(
        &self,
        service: &Value,
        namespace: &str,
        ctx: &ReviewContext,
        deadline: Instant,
    ) -> Result<Option<FunctionSource>, Error> {
        let Some(user) = user_image(service) else {
            return Ok(None);
        };
        match gaia_image_source::registry::registry_of(&user.image) {
            Some(r) if self.skip_registries.contains(&r) => return Ok(None),
            _ => {}
        }
        let secrets = match &self.client {
            Some(c) => pull_secrets(c, service, namespace).await,
            None => Vec::new(),
        };
        let left = deadline.saturating_duration_since(Instant::now());
        let wait_until = Instant::now() + left.saturating_sub(CLASSIFY_MARGIN.min(left / 4));
        let resolve = self.reader.registries.resolve(&user.image, &secrets);
        let resolved = match tokio::time::timeout_at(wait_until.into(), resolve).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                if matches!(e, gaia_image_source::Error::Registry { .. }) {
                    // The registry may come back: try again later.
                    self.follow_up(service, namespace, ctx, e.to_string());
                }
                return Err(e.into());
            }
            Err(_) => {
                self.follow_up(service, namespace, ctx, "registry slow".into());
                return Err(Error::ImagePending {
                    reference: user.image,
                    waited: deadline.saturating_duration_since(Instant::now()),
                });
            }
        };
        if let Some(f) = self.cache.get(&resolved.digest, &user.command) {
            debug!(digest = %resolved.digest, "image read before");
            return Ok(Some(to_source(&f, &user.image)));
        }
        let mut rx = self.start_read(resolved, secrets, user.command.clone());
        let started = Instant::now();
        let waited = tokio::time::timeout_at(wait_until.into(), async {
            loop {
                if let Some(r) = rx.borrow_and_update().clone() {
                    return r;
                }
                if rx.changed().await.is_err() {
                    return Err("the image read stopped".to_string());
                }
            }
        })
        .await;
        match waited {
            Ok(Ok(f)) => Ok(Some(to_source(&f, &user.image))),
            Ok(Err(message)) => Err(Error::ImageRead(message)),
            Err(_) => {
                self.follow_up(
                    service,
                    namespace,
                    ctx,
                    "image read after the review".into(),
                );
                Err(Error::ImagePending {
                    reference: user.image,
                    waited: started.elapsed(),
                })
            }
        }
    }

    /// The running read of this digest and command line, or a new one. Runs on its own task, so
    /// a review that stops waiting does not stop it; the result goes into the cache.
    fn start_read(
        &self,
        resolved: gaia_image_source::Resolved,
        secrets: Vec<PullSecret>,
        command: Command,
    ) -> watch::Receiver<ReadResult> {
        let key = (resolved.digest.clone(), command.clone());
        let mut inflight = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(rx) = inflight.get(&key) {
            return rx.clone();
        }
        let (tx, rx) = watch::channel(None);
        inflight.insert(key.clone(), rx.clone());
        drop(inflight);
        let reader = Arc::clone(&self.reader);
        let cache = Arc::clone(&self.cache);
        let inflight = Arc::clone(&self.inflight);
        tokio::spawn(async move {
            let reference = resolved.reference.clone();
            let result = match reader.read(resolved, &secrets, &command).await {
                Ok(f) => {
                    let f = Arc::new(f);
                    cache.put(&command, Arc::clone(&f));
                    Ok(f)
                }
                Err(e) => {
                    info!(%reference, error = %e, "image not read");
                    Err(e.to_string())
                }
            };
            inflight
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&key);
            let _ = tx.send(Some(result));
        });
        rx
    }
}

fn to_source(f: &ImageFunction, reference: &str) -> FunctionSource {
    FunctionSource::new(
        SourceOrigin::Image {
            reference: reference.to_string(),
            digest: f.digest.clone(),
        },
        f.files.clone(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_user_containers_image_and_command() {
        let s = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "side", "image": "proxy"},
            {"name": "user", "image": "reg/f:1", "ports": [{"containerPort": 8080}], "args": ["x.py"]}
        ]}}}});
        let u = user_image(&s).expect("image");
        assert_eq!(u.image, "reg/f:1");
        assert_eq!(u.command.args, Some(vec!["x.py".to_string()]));
        assert_eq!(u.command.command, None);
        assert!(user_image(&json!({"spec": {}})).is_none());
    }
}
