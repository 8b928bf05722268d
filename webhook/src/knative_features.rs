//! Knative's `config-features`, as the webhook last read it: which pod-spec fields Knative's own
//! admission webhook accepts in a Service's template.
//!
//! A nodeSelector or tolerations that `config-features` leaves off make Knative reject the whole
//! Service (knative/serving#11388): injecting them would turn Gaia into the reason `kn service
//! create` fails. So the webhook reads the ConfigMap (a GET every `--knative-features-seconds`,
//! 30 by default) and, while a flag the placement needs is off, admits the
//! Service with its mode and rationale but without the placement, and says so in a warning.
//! Until the first read (or without the API) nothing is known and placements are injected as
//! always: an unreadable ConfigMap never holds a Service back.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use gaia_contract::placement::PlacementProfile;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Api, Client};
use tracing::{info, warn};

pub const KNATIVE_NAMESPACE: &str = "knative-serving";
pub const CONFIG_FEATURES: &str = "config-features";

/// `config-features`' data; `None` while unknown.
#[derive(Clone, Default)]
pub struct KnativeFeatures {
    data: Arc<RwLock<Option<BTreeMap<String, String>>>>,
}

impl KnativeFeatures {
    /// Unknown, and never read (no API): every placement is injected.
    pub fn none() -> KnativeFeatures {
        KnativeFeatures::default()
    }

    /// Known to be `data` (tests).
    pub fn fixed(data: BTreeMap<String, String>) -> KnativeFeatures {
        let f = KnativeFeatures::default();
        f.set(Some(data));
        f
    }

    /// Reads the ConfigMap now and every `every` after, on the current tokio runtime.
    pub fn poll(client: Client, every: Duration) -> KnativeFeatures {
        let features = KnativeFeatures::default();
        let writer = features.clone();
        let api: Api<ConfigMap> = Api::namespaced(client, KNATIVE_NAMESPACE);
        tokio::spawn(async move {
            let mut failing = false;
            loop {
                match api.get_opt(CONFIG_FEATURES).await {
                    Ok(cm) => {
                        if failing {
                            info!("{KNATIVE_NAMESPACE}/{CONFIG_FEATURES} readable again");
                        }
                        failing = false;
                        // No ConfigMap: Knative runs on its defaults (both flags Disabled).
                        writer.set(Some(cm.and_then(|c| c.data).unwrap_or_default()));
                    }
                    Err(e) => {
                        if !failing {
                            warn!(error = %e, "{KNATIVE_NAMESPACE}/{CONFIG_FEATURES} not read: the last data read is kept (none: placements are injected as configured)");
                        }
                        failing = true;
                    }
                }
                tokio::time::sleep(every).await;
            }
        });
        features
    }

    fn set(&self, data: Option<BTreeMap<String, String>>) {
        // A poisoned lock only means a panicking writer; its data is still a whole map.
        let mut guard = self.data.write().unwrap_or_else(|p| p.into_inner());
        *guard = data;
    }

    /// The flags `profile` needs that `config-features` leaves off (empty while unknown).
    pub fn flags_off(&self, profile: &PlacementProfile) -> Vec<&'static str> {
        let guard = self.data.read().unwrap_or_else(|p| p.into_inner());
        match guard.as_ref() {
            Some(data) => profile.knative_flags_off(data),
            None => Vec::new(),
        }
    }
}

/// The warning (and the rationale's note) for a placement not injected.
pub fn not_injected(flags: &[&str]) -> String {
    let patch = flags
        .iter()
        .map(|f| format!("\"{f}\":\"enabled\""))
        .collect::<Vec<_>>()
        .join(",");
    format!(
        "placement not injected: Knative's {CONFIG_FEATURES} does not enable {} (Knative would reject the Service); fix: kubectl apply -k manifests/knative-features, or kubectl patch configmap {CONFIG_FEATURES} -n {KNATIVE_NAMESPACE} --type merge -p '{{\"data\":{{{patch}}}}}'",
        flags.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use gaia_contract::placement::{PlacementProfiles, FEATURE_NODE_SELECTOR, FEATURE_TOLERATIONS};

    #[test]
    fn unknown_features_reject_nothing_known_ones_name_what_is_off() {
        let gpu = PlacementProfiles::default().gpu;
        assert!(KnativeFeatures::none().flags_off(&gpu).is_empty());
        let defaults = KnativeFeatures::fixed(BTreeMap::new());
        assert_eq!(
            defaults.flags_off(&gpu),
            vec![FEATURE_NODE_SELECTOR, FEATURE_TOLERATIONS]
        );
        let on = KnativeFeatures::fixed(BTreeMap::from([
            (FEATURE_NODE_SELECTOR.to_string(), "enabled".to_string()),
            (FEATURE_TOLERATIONS.to_string(), "Allowed".to_string()),
        ]));
        assert!(on.flags_off(&gpu).is_empty());
        let w = not_injected(&[FEATURE_TOLERATIONS]);
        assert!(
            w.contains("does not enable kubernetes.podspec-tolerations"),
            "{w}"
        );
        assert!(
            w.contains(r#"-p '{"data":{"kubernetes.podspec-tolerations":"enabled"}}'"#),
            "{w}"
        );
    }
}
