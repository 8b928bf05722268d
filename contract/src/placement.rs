//! Placement profiles and the one function that applies a placement to a Knative Service.
//!
//! The webhook (at admission) and the autoscaler (when it moves a Service) both call
//! [`apply_placement`], so a template placed on GPU looks the same whoever placed it.
//!
//! What a profile owns: the nodeSelector keys, tolerations and user-container limits it names.
//! Applying placement P removes what *any* profile owns and then adds P's, so the user's own
//! selectors, tolerations and limits survive a move, and moving back and forth never accumulates
//! anything. Applying the same placement twice changes nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{keys, ContractError, Placement};

/// A Kubernetes toleration, as written in a placement profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Toleration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub toleration_seconds: Option<i64>,
}

impl Toleration {
    /// Whether this toleration tolerates a node's taint, by Kubernetes' rules: an effect, when
    /// given, must be the taint's; an empty key tolerates every taint only with `Exists`;
    /// otherwise the key must match, and the value too unless the operator is `Exists`.
    pub fn tolerates(&self, key: &str, value: &str, effect: &str) -> bool {
        let own_key = self.key.as_deref().unwrap_or_default();
        let exists = self.operator.as_deref() == Some("Exists");
        if !self.effect.as_deref().unwrap_or_default().is_empty()
            && self.effect.as_deref() != Some(effect)
        {
            return false;
        }
        if own_key.is_empty() {
            return exists;
        }
        own_key == key && (exists || self.value.as_deref().unwrap_or_default() == value)
    }

    fn matches(&self, v: &Value) -> bool {
        serde_json::from_value::<Toleration>(v.clone()).is_ok_and(|t| &t == self)
    }
}

/// What a placement changes in a revision template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlacementProfile {
    /// Added to `spec.template.spec.nodeSelector`.
    #[serde(default)]
    pub node_selector: BTreeMap<String, String>,
    /// Added to `spec.template.spec.tolerations`.
    #[serde(default)]
    pub tolerations: Vec<Toleration>,
    /// Added to the user container's `resources.limits` (e.g. `nvidia.com/gpu: "1"`).
    #[serde(default)]
    pub limits: BTreeMap<String, String>,
    /// The pool's nodes appear on demand (Karpenter, the cluster autoscaler): a pod that no
    /// node can take now is Pending until one joins. Then "no free GPU" is no reason not to
    /// move there; the revision gets Knative's progress deadline `nodeJoinDeadline`, and the
    /// autoscaler rolls back (and backs off) when it is not ready by then.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub elastic: bool,
    /// How long a node of an elastic pool may take to join and run the pod (default 10m).
    #[serde(
        default = "default_node_join_deadline",
        with = "crate::duration::serde_duration",
        skip_serializing_if = "is_default_node_join_deadline"
    )]
    pub node_join_deadline: Duration,
}

impl Default for PlacementProfile {
    fn default() -> Self {
        PlacementProfile {
            node_selector: BTreeMap::new(),
            tolerations: Vec::new(),
            limits: BTreeMap::new(),
            elastic: false,
            node_join_deadline: DEFAULT_NODE_JOIN_DEADLINE,
        }
    }
}

/// `nodeJoinDeadline` when not given: Knative's own default progress deadline.
pub const DEFAULT_NODE_JOIN_DEADLINE: Duration = Duration::from_secs(600);

fn default_node_join_deadline() -> Duration {
    DEFAULT_NODE_JOIN_DEADLINE
}

fn is_default_node_join_deadline(d: &Duration) -> bool {
    *d == DEFAULT_NODE_JOIN_DEADLINE
}

/// Knative's `config-features` flags for the pod-spec fields a profile injects.
pub const FEATURE_NODE_SELECTOR: &str = "kubernetes.podspec-nodeselector";
pub const FEATURE_TOLERATIONS: &str = "kubernetes.podspec-tolerations";

/// Whether `config-features` (its data) lets Knative's webhook accept the field behind `flag`:
/// `Enabled` or `Allowed`, in any case (Knative's `asFlag`; a missing or unknown value leaves
/// the default, `Disabled`, for both flags Gaia needs).
pub fn knative_feature_on(features: &BTreeMap<String, String>, flag: &str) -> bool {
    features.get(flag).is_some_and(|v| {
        let v = v.trim();
        v.eq_ignore_ascii_case("enabled") || v.eq_ignore_ascii_case("allowed")
    })
}

impl PlacementProfile {
    /// The `config-features` flags this profile needs: Knative's webhook rejects a
    /// nodeSelector or tolerations unless their flag is on (knative/serving#11388).
    pub fn knative_flags(&self) -> Vec<&'static str> {
        let mut flags = Vec::new();
        if !self.node_selector.is_empty() {
            flags.push(FEATURE_NODE_SELECTOR);
        }
        if !self.tolerations.is_empty() {
            flags.push(FEATURE_TOLERATIONS);
        }
        flags
    }

    /// Those of [`Self::knative_flags`] that `features` (`config-features`' data; empty:
    /// Knative's defaults) leaves off: what Knative would reject.
    pub fn knative_flags_off(&self, features: &BTreeMap<String, String>) -> Vec<&'static str> {
        self.knative_flags()
            .into_iter()
            .filter(|f| !knative_feature_on(features, f))
            .collect()
    }

    /// The progress deadline a revision placed with this profile gets (`elastic` only), as
    /// Knative reads it (`600s`).
    pub fn progress_deadline(&self) -> Option<String> {
        self.elastic
            .then(|| format!("{}s", self.node_join_deadline.as_secs().max(1)))
    }
}

/// The two placement profiles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlacementProfiles {
    pub cpu: PlacementProfile,
    pub gpu: PlacementProfile,
}

/// NVIDIA's GPU operator: nodes labelled by GPU feature discovery, tainted NoSchedule, GPUs as
/// the extended resource `nvidia.com/gpu`.
pub const GPU_RESOURCE: &str = "nvidia.com/gpu";
pub const GPU_PRESENT_LABEL: &str = "nvidia.com/gpu.present";

impl Default for PlacementProfiles {
    fn default() -> Self {
        PlacementProfiles {
            cpu: PlacementProfile::default(),
            gpu: PlacementProfile {
                node_selector: BTreeMap::from([(GPU_PRESENT_LABEL.into(), "true".into())]),
                tolerations: vec![Toleration {
                    key: Some(GPU_RESOURCE.into()),
                    operator: Some("Exists".into()),
                    value: None,
                    effect: Some("NoSchedule".into()),
                    toleration_seconds: None,
                }],
                limits: BTreeMap::from([(GPU_RESOURCE.into(), "1".into())]),
                ..PlacementProfile::default()
            },
        }
    }
}

impl PlacementProfiles {
    pub fn get(&self, placement: Placement) -> &PlacementProfile {
        match placement {
            Placement::Cpu => &self.cpu,
            Placement::Gpu => &self.gpu,
        }
    }

    /// Checks what a config file cannot express in types. Errors name the bad field.
    pub fn validate(&self) -> Result<(), ContractError> {
        for p in [Placement::Cpu, Placement::Gpu] {
            let profile = self.get(p);
            for (k, v) in &profile.node_selector {
                if k.is_empty() {
                    return Err(ContractError::InvalidProfile(format!(
                        "placement.{p}.nodeSelector has an empty key"
                    )));
                }
                if v.len() > 63 {
                    return Err(ContractError::InvalidProfile(format!(
                        "placement.{p}.nodeSelector.{k}: value longer than 63 characters"
                    )));
                }
            }
            for (k, v) in &profile.limits {
                if k.is_empty() || v.trim().is_empty() {
                    return Err(ContractError::InvalidProfile(format!(
                        "placement.{p}.limits.{k}: empty resource name or quantity"
                    )));
                }
            }
            if profile.elastic && profile.node_join_deadline < Duration::from_secs(1) {
                return Err(ContractError::InvalidProfile(format!(
                    "placement.{p}.nodeJoinDeadline: must be at least 1s"
                )));
            }
            for (i, t) in profile.tolerations.iter().enumerate() {
                match t.operator.as_deref() {
                    None | Some("Equal") | Some("Exists") => {}
                    Some(op) => {
                        return Err(ContractError::InvalidProfile(format!(
                            "placement.{p}.tolerations[{i}].operator: {op:?} is not Equal or Exists"
                        )))
                    }
                }
            }
        }
        Ok(())
    }

    fn all(&self) -> [&PlacementProfile; 2] {
        [&self.cpu, &self.gpu]
    }
}

/// Rewrites a Knative Service (as JSON) so its revision template runs on `placement`.
///
/// Sets `gaia.dev/placed-for` on `spec.template.metadata` (dropping the legacy
/// `gaia.dev/placement` there), and on the template's pod spec removes
/// what any profile owns, then adds `placement`'s profile: nodeSelector entries, tolerations, and
/// limits on the user container (the one that declares ports, else the first). Extended resources
/// (names with a `/`) owned by a profile are also dropped from requests, because Kubernetes
/// requires their requests to equal their limits.
pub fn apply_placement(
    service: &mut Value,
    placement: Placement,
    profiles: &PlacementProfiles,
) -> Result<(), ContractError> {
    // A template the autoscaler placed on a rung of its ladder (`gaia.dev/rung`) for this same
    // coarse placement keeps the rung's profile: the two profiles here do not know the rung's
    // resource (`nvidia.com/gpu.shared`...), and re-placing it would add a whole GPU next to it.
    if placed_on_a_rung_for(service, placement) {
        if let Some(a) = service
            .pointer_mut("/spec/template/metadata/annotations")
            .and_then(Value::as_object_mut)
        {
            a.remove(keys::LEGACY_PLACEMENT);
        }
        return Ok(());
    }
    let owned = profiles.all();
    apply_profile(service, placement, profiles.get(placement), &owned)
}

/// True when the template carries `gaia.dev/rung` and was placed for `placement`.
fn placed_on_a_rung_for(service: &Value, placement: Placement) -> bool {
    let Some(a) = service.pointer("/spec/template/metadata/annotations") else {
        return false;
    };
    let rung = a
        .get(keys::RUNG)
        .and_then(Value::as_str)
        .is_some_and(|r| !r.trim().is_empty());
    let placed = a
        .get(keys::PLACED_FOR)
        .and_then(Value::as_str)
        .and_then(|p| p.parse::<Placement>().ok());
    rung && placed == Some(placement) && service.pointer("/spec/template/spec/containers").is_some()
}

/// Rewrites the template for `target`, recorded as `placed_for`: first removes what any of
/// `owned` owns (nodeSelector keys, tolerations, user-container limits), then adds `target`'s.
/// [`apply_placement`] is this with the two profiles; the autoscaler's ladder calls it with the
/// rung's profile and every rung's (and both placement profiles') as `owned`, then records the
/// rung in `gaia.dev/rung`. Removes `gaia.dev/rung` from the template: a caller placing for a
/// rung writes it again.
pub fn apply_profile(
    service: &mut Value,
    placed_for: Placement,
    target: &PlacementProfile,
    owned: &[&PlacementProfile],
) -> Result<(), ContractError> {
    let placement = placed_for;
    let template = object_at(service, &["spec", "template"])?;
    let annotations = child_object(template, "metadata", "spec.template.metadata")?;
    let annotations = child_object(
        annotations,
        "annotations",
        "spec.template.metadata.annotations",
    )?;
    annotations.remove(keys::LEGACY_PLACEMENT);
    annotations.remove(keys::RUNG);
    annotations.insert(
        keys::PLACED_FOR.to_string(),
        Value::String(placement.as_str().to_string()),
    );
    // Knative's progress deadline: an elastic profile's is set; one an elastic profile set is
    // removed when moving away (a value of the user's own stays).
    let ours: Vec<String> = owned.iter().filter_map(|p| p.progress_deadline()).collect();
    if annotations
        .get(keys::KNATIVE_PROGRESS_DEADLINE)
        .and_then(Value::as_str)
        .is_some_and(|v| ours.iter().any(|o| o == v))
    {
        annotations.remove(keys::KNATIVE_PROGRESS_DEADLINE);
    }
    if let Some(deadline) = target.progress_deadline() {
        annotations.insert(
            keys::KNATIVE_PROGRESS_DEADLINE.to_string(),
            Value::String(deadline),
        );
    }

    let pod = match template.get_mut("spec") {
        Some(Value::Object(pod)) => pod,
        _ => return Err(ContractError::NoContainers),
    };

    // nodeSelector
    let mut selector = take_object(pod, "nodeSelector", "spec.template.spec.nodeSelector")?;
    for profile in owned {
        for key in profile.node_selector.keys() {
            selector.remove(key);
        }
    }
    for (k, v) in &target.node_selector {
        selector.insert(k.clone(), Value::String(v.clone()));
    }
    put_unless_empty(pod, "nodeSelector", Value::Object(selector));

    // tolerations
    let mut tolerations = match pod.remove("tolerations") {
        Some(Value::Array(list)) => list,
        None | Some(Value::Null) => Vec::new(),
        Some(_) => {
            return Err(ContractError::NotAnObject {
                path: "spec.template.spec.tolerations (expected a list)".into(),
            })
        }
    };
    tolerations.retain(|t| {
        !owned
            .iter()
            .any(|p| p.tolerations.iter().any(|o| o.matches(t)))
    });
    for t in &target.tolerations {
        tolerations.push(serde_json::to_value(t).unwrap_or(Value::Null));
    }
    put_unless_empty(pod, "tolerations", Value::Array(tolerations));

    // the user container's resources
    let containers = match pod.get_mut("containers") {
        Some(Value::Array(c)) if !c.is_empty() => c,
        _ => return Err(ContractError::NoContainers),
    };
    let index = user_container_index(containers);
    let container = match &mut containers[index] {
        Value::Object(c) => c,
        _ => {
            return Err(ContractError::NotAnObject {
                path: format!("spec.template.spec.containers[{index}]"),
            })
        }
    };
    let mut resources = take_object(container, "resources", "resources")?;
    let mut limits = take_object(&mut resources, "limits", "resources.limits")?;
    let mut requests = take_object(&mut resources, "requests", "resources.requests")?;
    for profile in owned {
        for key in profile.limits.keys() {
            limits.remove(key);
            if key.contains('/') {
                requests.remove(key);
            }
        }
    }
    for (k, v) in &target.limits {
        limits.insert(k.clone(), Value::String(v.clone()));
    }
    put_unless_empty(&mut resources, "limits", Value::Object(limits));
    put_unless_empty(&mut resources, "requests", Value::Object(requests));
    put_unless_empty(container, "resources", Value::Object(resources));
    Ok(())
}

/// Index of the container that serves requests: the one declaring ports, else the first.
pub fn user_container_index(containers: &[Value]) -> usize {
    containers
        .iter()
        .position(|c| {
            c.get("ports")
                .and_then(Value::as_array)
                .is_some_and(|p| !p.is_empty())
        })
        .unwrap_or(0)
}

fn object_at<'a>(
    root: &'a mut Value,
    path: &[&str],
) -> Result<&'a mut Map<String, Value>, ContractError> {
    let mut here = match root {
        Value::Object(m) => m,
        _ => {
            return Err(ContractError::NotAnObject {
                path: "the Service".into(),
            })
        }
    };
    let mut walked = String::new();
    for key in path {
        if !walked.is_empty() {
            walked.push('.');
        }
        walked.push_str(key);
        here = child_object(here, key, &walked)?;
    }
    Ok(here)
}

/// The object under `key`, created when missing or null.
fn child_object<'a>(
    parent: &'a mut Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<&'a mut Map<String, Value>, ContractError> {
    let slot = parent
        .entry(key.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    match slot {
        Value::Object(m) => Ok(m),
        _ => Err(ContractError::NotAnObject { path: path.into() }),
    }
}

/// Removes and returns the object under `key` (empty when missing or null).
fn take_object(
    parent: &mut Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Map<String, Value>, ContractError> {
    match parent.remove(key) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m),
        Some(other) => {
            parent.insert(key.to_string(), other);
            Err(ContractError::NotAnObject { path: path.into() })
        }
    }
}

fn put_unless_empty(parent: &mut Map<String, Value>, key: &str, value: Value) {
    let empty = match &value {
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    };
    if !empty {
        parent.insert(key.to_string(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_flags_a_profile_needs_and_which_config_features_leaves_off() {
        let p = PlacementProfiles::default();
        assert_eq!(p.cpu.knative_flags(), Vec::<&str>::new());
        assert_eq!(
            p.gpu.knative_flags(),
            vec![FEATURE_NODE_SELECTOR, FEATURE_TOLERATIONS]
        );
        let data = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        // Knative's defaults (no data): both off
        assert_eq!(p.gpu.knative_flags_off(&data(&[])), p.gpu.knative_flags());
        for on in ["enabled", "Enabled", "ALLOWED", " allowed "] {
            let d = data(&[(FEATURE_NODE_SELECTOR, on), (FEATURE_TOLERATIONS, on)]);
            assert!(p.gpu.knative_flags_off(&d).is_empty(), "{on:?}");
        }
        for off in ["disabled", "Disabled", "yes", ""] {
            let d = data(&[
                (FEATURE_NODE_SELECTOR, "enabled"),
                (FEATURE_TOLERATIONS, off),
            ]);
            assert_eq!(
                p.gpu.knative_flags_off(&d),
                vec![FEATURE_TOLERATIONS],
                "{off:?}"
            );
        }
        // a profile that injects nothing gated is never rejected
        assert!(p.cpu.knative_flags_off(&data(&[])).is_empty());
    }

    fn service() -> Value {
        json!({
            "apiVersion": "serving.knative.dev/v1",
            "kind": "Service",
            "metadata": {"name": "f", "namespace": "default"},
            "spec": {"template": {"spec": {
                "nodeSelector": {"topology.kubernetes.io/zone": "a"},
                "tolerations": [{"key": "team", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}],
                "containers": [
                    {"name": "sidecar", "image": "s"},
                    {"name": "user", "image": "u", "ports": [{"containerPort": 8080}],
                     "resources": {"limits": {"memory": "1Gi"}, "requests": {"nvidia.com/gpu": "1", "cpu": "1"}}}
                ]
            }}}
        })
    }

    #[test]
    fn gpu_placement_adds_the_gpu_profile_and_keeps_user_settings() {
        let mut s = service();
        apply_placement(&mut s, Placement::Gpu, &PlacementProfiles::default()).unwrap();
        let pod = &s["spec"]["template"]["spec"];
        assert_eq!(pod["nodeSelector"]["nvidia.com/gpu.present"], "true");
        assert_eq!(pod["nodeSelector"]["topology.kubernetes.io/zone"], "a");
        assert_eq!(pod["tolerations"].as_array().unwrap().len(), 2);
        assert_eq!(pod["tolerations"][1]["key"], "nvidia.com/gpu");
        let user = &pod["containers"][1]["resources"];
        assert_eq!(user["limits"]["nvidia.com/gpu"], "1");
        assert_eq!(user["limits"]["memory"], "1Gi");
        assert!(pod["containers"][0].get("resources").is_none());
        assert_eq!(
            crate::ServiceView::new(&s).placed_for(),
            Some(Placement::Gpu)
        );
    }

    #[test]
    fn moving_back_to_cpu_removes_exactly_what_the_gpu_profile_added() {
        let original = service();
        let mut s = original.clone();
        let profiles = PlacementProfiles::default();
        apply_placement(&mut s, Placement::Gpu, &profiles).unwrap();
        apply_placement(&mut s, Placement::Cpu, &profiles).unwrap();
        let pod = &s["spec"]["template"]["spec"];
        assert_eq!(
            pod["nodeSelector"],
            original["spec"]["template"]["spec"]["nodeSelector"]
        );
        assert_eq!(
            pod["tolerations"],
            original["spec"]["template"]["spec"]["tolerations"]
        );
        let user = &pod["containers"][1]["resources"];
        assert!(user["limits"].get("nvidia.com/gpu").is_none());
        // a stale GPU request would still ask for a GPU: it goes too; cpu stays
        assert!(user["requests"].get("nvidia.com/gpu").is_none());
        assert_eq!(user["requests"]["cpu"], "1");
        assert_eq!(
            crate::ServiceView::new(&s).placed_for(),
            Some(Placement::Cpu)
        );
    }

    #[test]
    fn applying_twice_is_a_no_op() {
        let profiles = PlacementProfiles::default();
        for p in [Placement::Cpu, Placement::Gpu] {
            let mut once = service();
            apply_placement(&mut once, p, &profiles).unwrap();
            let mut twice = once.clone();
            apply_placement(&mut twice, p, &profiles).unwrap();
            assert_eq!(once, twice);
        }
    }

    #[test]
    fn creates_missing_parents_and_leaves_no_empty_objects() {
        let mut s = json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}});
        apply_placement(&mut s, Placement::Cpu, &PlacementProfiles::default()).unwrap();
        assert_eq!(
            s,
            json!({"spec": {"template": {
                "metadata": {"annotations": {"gaia.dev/placed-for": "cpu"}},
                "spec": {"containers": [{"image": "x"}]}
            }}})
        );
    }

    #[test]
    fn rejects_services_it_cannot_place() {
        let p = PlacementProfiles::default();
        assert_eq!(
            apply_placement(&mut json!({"spec": {}}), Placement::Gpu, &p),
            Err(ContractError::NoContainers)
        );
        assert_eq!(
            apply_placement(&mut json!({"spec": {"template": 3}}), Placement::Gpu, &p),
            Err(ContractError::NotAnObject {
                path: "spec.template".into()
            })
        );
        let mut bad = json!({"spec": {"template": {"spec": {"containers": [{"resources": "x"}]}}}});
        assert!(apply_placement(&mut bad, Placement::Gpu, &p).is_err());
    }

    #[test]
    fn a_cpu_pool_profile_is_applied_and_swapped_out() {
        let mut profiles = PlacementProfiles::default();
        profiles
            .cpu
            .node_selector
            .insert("gaia.dev/pool".into(), "cpu".into());
        let mut s = service();
        apply_placement(&mut s, Placement::Cpu, &profiles).unwrap();
        assert_eq!(
            s["spec"]["template"]["spec"]["nodeSelector"]["gaia.dev/pool"],
            "cpu"
        );
        apply_placement(&mut s, Placement::Gpu, &profiles).unwrap();
        assert!(s["spec"]["template"]["spec"]["nodeSelector"]
            .get("gaia.dev/pool")
            .is_none());
    }

    fn shared_rung() -> PlacementProfile {
        let mut p = PlacementProfiles::default().gpu;
        p.limits = BTreeMap::from([("nvidia.com/gpu.shared".into(), "1".into())]);
        p
    }

    #[test]
    fn a_rung_profile_replaces_every_owned_profile_and_the_webhook_keeps_it() {
        let profiles = PlacementProfiles::default();
        let shared = shared_rung();
        let owned = [&profiles.cpu, &profiles.gpu, &shared];
        let mut s = service();
        apply_placement(&mut s, Placement::Gpu, &profiles).unwrap();
        apply_profile(&mut s, Placement::Gpu, &shared, &owned).unwrap();
        s["spec"]["template"]["metadata"]["annotations"][keys::RUNG] = json!("gpu-shared");
        let limits = &s["spec"]["template"]["spec"]["containers"][1]["resources"]["limits"];
        assert_eq!(limits["nvidia.com/gpu.shared"], "1");
        assert!(limits.get("nvidia.com/gpu").is_none(), "{limits}");
        assert_eq!(limits["memory"], "1Gi");
        // the webhook re-places a Service on every UPDATE with its two profiles: a template on
        // a rung for the same coarse placement is left as it is (no whole GPU added)
        let before = s.clone();
        apply_placement(&mut s, Placement::Gpu, &profiles).unwrap();
        assert_eq!(s, before);
        // another placement is applied, and drops the rung's record
        apply_placement(&mut s, Placement::Cpu, &profiles).unwrap();
        assert!(s["spec"]["template"]["metadata"]["annotations"]
            .get(keys::RUNG)
            .is_none());
        // back to the CPU rung through the ladder: nothing of any rung is left
        let mut t = before.clone();
        apply_profile(&mut t, Placement::Cpu, &profiles.cpu, &owned).unwrap();
        let pod = &t["spec"]["template"]["spec"];
        let orig = service();
        assert_eq!(
            pod["nodeSelector"],
            orig["spec"]["template"]["spec"]["nodeSelector"]
        );
        assert_eq!(
            pod["tolerations"],
            orig["spec"]["template"]["spec"]["tolerations"]
        );
        assert!(pod["containers"][1]["resources"]["limits"]
            .get("nvidia.com/gpu.shared")
            .is_none());
    }

    #[test]
    fn validation_names_the_bad_field() {
        let mut profiles = PlacementProfiles::default();
        profiles.gpu.tolerations[0].operator = Some("Maybe".into());
        let err = profiles.validate().unwrap_err().to_string();
        assert!(
            err.contains("placement.gpu.tolerations[0].operator"),
            "{err}"
        );
        assert!(PlacementProfiles::default().validate().is_ok());
    }

    fn elastic() -> PlacementProfiles {
        let mut p = PlacementProfiles::default();
        p.gpu.elastic = true;
        p.gpu.node_join_deadline = Duration::from_secs(480);
        p
    }

    #[test]
    fn an_elastic_profile_is_read_and_printed_only_when_set() {
        let p: PlacementProfile = serde_json::from_value(json!({
            "nodeSelector": {"nvidia.com/gpu.present": "true"},
            "elastic": true, "nodeJoinDeadline": "8m"
        }))
        .unwrap();
        assert!(p.elastic);
        assert_eq!(p.node_join_deadline, Duration::from_secs(480));
        assert_eq!(p.progress_deadline().as_deref(), Some("480s"));
        let fixed: PlacementProfile = serde_json::from_value(json!({})).unwrap();
        assert!(!fixed.elastic && fixed.progress_deadline().is_none());
        assert_eq!(fixed.node_join_deadline, DEFAULT_NODE_JOIN_DEADLINE);
        // today's profiles print as before
        let text = serde_json::to_string(&PlacementProfiles::default()).unwrap();
        assert!(
            !text.contains("elastic") && !text.contains("nodeJoinDeadline"),
            "{text}"
        );
        let err = serde_json::from_value::<PlacementProfile>(json!({"nodeJoinDeadline": "soon"}))
            .unwrap_err()
            .to_string();
        assert!(err.contains("soon"), "{err}");
        let mut zero = elastic();
        zero.gpu.node_join_deadline = Duration::ZERO;
        assert!(zero
            .validate()
            .unwrap_err()
            .to_string()
            .contains("nodeJoinDeadline"));
    }

    #[test]
    fn an_elastic_gpu_placement_sets_the_progress_deadline_and_a_move_back_removes_it() {
        let profiles = elastic();
        let mut s = service();
        apply_placement(&mut s, Placement::Gpu, &profiles).unwrap();
        let deadline = |s: &Value| {
            s.pointer("/spec/template/metadata/annotations")
                .and_then(|a| a.get(keys::KNATIVE_PROGRESS_DEADLINE))
                .cloned()
        };
        assert_eq!(deadline(&s), Some(json!("480s")));
        let again = s.clone();
        apply_placement(&mut s, Placement::Gpu, &profiles).unwrap();
        assert_eq!(s, again, "idempotent");
        apply_placement(&mut s, Placement::Cpu, &profiles).unwrap();
        assert_eq!(deadline(&s), None);
        // the user's own deadline is theirs on the CPU; on the elastic pool Gaia's applies
        s["spec"]["template"]["metadata"]["annotations"][keys::KNATIVE_PROGRESS_DEADLINE] =
            json!("120s");
        apply_placement(&mut s, Placement::Cpu, &profiles).unwrap();
        assert_eq!(deadline(&s), Some(json!("120s")));
        apply_placement(&mut s, Placement::Gpu, &profiles).unwrap();
        assert_eq!(deadline(&s), Some(json!("480s")));
        // a fixed pool never touches it
        let mut s = service();
        apply_placement(&mut s, Placement::Gpu, &PlacementProfiles::default()).unwrap();
        assert_eq!(deadline(&s), None);
    }
}
