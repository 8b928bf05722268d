//! Acting on a decision: the patch that moves a Service, the memory it records, the Event.
//!
//! **Why a JSON patch and not server-side apply.** Knative's Service CRD declares
//! `spec.template.spec.containers` (and `tolerations`) without `x-kubernetes-list-type`, so for
//! server-side apply they are *atomic* lists: applying our one field
//! (`containers[user].resources.limits["nvidia.com/gpu"]`) would make us own the whole list —
//! a conflict with the user's manager, or, forced, a containers list with only our fields in it
//! (no image). So the move is a JSON patch computed as the diff between the Service as read and
//! the same Service passed through [`gaia_contract::apply_placement`] (the webhook's function),
//! plus our two metadata annotations, guarded by a `test` of `metadata.resourceVersion`: if
//! anyone changed the Service since we read it, the API server rejects the patch, we read it
//! again and, if what we decided from is unchanged, recompute the patch on the fresh object
//! (three tries). Only the paths we change are touched, so a concurrent user edit either
//! survives or makes us retry; it is never overwritten. The request carries the field manager
//! `gaia-autoscaler`, so managedFields show who changed what.

use std::future::Future;

use gaia_contract::{apply_placement, keys, Observed, Placement, PlacementProfiles, ServiceView};
use json_patch::jsonptr::PointerBuf;
use json_patch::{Patch, PatchOperation, TestOperation};
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Api, DynamicObject, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use serde_json::Value;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::cluster::service::{api_resource, ManagedService};
use crate::Error;
use gaia_policy::{Decision, MoveKind};

/// The patch that moves `object` to `to` and records `observed`.
pub fn move_patch(
    object: &Value,
    to: Placement,
    observed: &Observed,
    profiles: &PlacementProfiles,
) -> Result<Patch, gaia_contract::ContractError> {
    let mut modified = object.clone();
    apply_placement(&mut modified, to, profiles)?;
    set_annotation(&mut modified, keys::DESIRED_PLACEMENT, to.as_str());
    if let Some(a) = modified
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        a.remove(keys::LEGACY_PLACEMENT);
    }
    set_annotation(&mut modified, keys::OBSERVED, &observed.to_annotation());
    Ok(guarded(object, &modified))
}

/// The patch that only records `observed`.
pub fn remember_patch(object: &Value, observed: &Observed) -> Patch {
    let mut modified = object.clone();
    set_annotation(&mut modified, keys::OBSERVED, &observed.to_annotation());
    guarded(object, &modified)
}

fn set_annotation(object: &mut Value, key: &str, value: &str) {
    if !object.is_object() {
        return;
    }
    let meta = &mut object["metadata"];
    if !meta.is_object() {
        *meta = Value::Object(Default::default());
    }
    let ann = &mut meta["annotations"];
    if !ann.is_object() {
        *ann = Value::Object(Default::default());
    }
    ann[key] = Value::String(value.to_string());
}

/// The diff from `before` to `after`, preceded by a test of the resourceVersion of `before`.
fn guarded(before: &Value, after: &Value) -> Patch {
    let mut ops = Vec::new();
    if let Some(rv) = before.pointer("/metadata/resourceVersion") {
        ops.push(PatchOperation::Test(TestOperation {
            path: PointerBuf::from_tokens(["metadata", "resourceVersion"]),
            value: rv.clone(),
        }));
    }
    ops.extend(json_patch::diff(before, after).0);
    Patch(ops)
}

/// What a decision says in an Event: type, reason, action, and the note with the numbers.
pub fn event_for(decision: &Decision) -> Option<(EventType, &'static str, &'static str, String)> {
    match decision {
        Decision::Hold(_) => None,
        Decision::Move(m) => {
            let (t, reason, action) = match m.kind {
                MoveKind::Promote => (EventType::Normal, "PromotedToGpu", "Promote"),
                MoveKind::Demote => (EventType::Normal, "DemotedToCpu", "Demote"),
                MoveKind::Revert => (EventType::Normal, "RevertedToCpu", "Revert"),
                MoveKind::Rollback => (EventType::Warning, "RolledBack", "Rollback"),
            };
            Some((t, reason, action, m.note.clone()))
        }
        Decision::Remember { note, .. } => {
            Some((EventType::Normal, "GpuVerified", "Verify", note.clone()))
        }
        Decision::NoGpu { note, .. } => Some((
            EventType::Warning,
            "NoGpuAvailable",
            "Promote",
            note.clone(),
        )),
    }
}

/// Carries decisions out. The cycle is generic over it, so the benchmark and tests can count
/// instead of calling an API server.
pub trait Actuator: Sync {
    fn act(
        &self,
        svc: &ManagedService,
        decision: &Decision,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// A Warning Event about the Service itself (an unreadable annotation...).
    fn warn(
        &self,
        svc: &ManagedService,
        reason: &'static str,
        note: String,
    ) -> impl Future<Output = Result<(), Error>> + Send;
}

/// The real one: patches through the API server and records Events.
#[derive(Clone)]
pub struct KubeActuator {
    client: kube::Client,
    recorder: Recorder,
    profiles: PlacementProfiles,
    leading: watch::Receiver<bool>,
    dry_run: bool,
}

impl KubeActuator {
    pub fn new(
        client: kube::Client,
        instance: String,
        profiles: PlacementProfiles,
        leading: watch::Receiver<bool>,
        dry_run: bool,
    ) -> Self {
        let reporter = Reporter {
            controller: keys::AUTOSCALER_FIELD_MANAGER.into(),
            instance: Some(instance),
        };
        KubeActuator {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            profiles,
            leading,
            dry_run,
        }
    }

    fn api(&self, namespace: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), namespace, &api_resource())
    }

    /// Applies `build(current)`; on a failed precondition re-reads, checks that what the
    /// decision was made from is unchanged, and tries again.
    async fn patch_with_retry(
        &self,
        svc: &ManagedService,
        build: impl Fn(&Value) -> Result<Patch, Error>,
    ) -> Result<(), Error> {
        let api = self.api(&svc.namespace);
        let params = PatchParams {
            field_manager: Some(keys::AUTOSCALER_FIELD_MANAGER.into()),
            ..PatchParams::default()
        };
        let mut current = svc.object.clone();
        for _ in 0..3 {
            if !*self.leading.borrow() {
                return Err(Error::Leader("lost the lease before writing".into()));
            }
            let patch = build(&current)?;
            match api
                .patch(&svc.name, &params, &kube::api::Patch::Json::<()>(patch))
                .await
            {
                Ok(_) => return Ok(()),
                Err(kube::Error::Api(status)) if status.code == 409 || status.code == 422 => {
                    warn!(namespace = %svc.namespace, name = %svc.name, code = status.code,
                          message = %status.message, "Service changed under us, re-reading");
                    let fresh =
                        serde_json::to_value(api.get(&svc.name).await?).map_err(|source| {
                            Error::Serde {
                                what: "a Service",
                                source,
                            }
                        })?;
                    if decided_from(&fresh) != decided_from(&current) {
                        return Err(Error::Conflict {
                            namespace: svc.namespace.clone(),
                            name: svc.name.clone(),
                        });
                    }
                    current = fresh;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Conflict {
            namespace: svc.namespace.clone(),
            name: svc.name.clone(),
        })
    }

    async fn publish(
        &self,
        svc: &ManagedService,
        type_: EventType,
        reason: &'static str,
        action: &'static str,
        note: String,
    ) -> Result<(), Error> {
        let event = Event {
            type_,
            reason: reason.into(),
            note: Some(truncate(note, 1000)),
            action: action.into(),
            secondary: None,
        };
        self.recorder
            .publish(&event, &reference(svc))
            .await
            .map_err(Error::Kube)
    }
}

/// What a decision depends on in the object: the template's placement and our memory.
fn decided_from(object: &Value) -> (Option<Placement>, Option<Value>) {
    (
        ServiceView::new(object).placed_for(),
        object
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(keys::OBSERVED))
            .cloned(),
    )
}

fn reference(svc: &ManagedService) -> ObjectReference {
    ObjectReference {
        api_version: Some("serving.knative.dev/v1".into()),
        kind: Some("Service".into()),
        name: Some(svc.name.clone()),
        namespace: Some(svc.namespace.clone()),
        uid: svc.uid.clone(),
        ..ObjectReference::default()
    }
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

impl Actuator for KubeActuator {
    async fn act(&self, svc: &ManagedService, decision: &Decision) -> Result<(), Error> {
        let placement_error = |source| Error::Placement {
            namespace: svc.namespace.clone(),
            name: svc.name.clone(),
            source,
        };
        if self.dry_run {
            info!(namespace = %svc.namespace, name = %svc.name, decision = decision.kind(),
                  "dry run: not acting");
            return Ok(());
        }
        match decision {
            Decision::Hold(_) => return Ok(()),
            Decision::Move(m) => {
                self.patch_with_retry(svc, |obj| {
                    move_patch(obj, m.to, &m.observed, &self.profiles).map_err(placement_error)
                })
                .await?
            }
            Decision::Remember { observed, .. } => {
                self.patch_with_retry(svc, |obj| Ok(remember_patch(obj, observed)))
                    .await?
            }
            Decision::NoGpu { .. } => {}
        }
        if let Some((t, reason, action, note)) = event_for(decision) {
            // The move happened; a lost Event is logged, not retried.
            if let Err(e) = self.publish(svc, t, reason, action, note).await {
                warn!(namespace = %svc.namespace, name = %svc.name, error = %e, "Event not recorded");
            }
        }
        Ok(())
    }

    async fn warn(
        &self,
        svc: &ManagedService,
        reason: &'static str,
        note: String,
    ) -> Result<(), Error> {
        if self.dry_run {
            return Ok(());
        }
        self.publish(svc, EventType::Warning, reason, "Read", note)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ksvc() -> Value {
        json!({
            "apiVersion": "serving.knative.dev/v1", "kind": "Service",
            "metadata": {"name": "f", "namespace": "ns", "resourceVersion": "41",
                         "annotations": {"gaia.dev/mode": "cpu_preferred", "team": "ml"}},
            "spec": {"template": {
                "metadata": {"annotations": {"gaia.dev/placement": "cpu"}},
                "spec": {"containers": [{"name": "user", "image": "img:1",
                    "env": [{"name": "A", "value": "1"}],
                    "resources": {"limits": {"cpu": "2"}}}]}}},
            "status": {"latestReadyRevisionName": "f-00001"}
        })
    }

    #[test]
    fn move_patch_is_guarded_and_touches_only_placement_fields() {
        let before = ksvc();
        let observed = Observed {
            useless_promotions: 1,
            ..Observed::default()
        };
        let patch = move_patch(
            &before,
            Placement::Gpu,
            &observed,
            &PlacementProfiles::default(),
        )
        .unwrap();
        let PatchOperation::Test(t) = &patch.0[0] else {
            panic!("{patch:?}")
        };
        assert_eq!(t.path.as_str(), "/metadata/resourceVersion");
        assert_eq!(t.value, json!("41"));
        let paths: Vec<String> = patch.0[1..]
            .iter()
            .map(|op| match op {
                PatchOperation::Add(o) => o.path.to_string(),
                PatchOperation::Replace(o) => o.path.to_string(),
                PatchOperation::Remove(o) => o.path.to_string(),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        for p in &paths {
            assert!(
                p.starts_with("/metadata/annotations/gaia.dev~1")
                    || p == "/spec/template/metadata/annotations/gaia.dev~1placed-for"
                    // the legacy key, removed
                    || p == "/spec/template/metadata/annotations/gaia.dev~1placement"
                    || p.starts_with("/spec/template/spec/nodeSelector")
                    || p.starts_with("/spec/template/spec/tolerations")
                    || p.starts_with(
                        "/spec/template/spec/containers/0/resources/limits/nvidia.com~1gpu"
                    ),
                "unexpected path {p}"
            );
        }
        let mut after = before.clone();
        json_patch::patch(&mut after, &patch).unwrap();
        assert_eq!(
            after["metadata"]["annotations"]["gaia.dev/desired-placement"],
            "gpu"
        );
        assert_eq!(after["metadata"]["annotations"]["team"], "ml");
        assert_eq!(
            after["spec"]["template"]["spec"]["containers"][0]["image"],
            "img:1"
        );
        assert_eq!(
            after["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"],
            "2"
        );
        assert_eq!(ServiceView::new(&after).placed_for(), Some(Placement::Gpu));
        let read = Observed::from_annotation(
            after["metadata"]["annotations"]["gaia.dev/observed"].as_str(),
        )
        .unwrap();
        assert_eq!(read, observed);
    }

    #[test]
    fn a_concurrent_edit_fails_the_precondition() {
        let before = ksvc();
        let patch = remember_patch(&before, &Observed::default());
        let mut edited = before.clone();
        edited["metadata"]["resourceVersion"] = json!("42");
        edited["spec"]["template"]["spec"]["containers"][0]["image"] = json!("img:2");
        assert!(json_patch::patch(&mut edited, &patch).is_err());
    }

    #[test]
    fn every_acting_decision_has_an_event() {
        use gaia_policy::{Hold, Move};
        assert!(event_for(&Decision::Hold(Hold::WithinSlo)).is_none());
        let m = Decision::Move(Move {
            kind: MoveKind::Promote,
            from: Placement::Cpu,
            to: Placement::Gpu,
            note: "p95 900ms > SLO 500ms".into(),
            observed: Observed::default(),
        });
        let (t, reason, _, note) = event_for(&m).unwrap();
        assert_eq!((t, reason), (EventType::Normal, "PromotedToGpu"));
        assert!(note.contains("900ms"));
        let n = Decision::NoGpu {
            needed: 1,
            free: 0,
            note: "x".into(),
        };
        assert_eq!(event_for(&n).unwrap().0, EventType::Warning);
    }

    #[test]
    fn notes_are_truncated_on_a_char_boundary() {
        let s = truncate("é".repeat(600), 1000);
        assert!(s.len() <= 1003 && s.ends_with('…'));
    }
}
