//! Finishing a classification after its review: when a review's budget ran out before the
//! Service's image was read (or its registry was down), the Service was admitted with the
//! default mode; this loop waits for the read, works out the verdict and the placement with the
//! same code a review uses ([`Admission::desired`]), and patches them onto the Service. Knative
//! then rolls a new revision. The patch is a JSON patch guarded by a `test` of the
//! resourceVersion: an update in between wins, and is reviewed on its own.
//!
//! It runs in the webhook process: that process holds the image cache and the running read, and
//! already has the registries' configuration and the pull secrets' access. A replica that dies
//! before it writes leaves the Service at the default mode until its next update.

use std::sync::Arc;
use std::time::Duration;

use gaia_contract::{keys, ModeSource};
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::Value;
use tokio::sync::mpsc;
use tracing::{debug, info, info_span, warn, Instrument};

use crate::admission::Admission;
use crate::image::{user_image, FollowUp};

/// Field manager of the follow-up's writes.
pub const FIELD_MANAGER: &str = "gaia-webhook";
/// Tries per Service: waits of 1, 2, 4, ... s (about 8.5 minutes in all).
const ATTEMPTS: u32 = 10;

fn services(client: &Client, namespace: &str) -> Api<DynamicObject> {
    let ar = ApiResource {
        group: "serving.knative.dev".into(),
        version: "v1".into(),
        api_version: "serving.knative.dev/v1".into(),
        kind: "Service".into(),
        plural: "services".into(),
    };
    Api::namespaced_with(client.clone(), namespace, &ar)
}

/// Runs until the sender side is gone.
pub async fn run(
    admission: Arc<Admission>,
    client: Client,
    mut rx: mpsc::UnboundedReceiver<FollowUp>,
) {
    let mut pending: std::collections::HashSet<(String, String)> = Default::default();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(String, String)>();
    loop {
        tokio::select! {
            next = rx.recv() => {
                let Some(f) = next else { return };
                let key = (f.namespace.clone(), f.name.clone());
                if !pending.insert(key.clone()) {
                    continue; // already followed
                }
                let span = info_span!("follow_up", namespace = %f.namespace, name = %f.name);
                let (admission, client, done) = (Arc::clone(&admission), client.clone(), done_tx.clone());
                tokio::spawn(async move {
                    follow(&admission, &client, &f).await;
                    let _ = done.send(key);
                }.instrument(span));
            }
            Some(key) = done_rx.recv() => { pending.remove(&key); }
        }
    }
}

/// What to do with a Service as it is now.
#[derive(Debug, PartialEq)]
pub enum Step {
    /// Gone, changed image, or classified by someone else: nothing to do.
    Stop(&'static str),
    /// Still waiting for a source.
    Wait,
    /// Send this patch.
    Patch(json_patch::Patch),
}

/// Pure: the step for `service` (as read now) given what the follow-up was for and what the
/// webhook would now make of it.
pub fn step(
    service: &Value,
    f: &FollowUp,
    desired: Option<&(gaia_contract::Verdict, Value)>,
) -> Step {
    if user_image(service).map(|u| u.image) != Some(f.image.clone()) {
        return Step::Stop("the Service's image changed");
    }
    let annotations = service.pointer("/metadata/annotations");
    let current = annotations
        .and_then(|a| a.get(keys::MODE_SOURCE))
        .and_then(Value::as_str);
    let read_from = annotations
        .and_then(|a| a.get(keys::IMAGE_DIGEST))
        .and_then(Value::as_str);
    // A Service classified from a moved tag's old digest is classified again; one classified
    // from any other digest since (a newer review) is left alone.
    let stale = f.stale_digest.is_some() && read_from == f.stale_digest.as_deref();
    if f.stale_digest.is_some() && !stale {
        return Step::Stop("classified again since");
    }
    if !stale
        && current.is_some_and(|s| s != ModeSource::Default.as_str())
        && current != Some(ModeSource::User.as_str())
    {
        return Step::Stop("already classified");
    }
    let Some((verdict, mutated)) = desired else {
        return Step::Stop("not opted in");
    };
    if verdict.image_digest.is_none() || (stale && verdict.image_digest == f.stale_digest) {
        return Step::Wait;
    }
    let diff = json_patch::diff(service, mutated);
    if diff.0.is_empty() {
        return Step::Stop("already as wanted");
    }
    let Some(rv) = service.pointer("/metadata/resourceVersion").cloned() else {
        return Step::Patch(diff);
    };
    let mut ops = vec![json_patch::PatchOperation::Test(
        json_patch::TestOperation {
            path: json_patch::jsonptr::PointerBuf::parse("/metadata/resourceVersion")
                .unwrap_or_default(),
            value: rv,
        },
    )];
    ops.extend(diff.0);
    Step::Patch(json_patch::Patch(ops))
}

async fn follow(admission: &Admission, client: &Client, f: &FollowUp) {
    let api = services(client, &f.namespace);
    let budget = admission.config.image.limits.timeout + Duration::from_secs(1);
    debug!(why = %f.why, "following up");
    for attempt in 0..ATTEMPTS {
        tokio::time::sleep(Duration::from_secs(1 << attempt.min(8))).await;
        let service = match api.get_opt(&f.name).await {
            Ok(Some(s)) => match serde_json::to_value(&s) {
                Ok(v) => v,
                Err(_) => return,
            },
            Ok(None) => return,
            Err(e) => {
                warn!(error = %e, "Service not read; trying again");
                continue;
            }
        };
        let desired = admission.desired(&service, &f.namespace, budget).await;
        match step(&service, f, desired.as_ref()) {
            Step::Stop(why) => {
                debug!(why, "follow-up done");
                return;
            }
            Step::Wait => continue,
            Step::Patch(patch) => {
                let params = PatchParams::apply(FIELD_MANAGER);
                let params = PatchParams {
                    force: false,
                    ..params
                };
                match api.patch(&f.name, &params, &Patch::<()>::Json(patch)).await {
                    Ok(_) => {
                        if let Some((v, _)) = &desired {
                            info!(mode = %v.mode, origin = ?v.origin, "verdict written after the review");
                        }
                        return;
                    }
                    Err(e) => warn!(error = %e, "patch refused; trying again"),
                }
            }
        }
    }
    warn!("gave up: the image was not read");
}

#[cfg(test)]
mod tests {
    use super::*;
    use gaia_contract::{ExecutionMode, Verdict};
    use serde_json::json;

    fn svc(image: &str, source: &str) -> Value {
        json!({"metadata": {"name": "f", "resourceVersion": "7", "annotations": {"gaia.dev/mode-source": source}},
               "spec": {"template": {"spec": {"containers": [{"image": image}]}}}})
    }

    #[test]
    fn patches_only_what_it_followed_and_guards_the_version() {
        let f = FollowUp {
            namespace: "ns".into(),
            name: "f".into(),
            image: "reg/f:1".into(),
            why: String::new(),
            stale_digest: None,
        };
        let v = Verdict {
            mode: ExecutionMode::Gpu,
            source: ModeSource::Classifier,
            rationale: "r".into(),
            findings: None,
            digest: Some("sha256:s".into()),
            origin: Some("image:reg/f:1".into()),
            image_digest: Some("sha256:i".into()),
            gpu_memory_mib: None,
        };
        let s = svc("reg/f:1", "default");
        let mut wanted = s.clone();
        wanted["metadata"]["annotations"]["gaia.dev/mode"] = json!("gpu");
        let Step::Patch(p) = step(&s, &f, Some(&(v.clone(), wanted.clone()))) else {
            panic!("expected a patch")
        };
        let text = serde_json::to_string(&p).expect("json");
        assert!(
            text.starts_with(r#"[{"op":"test","path":"/metadata/resourceVersion","value":"7"}"#),
            "{text}"
        );
        assert_eq!(
            step(
                &svc("reg/f:2", "default"),
                &f,
                Some(&(v.clone(), wanted.clone()))
            ),
            Step::Stop("the Service's image changed")
        );
        assert_eq!(
            step(
                &svc("reg/f:1", "classifier"),
                &f,
                Some(&(v.clone(), wanted.clone()))
            ),
            Step::Stop("already classified")
        );
        let unread = Verdict {
            image_digest: None,
            gpu_memory_mib: None,
            ..v
        };
        assert_eq!(step(&s, &f, Some(&(unread, wanted))), Step::Wait);
    }

    #[test]
    fn a_service_classified_from_a_moved_tags_old_digest_is_classified_again() {
        let f = FollowUp {
            namespace: "ns".into(),
            name: "f".into(),
            image: "reg/f:1".into(),
            why: "the tag moved".into(),
            stale_digest: Some("sha256:old".into()),
        };
        let classified_from = |digest: &str| {
            let mut s = svc("reg/f:1", "classifier");
            s["metadata"]["annotations"]["gaia.dev/image-digest"] = json!(digest);
            s
        };
        let fresh = Verdict {
            mode: ExecutionMode::Gpu,
            source: ModeSource::Classifier,
            rationale: "r".into(),
            findings: None,
            digest: Some("sha256:s".into()),
            origin: Some("image:reg/f:1".into()),
            image_digest: Some("sha256:new".into()),
            gpu_memory_mib: None,
        };
        let old = classified_from("sha256:old");
        let mut wanted = old.clone();
        wanted["metadata"]["annotations"]["gaia.dev/image-digest"] = json!("sha256:new");
        wanted["metadata"]["annotations"]["gaia.dev/mode"] = json!("gpu");
        assert!(matches!(
            step(&old, &f, Some(&(fresh.clone(), wanted.clone()))),
            Step::Patch(_)
        ));
        // The webhook still answers from the old digest: wait for the new one.
        let same = Verdict {
            image_digest: Some("sha256:old".into()),
            gpu_memory_mib: None,
            ..fresh.clone()
        };
        assert_eq!(step(&old, &f, Some(&(same, wanted.clone()))), Step::Wait);
        // Reviewed again since, from the new digest (or another): left alone.
        assert_eq!(
            step(&classified_from("sha256:new"), &f, Some(&(fresh, wanted))),
            Step::Stop("classified again since")
        );
    }
}
