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

use gaia_contract::{
    apply_placement, apply_profile, keys, Observed, Placement, PlacementProfile, PlacementProfiles,
    ServiceView,
};
use json_patch::jsonptr::PointerBuf;
use json_patch::{Patch, PatchOperation, TestOperation};
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Api, DynamicObject, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use serde_json::Value;
use tracing::{info, warn};

use crate::cluster::service::{api_resource, ManagedService};
use crate::leader::Leadership;
use crate::Error;
use gaia_policy::ladder::{LadderConfig, LadderDecision, LadderMemory, LadderMoveKind};
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

/// The coarse placement of a rung: the first is the CPU, every other a GPU.
pub fn rung_placement(rung: usize) -> Placement {
    if rung == 0 {
        Placement::Cpu
    } else {
        Placement::Gpu
    }
}

/// The patch that moves `object` to rung `to` of `ladder` and records `memory`: the rung's
/// profile through [`apply_profile`] (what any rung's or either placement's profile owns is
/// removed first, so a move never leaves a whole GPU next to a slice), `gaia.dev/rung` and
/// `gaia.dev/placed-for` on the template, `gaia.dev/desired-placement` (`cpu` for the first
/// rung, `gpu` for the others) and `gaia.dev/ladder` on the metadata.
pub fn ladder_move_patch(
    object: &Value,
    ladder: &LadderConfig,
    to: usize,
    memory: &LadderMemory,
    profiles: &PlacementProfiles,
) -> Result<Patch, gaia_contract::ContractError> {
    let rung = ladder
        .rungs
        .get(to)
        .ok_or_else(|| gaia_contract::ContractError::InvalidProfile(format!("no rung {to}")))?;
    let mut owned: Vec<&PlacementProfile> = vec![&profiles.cpu, &profiles.gpu];
    owned.extend(ladder.rungs.iter().map(|r| &r.profile));
    let placement = rung_placement(to);
    let mut modified = object.clone();
    apply_profile(&mut modified, placement, &rung.profile, &owned)?;
    if let Some(a) = modified
        .pointer_mut("/spec/template/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        a.insert(keys::RUNG.into(), Value::String(rung.name.clone()));
    }
    set_annotation(&mut modified, keys::DESIRED_PLACEMENT, placement.as_str());
    if let Some(a) = modified
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        a.remove(keys::LEGACY_PLACEMENT);
    }
    set_annotation(&mut modified, keys::LADDER, &memory.to_annotation());
    Ok(guarded(object, &modified))
}

/// The patch that only records the ladder's `memory`.
pub fn ladder_remember_patch(object: &Value, memory: &LadderMemory) -> Patch {
    let mut modified = object.clone();
    set_annotation(&mut modified, keys::LADDER, &memory.to_annotation());
    guarded(object, &modified)
}

/// A ladder decision to carry out, with the note its Event carries (the rule's numbers and the
/// cost of 1,000 requests per rung).
#[derive(Debug, Clone, PartialEq)]
pub struct LadderAction {
    pub decision: LadderDecision,
    pub note: String,
}

/// What a ladder decision says in an Event: type, reason, action, and the note.
pub fn ladder_event_for(
    action: &LadderAction,
) -> Option<(EventType, &'static str, &'static str, String)> {
    let note = action.note.clone();
    match &action.decision {
        LadderDecision::Hold(_) => None,
        LadderDecision::Move(m) => {
            let (t, reason, verb) = match m.kind {
                LadderMoveKind::Promote => (EventType::Normal, "PromotedOnLadder", "Promote"),
                LadderMoveKind::Economize => (EventType::Normal, "EconomizedOnLadder", "Economize"),
                LadderMoveKind::Demote => (EventType::Normal, "DemotedOnLadder", "Demote"),
                LadderMoveKind::Revert => (EventType::Normal, "RevertedOnLadder", "Revert"),
                LadderMoveKind::Rollback => (EventType::Warning, "RolledBack", "Rollback"),
            };
            Some((t, reason, verb, note))
        }
        LadderDecision::Remember { .. } => {
            Some((EventType::Normal, "RungVerified", "Verify", note))
        }
        LadderDecision::NoCapacity { .. } => {
            Some((EventType::Warning, "NoRungCapacity", "Promote", note))
        }
    }
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

    /// Carries out a ladder decision (a placement ladder is configured). The default does
    /// nothing, for actuators that only know the two placements.
    fn act_ladder(
        &self,
        svc: &ManagedService,
        action: &LadderAction,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        let _ = (svc, action);
        async { Ok(()) }
    }

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
    ladder: Option<std::sync::Arc<LadderConfig>>,
    leading: Leadership,
    dry_run: bool,
}

impl KubeActuator {
    pub fn new(
        client: kube::Client,
        instance: String,
        profiles: PlacementProfiles,
        leading: Leadership,
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
            ladder: None,
            leading,
            dry_run,
        }
    }

    /// Acts on ladder decisions with `ladder`'s rungs.
    pub fn with_ladder(mut self, ladder: Option<std::sync::Arc<LadderConfig>>) -> Self {
        self.ladder = ladder;
        self
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
            if !self.leading.is_leading() {
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

/// What a decision depends on in the object: the template's placement (and rung) and our
/// memory (and the ladder's).
fn decided_from(
    object: &Value,
) -> (
    Option<Placement>,
    Option<Value>,
    Option<Value>,
    Option<Value>,
) {
    let meta = |k: &str| {
        object
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(k))
            .cloned()
    };
    (
        ServiceView::new(object).placed_for(),
        meta(keys::OBSERVED),
        object
            .pointer("/spec/template/metadata/annotations")
            .and_then(|a| a.get(keys::RUNG))
            .cloned(),
        meta(keys::LADDER),
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

    async fn act_ladder(&self, svc: &ManagedService, action: &LadderAction) -> Result<(), Error> {
        if self.dry_run {
            info!(namespace = %svc.namespace, name = %svc.name, decision = action.decision.kind(),
                  "dry run: not acting");
            return Ok(());
        }
        let Some(ladder) = self.ladder.as_deref() else {
            return Err(Error::config(
                "ladder",
                "a ladder decision without a ladder",
            ));
        };
        match &action.decision {
            LadderDecision::Hold(_) => return Ok(()),
            LadderDecision::Move(m) => {
                self.patch_with_retry(svc, |obj| {
                    ladder_move_patch(obj, ladder, m.to, &m.memory, &self.profiles).map_err(
                        |source| Error::Placement {
                            namespace: svc.namespace.clone(),
                            name: svc.name.clone(),
                            source,
                        },
                    )
                })
                .await?
            }
            LadderDecision::Remember { memory, .. } => {
                self.patch_with_retry(svc, |obj| Ok(ladder_remember_patch(obj, memory)))
                    .await?
            }
            LadderDecision::NoCapacity { .. } => {}
        }
        if let Some((t, reason, verb, note)) = ladder_event_for(action) {
            if let Err(e) = self.publish(svc, t, reason, verb, note).await {
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
    fn a_ladder_move_places_the_rung_and_records_it() {
        let ladder = LadderConfig::cpu_shared_gpu(143_771.0, 7);
        let profiles = PlacementProfiles::default();
        let before = ksvc();
        let memory = LadderMemory {
            useless_promotions: 1,
            ..LadderMemory::default()
        };
        let patch = ladder_move_patch(&before, &ladder, 1, &memory, &profiles).unwrap();
        let PatchOperation::Test(t) = &patch.0[0] else {
            panic!("{patch:?}")
        };
        assert_eq!(t.value, json!("41"));
        let mut after = before.clone();
        json_patch::patch(&mut after, &patch).unwrap();
        let ann = &after["metadata"]["annotations"];
        assert_eq!(ann["gaia.dev/desired-placement"], "gpu");
        assert_eq!(ann["team"], "ml");
        let read = LadderMemory::from_annotation(ann["gaia.dev/ladder"].as_str()).unwrap();
        assert_eq!(read, memory);
        let tmpl = &after["spec"]["template"];
        assert_eq!(
            tmpl["metadata"]["annotations"]["gaia.dev/rung"],
            "gpu-shared"
        );
        assert_eq!(
            tmpl["metadata"]["annotations"]["gaia.dev/placed-for"],
            "gpu"
        );
        let limits = &tmpl["spec"]["containers"][0]["resources"]["limits"];
        assert_eq!(limits["nvidia.com/gpu.shared"], "1");
        assert!(limits.get("nvidia.com/gpu").is_none(), "{limits}");
        assert_eq!(limits["cpu"], "2");
        assert_eq!(
            tmpl["spec"]["nodeSelector"]["nvidia.com/gpu.present"],
            "true"
        );
        let m = ManagedService::from_value(after.clone(), "nvidia.com/gpu").unwrap();
        assert_eq!((m.rung_in(&ladder), m.placement), (1, Placement::Gpu));
        // the webhook, re-placing on the UPDATE with its two profiles, leaves the slice alone
        let mut webhooked = after.clone();
        apply_placement(&mut webhooked, Placement::Gpu, &profiles).unwrap();
        assert_eq!(webhooked, after);
        // up to the whole GPU: the slice goes, one GPU comes
        after["metadata"]["resourceVersion"] = json!("42");
        let patch = ladder_move_patch(&after, &ladder, 2, &memory, &profiles).unwrap();
        let mut whole = after.clone();
        json_patch::patch(&mut whole, &patch).unwrap();
        let limits = &whole["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"];
        assert_eq!(limits["nvidia.com/gpu"], "1");
        assert!(limits.get("nvidia.com/gpu.shared").is_none(), "{limits}");
        // down to the CPU: nothing of any GPU rung is left
        let patch = ladder_move_patch(&whole, &ladder, 0, &memory, &profiles).unwrap();
        let mut cpu = whole.clone();
        json_patch::patch(&mut cpu, &patch).unwrap();
        assert_eq!(
            cpu["metadata"]["annotations"]["gaia.dev/desired-placement"],
            "cpu"
        );
        let spec = &cpu["spec"]["template"]["spec"];
        assert!(spec.get("nodeSelector").is_none() && spec.get("tolerations").is_none());
        assert_eq!(
            spec["containers"][0]["resources"]["limits"],
            json!({"cpu": "2"})
        );
        assert_eq!(
            cpu["spec"]["template"]["metadata"]["annotations"]["gaia.dev/rung"],
            "cpu"
        );
        // a patch of the memory only
        let patch = ladder_remember_patch(&before, &memory);
        let mut remembered = before.clone();
        json_patch::patch(&mut remembered, &patch).unwrap();
        assert_eq!(remembered["spec"], before["spec"]);
    }

    #[test]
    fn every_acting_ladder_decision_has_an_event_with_its_note() {
        use gaia_policy::ladder::RungChange;
        use gaia_policy::Hold;
        let a = |decision| LadderAction {
            decision,
            note: "p95 40ms; cost per 1,000 requests: cpu $0.0076 (measured)".into(),
        };
        assert!(ladder_event_for(&a(LadderDecision::Hold(Hold::WithinSlo))).is_none());
        let m = a(LadderDecision::Move(RungChange {
            kind: LadderMoveKind::Economize,
            from: 0,
            to: 1,
            note: String::new(),
            memory: LadderMemory::default(),
        }));
        let (t, reason, _, note) = ladder_event_for(&m).unwrap();
        assert_eq!((t, reason), (EventType::Normal, "EconomizedOnLadder"));
        assert!(note.contains("cost per 1,000 requests"), "{note}");
        let n = a(LadderDecision::NoCapacity {
            rung: 1,
            note: String::new(),
        });
        assert_eq!(ladder_event_for(&n).unwrap().1, "NoRungCapacity");
    }

    #[test]
    fn notes_are_truncated_on_a_char_boundary() {
        let s = truncate("é".repeat(600), 1000);
        assert!(s.len() <= 1003 && s.ends_with('…'));
    }
}
