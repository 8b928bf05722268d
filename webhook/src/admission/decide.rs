//! What the webhook writes into an opted-in Service: pure functions, no I/O.
//!
//! - [`requested_mode`]: who is affected (opt-in) and what they asked for;
//! - [`effective`]: the mode, its source and the rationale, from the request and the analysis;
//! - [`reusable_prior`]: an UPDATE whose source did not change keeps its earlier analysis;
//! - [`mutate`]: the annotated, placed Service (the patch is the diff to the original).

use gaia_contract::{
    apply_placement, keys, ContractError, ExecutionMode, ModeSource, Placement, PlacementProfiles,
    RequestedMode,
};
use serde_json::{Map, Value};

use crate::classifier::{Classification, Finding};

/// Longest rationale written into the annotation.
pub const MAX_RATIONALE_CHARS: usize = 480;
/// Largest findings annotation, in bytes of compact JSON.
pub const MAX_FINDINGS_BYTES: usize = 4096;

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
    let annotation = [
        "/metadata/annotations",
        "/spec/template/metadata/annotations",
    ]
    .iter()
    .find_map(|p| service.pointer(p)?.get(keys::EXECUTION_MODE));
    match annotation {
        Some(Value::String(text)) => match text.parse::<RequestedMode>() {
            Ok(m) => OptIn::Yes(m),
            Err(e) => OptIn::Invalid(format!("{}: {e}", keys::EXECUTION_MODE)),
        },
        Some(other) => OptIn::Invalid(format!(
            "{}: expected a string, got {other}",
            keys::EXECUTION_MODE
        )),
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

/// What gets written to the Service's annotations.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub mode: ExecutionMode,
    pub source: ModeSource,
    pub rationale: String,
    /// Compact JSON of the findings, when there are any.
    pub findings: Option<String>,
    pub digest: Option<String>,
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
        .find_map(verdict_on)?;
    if prior.digest.as_deref() != Some(digest) {
        return None;
    }
    let same_request = match requested {
        RequestedMode::Auto => prior.source == ModeSource::Classifier,
        RequestedMode::Explicit(m) => prior.source == ModeSource::User && prior.mode == m,
    };
    same_request.then_some(prior)
}

/// The verdict recorded in a Service's annotations.
pub fn verdict_on(service: &Value) -> Option<Verdict> {
    let a = service.pointer("/metadata/annotations")?;
    let get = |k: &str| a.get(k).and_then(Value::as_str);
    Some(Verdict {
        mode: get(keys::MODE)?.parse().ok()?,
        source: get(keys::MODE_SOURCE)?.parse().ok()?,
        rationale: get(keys::RATIONALE)?.to_string(),
        findings: get(keys::FINDINGS).map(str::to_string),
        digest: get(keys::SOURCE_DIGEST).map(str::to_string),
    })
}

/// Where the Service runs: pinned modes decide; otherwise the autoscaler's choice on the
/// Service metadata is kept; otherwise the mode's initial placement.
pub fn placement_for(service: &Value, mode: ExecutionMode) -> Placement {
    if mode.is_pinned() {
        return mode.initial_placement();
    }
    service
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(keys::PLACEMENT))
        .and_then(Value::as_str)
        .and_then(|p| p.parse().ok())
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

/// Findings as compact JSON, as many as fit in [`MAX_FINDINGS_BYTES`].
pub fn findings_annotation(findings: &[Finding]) -> Option<String> {
    if findings.is_empty() {
        return None;
    }
    let mut kept = findings.len();
    loop {
        let text = serde_json::to_string(&findings[..kept]).ok()?;
        if text.len() <= MAX_FINDINGS_BYTES || kept <= 1 {
            return (text.len() <= MAX_FINDINGS_BYTES).then_some(text);
        }
        kept = kept * MAX_FINDINGS_BYTES / text.len().max(1);
        kept = kept.clamp(1, findings.len() - 1);
    }
}

/// One line of at most `max` characters: annotations are read in terminals and tables.
pub fn one_line(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        return flat;
    }
    let mut cut: String = flat.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
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
        let s = svc(json!({"gaia.dev/placement": "gpu"}));
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
    fn mutate_is_idempotent() {
        let v = Verdict {
            mode: ExecutionMode::GpuPreferred,
            source: ModeSource::Classifier,
            rationale: "r".into(),
            findings: None,
            digest: Some("sha256:a".into()),
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

    #[test]
    fn rationale_is_one_bounded_line() {
        assert_eq!(one_line("a\n  b\tc", 10), "a b c");
        let long = "x ".repeat(1000);
        let cut = one_line(&long, 50);
        assert_eq!(cut.chars().count(), 50);
        assert!(cut.ends_with('…'));
    }
}
