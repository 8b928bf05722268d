//! What the webhook writes into an opted-in Service: pure functions, no I/O.
//!
//! - [`requested_mode`]: who is affected (opt-in) and what they asked for;
//! - [`effective`]: the mode, its source and the rationale, from the request and the analysis;
//! - [`reusable_prior`]: an UPDATE whose source did not change keeps its earlier analysis;
//! - [`mutate`]: the annotated, placed Service (the patch is the diff to the original).

use gaia_classifier::Classification;
use gaia_contract::findings::findings_annotation;
use gaia_contract::verdict::{one_line, MAX_RATIONALE_CHARS};
use gaia_contract::{
    apply_placement, keys, ContractError, ExecutionMode, ModeSource, Placement, PlacementProfiles,
    RequestedMode, ServiceView, Verdict,
};
use serde_json::{Map, Value};

/// What an opted-in Service asked for, or why the request is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum OptIn {
    /// Not opted in: leave it alone.
    No,
    Yes(RequestedMode),
    /// `gaia.dev/execution-mode` has a value Gaia does not know.
    Invalid(String),
}

/// The Service's own annotation wins over its template's; a labelled namespace means `auto`.
pub fn requested_mode(service: &Value, namespace_opted_in: bool) -> OptIn {
    match ServiceView::new(service).requested_mode() {
        Some(Ok(m)) => OptIn::Yes(m),
        Some(Err(why)) => OptIn::Invalid(why),
        None if namespace_opted_in => OptIn::Yes(RequestedMode::Auto),
        None => OptIn::No,
    }
}

/// The outcome of looking at the function's code.
#[derive(Debug, Clone)]
pub enum Analysis<'a> {
    Classified(&'a Classification),
    /// No source was found.
    NoSource,
    /// Source was found but could not be classified (too large, timeout, ...).
    Failed(String),
}

/// Combines what the user asked for with what the analysis found.
pub fn effective(
    requested: RequestedMode,
    analysis: Analysis<'_>,
    digest: Option<String>,
    default_mode: ExecutionMode,
) -> Verdict {
    let findings = match &analysis {
        Analysis::Classified(c) => findings_annotation(&c.findings),
        _ => None,
    };
    let (mode, source, rationale) = match (requested, analysis) {
        (RequestedMode::Explicit(m), Analysis::Classified(c)) => (
            m,
            ModeSource::User,
            format!(
                "set by the user ({}: {m}); the classifier would choose {}: {}",
                keys::EXECUTION_MODE,
                c.mode,
                c.rationale
            ),
        ),
        (RequestedMode::Explicit(m), Analysis::NoSource) => (
            m,
            ModeSource::User,
            format!(
                "set by the user ({}: {m}); no source available",
                keys::EXECUTION_MODE
            ),
        ),
        (RequestedMode::Explicit(m), Analysis::Failed(why)) => (
            m,
            ModeSource::User,
            format!(
                "set by the user ({}: {m}); source not classified: {why}",
                keys::EXECUTION_MODE
            ),
        ),
        (RequestedMode::Auto, Analysis::Classified(c)) => {
            (c.mode, ModeSource::Classifier, c.rationale.clone())
        }
        (RequestedMode::Auto, Analysis::NoSource) => (
            default_mode,
            ModeSource::Default,
            "no source available".to_string(),
        ),
        (RequestedMode::Auto, Analysis::Failed(why)) => (
            default_mode,
            ModeSource::Default,
            format!("source not classified ({why}); default mode"),
        ),
    };
    Verdict {
        mode,
        source,
        rationale: one_line(&rationale, MAX_RATIONALE_CHARS),
        findings,
        digest,
        origin: None,
        image_digest: None,
    }
}

/// The verdict already on the Service (or its previous version), if it can be kept as it is:
/// same source digest and the same request. Saves re-analysing every unrelated UPDATE.
pub fn reusable_prior(
    service: &Value,
    old: Option<&Value>,
    digest: &str,
    requested: RequestedMode,
) -> Option<Verdict> {
    let prior = [Some(service), old]
        .into_iter()
        .flatten()
        .find_map(|s| ServiceView::new(s).verdict())?;
    if prior.digest.as_deref() != Some(digest) {
        return None;
    }
    // The annotations are the user's to write: a rationale the webhook could not have written
    // (several lines, over the limit) is not kept but derived again (found by fuzzing).
    if one_line(&prior.rationale, MAX_RATIONALE_CHARS) != prior.rationale {
        return None;
    }
    let same_request = match requested {
        RequestedMode::Auto => prior.source == ModeSource::Classifier,
        RequestedMode::Explicit(m) => prior.source == ModeSource::User && prior.mode == m,
    };
    same_request.then_some(prior)
}

/// Where the Service runs: pinned modes decide; otherwise the autoscaler's choice on the
/// Service metadata is kept; otherwise the mode's initial placement.
pub fn placement_for(service: &Value, mode: ExecutionMode) -> Placement {
    if mode.is_pinned() {
        return mode.initial_placement();
    }
    ServiceView::new(service)
        .desired_placement()
        .unwrap_or_else(|| mode.initial_placement())
}

/// The Service as the webhook wants it: verdict annotations on its metadata, and its template
/// placed. Annotations the verdict does not have are removed, so stale ones do not linger.
pub fn mutate(
    service: &Value,
    verdict: &Verdict,
    profiles: &PlacementProfiles,
) -> Result<Value, ContractError> {
    let mut out = service.clone();
    {
        let root = out
            .as_object_mut()
            .ok_or_else(|| ContractError::NotAnObject {
                path: "the Service".into(),
            })?;
        let meta = object_entry(root, "metadata")?;
        let annotations = object_entry(meta, "annotations")?;
        let mut set = |k: &str, v: Option<&str>| match v {
            Some(v) => {
                annotations.insert(k.to_string(), Value::String(v.to_string()));
            }
            None => {
                annotations.remove(k);
            }
        };
        set(keys::MODE, Some(verdict.mode.as_str()));
        set(keys::MODE_SOURCE, Some(verdict.source.as_str()));
        set(keys::RATIONALE, Some(&verdict.rationale));
        set(keys::FINDINGS, verdict.findings.as_deref());
        set(keys::SOURCE_DIGEST, verdict.digest.as_deref());
        set(keys::SOURCE_ORIGIN, verdict.origin.as_deref());
        set(keys::IMAGE_DIGEST, verdict.image_digest.as_deref());
    }
    let placement = placement_for(&out, verdict.mode);
    apply_placement(&mut out, placement, profiles)?;
    Ok(out)
}

fn object_entry<'a>(
    parent: &'a mut Map<String, Value>,
    key: &str,
) -> Result<&'a mut Map<String, Value>, ContractError> {
    let slot = parent
        .entry(key.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut()
        .ok_or_else(|| ContractError::NotAnObject {
            path: format!("metadata.{key}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc(annotations: Value) -> Value {
        json!({"metadata": {"name": "f", "annotations": annotations},
               "spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}})
    }

    #[test]
    fn opt_in_by_annotation_or_namespace_label_only() {
        assert_eq!(requested_mode(&svc(json!({})), false), OptIn::No);
        assert_eq!(
            requested_mode(&svc(json!({})), true),
            OptIn::Yes(RequestedMode::Auto)
        );
        assert_eq!(
            requested_mode(&svc(json!({"gaia.dev/execution-mode": "gpu"})), false),
            OptIn::Yes(RequestedMode::Explicit(ExecutionMode::Gpu))
        );
        let templ = json!({"spec": {"template": {"metadata": {"annotations": {"gaia.dev/execution-mode": "auto"}}}}});
        assert_eq!(
            requested_mode(&templ, false),
            OptIn::Yes(RequestedMode::Auto)
        );
        assert!(matches!(
            requested_mode(&svc(json!({"gaia.dev/execution-mode": "fast"})), true),
            OptIn::Invalid(m) if m.contains("fast")
        ));
    }

    #[test]
    fn pinned_modes_ignore_the_autoscalers_placement() {
        let s = svc(json!({"gaia.dev/desired-placement": "gpu"}));
        assert_eq!(placement_for(&s, ExecutionMode::Cpu), Placement::Cpu);
        assert_eq!(
            placement_for(&s, ExecutionMode::CpuPreferred),
            Placement::Gpu
        );
        assert_eq!(
            placement_for(&svc(json!({})), ExecutionMode::GpuPreferred),
            Placement::Gpu
        );
    }

    #[test]
    fn user_mode_wins_and_the_classifier_is_recorded() {
        let c = Classification {
            mode: ExecutionMode::Cpu,
            rationale: "pure Python".into(),
            findings: vec![],
            fallback: false,
        };
        let v = effective(
            RequestedMode::Explicit(ExecutionMode::Gpu),
            Analysis::Classified(&c),
            Some("sha256:x".into()),
            ExecutionMode::CpuPreferred,
        );
        assert_eq!(v.mode, ExecutionMode::Gpu);
        assert_eq!(v.source, ModeSource::User);
        assert!(
            v.rationale.contains("would choose cpu: pure Python"),
            "{}",
            v.rationale
        );
        let d = effective(
            RequestedMode::Auto,
            Analysis::NoSource,
            None,
            ExecutionMode::CpuPreferred,
        );
        assert_eq!(
            (d.mode, d.source),
            (ExecutionMode::CpuPreferred, ModeSource::Default)
        );
        assert_eq!(d.rationale, "no source available");
    }

    #[test]
    fn an_unchanged_source_reuses_the_recorded_verdict() {
        let s = svc(json!({
            "gaia.dev/mode": "gpu_preferred", "gaia.dev/mode-source": "classifier",
            "gaia.dev/rationale": "big model", "gaia.dev/source-digest": "sha256:a"}));
        assert!(reusable_prior(&s, None, "sha256:a", RequestedMode::Auto).is_some());
        assert!(reusable_prior(&s, None, "sha256:b", RequestedMode::Auto).is_none());
        // the user now pins a mode: analyse again
        assert!(reusable_prior(
            &s,
            None,
            "sha256:a",
            RequestedMode::Explicit(ExecutionMode::Cpu)
        )
        .is_none());
        // annotations dropped by the update: the old object still has them
        assert!(
            reusable_prior(&svc(json!({})), Some(&s), "sha256:a", RequestedMode::Auto).is_some()
        );
    }

    #[test]
    fn a_rationale_the_webhook_could_not_have_written_is_derived_again() {
        let forged = |rationale: String| {
            svc(json!({
                "gaia.dev/mode": "gpu_preferred", "gaia.dev/mode-source": "user",
                "gaia.dev/rationale": rationale, "gaia.dev/source-digest": "sha256:a"}))
        };
        let explicit = RequestedMode::Explicit(ExecutionMode::GpuPreferred);
        assert!(reusable_prior(
            &forged("set by the user".into()),
            None,
            "sha256:a",
            explicit
        )
        .is_some());
        for bad in [
            "two\nlines".to_string(),
            "x".repeat(MAX_RATIONALE_CHARS + 1),
        ] {
            assert!(
                reusable_prior(&forged(bad.clone()), None, "sha256:a", explicit).is_none(),
                "{bad}"
            );
        }
    }

    #[test]
    fn mutate_is_idempotent() {
        let v = Verdict {
            mode: ExecutionMode::GpuPreferred,
            source: ModeSource::Classifier,
            rationale: "r".into(),
            findings: None,
            digest: Some("sha256:a".into()),
            origin: Some("image:r/f:1".into()),
            image_digest: Some("sha256:i".into()),
        };
        let p = PlacementProfiles::default();
        let once = mutate(&svc(json!({})), &v, &p).unwrap();
        assert_eq!(
            once["metadata"]["annotations"]["gaia.dev/mode"],
            "gpu_preferred"
        );
        assert_eq!(
            once["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
                ["nvidia.com/gpu"],
            "1"
        );
        assert_eq!(mutate(&once, &v, &p).unwrap(), once);
    }
}
