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
    /// Set when the review was answered from a remembered tag resolution that the registry
    /// has since contradicted (the tag moved): the Service was classified from this digest,
    /// and is classified again from the tag's new one.
    pub stale_digest: Option<String>,
}

/// Which tag resolutions a Service may reuse: the same image, asked for with the same pull
/// secrets (the ServiceAccount and `imagePullSecrets` the kubelet would use) in the same
/// namespace, so one namespace's credentials never answer another's review.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResolutionKey {
    pub namespace: String,
    pub image: String,
    pub service_account: String,
    pub pull_secrets: Vec<String>,
}

impl ResolutionKey {
    /// `None` for an image pinned by digest (nothing to resolve).
    pub fn of(service: &Value, namespace: &str, image: &str) -> Option<ResolutionKey> {
        if image.contains('@') {
            return None;
        }
        let spec = service.pointer("/spec/template/spec");
        let service_account = spec
            .and_then(|s| s.get("serviceAccountName"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or("default")
            .to_string();
        let pull_secrets = spec
            .and_then(|s| s.get("imagePullSecrets"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.get("name")?.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        Some(ResolutionKey {
            namespace: namespace.to_string(),
            image: image.to_string(),
            service_account,
            pull_secrets,
        })
    }
}

/// A tag's digest as the registry last confirmed it.
#[derive(Debug, Clone)]
struct Resolution {
    digest: String,
    confirmed: Instant,
}

/// Pure: whether a resolution confirmed at `confirmed` may still answer a review at `now`.
pub fn still_fresh(confirmed: Instant, now: Instant, ttl: Duration) -> bool {
    !ttl.is_zero() && now.saturating_duration_since(confirmed) < ttl
}

/// Remembered resolutions, and the keys being confirmed again now.
#[derive(Default)]
struct Resolutions {
    remembered: HashMap<ResolutionKey, Resolution>,
    confirming: std::collections::HashSet<ResolutionKey>,
}

/// Most resolutions remembered; past it the oldest half is forgotten.
const MAX_RESOLUTIONS: usize = 4096;

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
    tag_ttl: Duration,
    resolutions: Arc<Mutex<Resolutions>>,
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
            tag_ttl: config.tag_ttl,
            resolutions: Arc::default(),
        })
    }

    /// Where follow-ups go (set once, by the process wiring).
    pub fn set_follow_ups(&self, tx: mpsc::UnboundedSender<FollowUp>) {
        let _ = self.follow_ups.set(tx);
    }

    fn follow_up(&self, service: &Value, namespace: &str, ctx: &ReviewContext, why: String) {
        if let Some(f) = self.follow_up_for(service, namespace, ctx, why) {
            if let Some(tx) = self.follow_ups.get() {
                let _ = tx.send(f);
            }
        }
    }

    fn follow_up_for(
        &self,
        service: &Value,
        namespace: &str,
        ctx: &ReviewContext,
        why: String,
    ) -> Option<FollowUp> {
        if !ctx.follow_up || ctx.name.is_empty() || !self.finish_after_deadline {
            return None;
        }
        Some(FollowUp {
            namespace: namespace.to_string(),
            name: ctx.name.clone(),
            image: user_image(service)?.image,
            why,
            stale_digest: None,
        })
    }

    /// The digest the registry confirmed for `key` within `image.tagTtl`.
    fn remembered(&self, key: &ResolutionKey) -> Option<String> {
        let r = self.resolutions.lock().unwrap_or_else(|p| p.into_inner());
        let found = r.remembered.get(key)?;
        still_fresh(found.confirmed, Instant::now(), self.tag_ttl).then(|| found.digest.clone())
    }

    fn remember(&self, key: ResolutionKey, digest: String) {
        remember(&self.resolutions, key, digest);
    }

    /// Asks the registry again, off the review's path, whether `key` still names `digest`. A
    /// moved tag replaces the remembered digest and sends the Service (classified from the old
    /// one) to the follow-up; an error forgets the resolution, so the next review asks and
    /// reports it.
    fn confirm(
        &self,
        key: ResolutionKey,
        digest: String,
        service: &Value,
        follow_up: Option<FollowUp>,
    ) {
        {
            let mut r = self.resolutions.lock().unwrap_or_else(|p| p.into_inner());
            if !r.confirming.insert(key.clone()) {
                return;
            }
        }
        let reader = Arc::clone(&self.reader);
        let resolutions = Arc::clone(&self.resolutions);
        let client = self.client.clone();
        let tx = self.follow_ups.get().cloned();
        let service = service.clone();
        tokio::spawn(async move {
            let secrets = match &client {
                Some(c) => pull_secrets(c, &service, &key.namespace).await,
                None => Vec::new(),
            };
            let result = reader.registries.resolve(&key.image, &secrets).await;
            match result {
                Ok(r) if r.digest == digest => remember(&resolutions, key.clone(), digest),
                Ok(r) => {
                    info!(image = %key.image, old = %digest, new = %r.digest, "the tag moved");
                    remember(&resolutions, key.clone(), r.digest);
                    if let (Some(tx), Some(mut f)) = (tx, follow_up) {
                        f.stale_digest = Some(digest);
                        let _ = tx.send(f);
                    }
                }
                Err(e) => {
                    debug!(image = %key.image, error = %e, "resolution not confirmed: forgotten");
                    let mut r = resolutions.lock().unwrap_or_else(|p| p.into_inner());
                    r.remembered.remove(&key);
                }
            }
            let mut r = resolutions.lock().unwrap_or_else(|p| p.into_inner());
            r.confirming.remove(&key);
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
        let key = ResolutionKey::of(service, namespace, &user.image);
        if let Some(key) = key.clone() {
            if let Some(digest) = self.remembered(&key) {
                if let Some(f) = self.cache.get(&digest, &user.command) {
                    debug!(%digest, "tag resolved lately, image read before");
                    let follow_up =
                        self.follow_up_for(service, namespace, ctx, "the tag moved".into());
                    self.confirm(key, digest, service, follow_up);
                    return Ok(Some(to_source(&f, &user.image)));
                }
            }
        }
        let secrets = match &self.client {
            Some(c) => pull_secrets(c, service, namespace).await,
            None => Vec::new(),
        };
        let left = deadline.saturating_duration_since(Instant::now());
        let wait_until = Instant::now() + left.saturating_sub(CLASSIFY_MARGIN.min(left / 4));
        let resolving = Instant::now();
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
                let registry = gaia_image_source::registry::registry_of(&user.image);
                return Err(Error::ImagePending {
                    reference: user.image,
                    waited: resolving.elapsed(),
                    registry,
                });
            }
        };
        if let Some(key) = key {
            self.remember(key, resolved.digest.clone());
        }
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
                    registry: None,
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

fn remember(resolutions: &Mutex<Resolutions>, key: ResolutionKey, digest: String) {
    let mut r = resolutions.lock().unwrap_or_else(|p| p.into_inner());
    if r.remembered.len() >= MAX_RESOLUTIONS && !r.remembered.contains_key(&key) {
        let mut ages: Vec<Instant> = r.remembered.values().map(|v| v.confirmed).collect();
        ages.sort_unstable();
        let cut = ages[ages.len() / 2];
        r.remembered.retain(|_, v| v.confirmed > cut);
    }
    r.remembered.insert(
        key,
        Resolution {
            digest,
            confirmed: Instant::now(),
        },
    );
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

    #[test]
    fn a_resolution_is_reused_only_with_the_same_namespace_and_pull_secrets() {
        let s = json!({"spec": {"template": {"spec": {
            "serviceAccountName": "puller",
            "imagePullSecrets": [{"name": "a"}, {"name": "b"}],
            "containers": [{"image": "reg/f:1"}]}}}});
        let k = ResolutionKey::of(&s, "ns", "reg/f:1").expect("a tag");
        assert_eq!(k.service_account, "puller");
        assert_eq!(k.pull_secrets, ["a", "b"]);
        assert_ne!(Some(k.clone()), ResolutionKey::of(&s, "other", "reg/f:1"));
        let plain = json!({"spec": {"template": {"spec": {"containers": [{"image": "reg/f:1"}]}}}});
        let d = ResolutionKey::of(&plain, "ns", "reg/f:1").expect("a tag");
        assert_eq!(d.service_account, "default");
        assert_ne!(k, d);
        assert_eq!(ResolutionKey::of(&plain, "ns", "reg/f@sha256:abc"), None);
    }

    #[test]
    fn a_resolution_answers_for_the_tag_ttl_and_never_with_zero() {
        let t = Instant::now();
        let ttl = Duration::from_secs(30);
        assert!(still_fresh(t, t + Duration::from_secs(29), ttl));
        assert!(!still_fresh(t, t + ttl, ttl));
        assert!(!still_fresh(t, t, Duration::ZERO));
    }
}
