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
    apply_placement, apply_profile, keys, ContractError, ExecutionMode, ModeSource, Placement,
    PlacementProfile, PlacementProfiles, RequestedMode, ServiceView, Verdict,
};
use gaia_policy::ladder::{initial_rung, LadderConfig};
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
    let gpu_memory_mib = match &analysis {
        Analysis::Classified(c) => c
            .gpu_memory
            .as_ref()
            .map(|g| g.mib.ceil())
            .filter(|m| m.is_finite() && *m >= 1.0 && *m < 1e12)
            .map(|m| m as u64),
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
        gpu_memory_mib,
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

/// The rung of the placement ladder a new `gpu_preferred` Service starts on.
#[derive(Debug, Clone, PartialEq)]
pub struct FirstRung<'a> {
    pub ladder: &'a LadderConfig,
    pub index: usize,
    /// Why, for the rationale: "gpu-shared: the model needs ~3.5 GiB of GPU memory; ...".
    pub why: String,
}

/// With a ladder (more than today's two rungs), a Service the autoscaler has not placed yet
/// (no `gaia.dev/desired-placement`; no `gaia.dev/rung` on its template, or the one this rule
/// gives, written by an earlier review) starts, and stays, where
/// [`initial_rung`], the ladder's own rule (the replay's too), puts it: a `gpu_preferred` one on
/// the lowest GPU rung whose memory holds the model (`gaia.dev/gpu-memory-mib`; unknown: the
/// lowest GPU rung); a `cpu_preferred` one (device-agnostic code) on that rung when it costs
/// less a second than the first rung, else on the CPU. `None` for every other Service, and for
/// the first rung: placed as without a ladder (`cpu` on the CPU, `gpu` on a whole GPU).
pub fn first_rung<'a>(
    service: &Value,
    verdict: &Verdict,
    ladder: Option<&'a LadderConfig>,
) -> Option<FirstRung<'a>> {
    let ladder = ladder.filter(|l| l.is_ladder())?;
    if !matches!(
        verdict.mode,
        ExecutionMode::GpuPreferred | ExecutionMode::CpuPreferred
    ) {
        return None;
    }
    let view = ServiceView::new(service);
    if view.desired_placement().is_some() {
        return None;
    }
    let written = service
        .pointer("/spec/template/metadata/annotations")
        .and_then(|a| a.get(keys::RUNG))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|r| !r.is_empty());
    let need = verdict.gpu_memory_mib.map(|m| m as f64);
    let (index, why) = initial_rung(verdict.mode, need, ladder);
    if index == 0 {
        return None;
    }
    match written {
        None => Some(FirstRung { ladder, index, why }),
        // Placed there by an earlier review (Knative's reinvocation, an unrelated update): the
        // same again. Without it a `cpu_preferred` Service would be placed back for the CPU,
        // its mode's placement, on the next review.
        Some(r) if ladder.index_of(r) == Some(index) => Some(FirstRung { ladder, index, why }),
        Some(_) => None,
    }
}

/// The verdict with its rationale telling the first rung ("...; first rung gpu-shared: ...").
/// A verdict recorded on the Service by an earlier review already says it: kept as it is.
pub fn with_first_rung(mut verdict: Verdict, first: Option<&FirstRung<'_>>) -> Verdict {
    if let Some(f) = first {
        // (a new classification's rationale never has it; a recorded one, cut to length, may
        // hold part of it)
        if !verdict.rationale.contains("; first rung ") {
            verdict.rationale = one_line(
                &format!("{}; first rung {}", verdict.rationale, f.why),
                MAX_RATIONALE_CHARS,
            );
        }
    }
    verdict
}

/// The profile [`mutate`] applies: the first rung's, else the placement's.
pub fn profile_for<'a>(
    service: &Value,
    verdict: &Verdict,
    profiles: &'a PlacementProfiles,
    first: Option<&FirstRung<'a>>,
) -> &'a PlacementProfile {
    match first.and_then(|f| f.ladder.rungs.get(f.index)) {
        Some(rung) => &rung.profile,
        None => profiles.get(placement_for(service, verdict.mode)),
    }
}

/// The Service as the webhook wants it: verdict annotations on its metadata, and its template
/// placed (on `first`'s rung when there is one, as the autoscaler's ladder places a rung: its
/// profile after removing what any rung's or placement's profile owns, `gaia.dev/rung` on the
/// template). Annotations the verdict does not have are removed, so stale ones do not linger.
/// Without `place` (Knative's `config-features` would reject the profile's fields) only the
/// annotations are written and the template is left as it is.
pub fn mutate(
    service: &Value,
    verdict: &Verdict,
    profiles: &PlacementProfiles,
    first: Option<&FirstRung<'_>>,
    place: bool,
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
        let memory = verdict.gpu_memory_mib.map(|m| m.to_string());
        set(keys::GPU_MEMORY, memory.as_deref());
    }
    if !place {
        return Ok(out);
    }
    match first.and_then(|f| Some((f, f.ladder.rungs.get(f.index)?))) {
        Some((f, rung)) => {
            let placement = if f.index == 0 {
                Placement::Cpu
            } else {
                Placement::Gpu
            };
            let mut owned: Vec<&PlacementProfile> = vec![&profiles.cpu, &profiles.gpu];
            owned.extend(f.ladder.rungs.iter().map(|r| &r.profile));
            apply_profile(&mut out, placement, &rung.profile, &owned)?;
            if let Some(a) = out
                .pointer_mut("/spec/template/metadata/annotations")
                .and_then(Value::as_object_mut)
            {
                a.insert(keys::RUNG.to_string(), Value::String(rung.name.clone()));
            }
        }
        None => {
            let placement = placement_for(&out, verdict.mode);
            apply_placement(&mut out, placement, profiles)?;
        }
    }
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
            gpu_memory: None,
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
            gpu_memory_mib: None,
        };
        let p = PlacementProfiles::default();
        let once = mutate(&svc(json!({})), &v, &p, None, true).unwrap();
        assert_eq!(
            once["metadata"]["annotations"]["gaia.dev/mode"],
            "gpu_preferred"
        );
        assert_eq!(
            once["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
                ["nvidia.com/gpu"],
            "1"
        );
        assert_eq!(mutate(&once, &v, &p, None, true).unwrap(), once);
    }

    #[test]
    fn without_place_only_the_annotations_are_written_and_the_template_is_left_alone() {
        let v = gpu_preferred(None);
        let p = PlacementProfiles::default();
        let s = svc(json!({}));
        assert!(std::ptr::eq(profile_for(&s, &v, &p, None), &p.gpu));
        let out = mutate(&s, &v, &p, None, false).unwrap();
        assert_eq!(
            out["metadata"]["annotations"]["gaia.dev/mode"],
            "gpu_preferred"
        );
        assert_eq!(
            out["spec"], s["spec"],
            "no nodeSelector, tolerations or GPU limit"
        );
    }

    fn gpu_preferred(mib: Option<u64>) -> Verdict {
        Verdict {
            mode: ExecutionMode::GpuPreferred,
            source: ModeSource::Classifier,
            rationale: "large-model inference: TinyLlama".into(),
            findings: None,
            digest: Some("sha256:a".into()),
            origin: None,
            image_digest: None,
            gpu_memory_mib: mib,
        }
    }

    fn shared_ladder() -> LadderConfig {
        // a seventh of an H200 (143,771 MiB): 20,538 MiB a slice
        LadderConfig::cpu_shared_gpu(143_771.0, 7)
    }

    fn limits(s: &Value) -> Value {
        s["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"].clone()
    }

    fn place(s: &Value, v: Verdict, ladder: Option<&LadderConfig>) -> (Verdict, Value) {
        let first = first_rung(s, &v, ladder);
        let v = with_first_rung(v, first.as_ref());
        let out = mutate(s, &v, &PlacementProfiles::default(), first.as_ref(), true).unwrap();
        (v, out)
    }

    #[test]
    fn a_model_that_fits_starts_on_the_lowest_gpu_rung() {
        let ladder = shared_ladder();
        let (v, out) = place(&svc(json!({})), gpu_preferred(Some(3542)), Some(&ladder));
        assert_eq!(limits(&out), json!({"nvidia.com/gpu.shared": "1"}));
        let tmpl = &out["spec"]["template"]["metadata"]["annotations"];
        assert_eq!(tmpl["gaia.dev/rung"], "gpu-shared");
        assert_eq!(tmpl["gaia.dev/placed-for"], "gpu");
        let meta = &out["metadata"]["annotations"];
        assert_eq!(meta["gaia.dev/gpu-memory-mib"], "3542");
        assert!(meta.get("gaia.dev/desired-placement").is_none(), "{meta}");
        assert!(
            v.rationale.contains(
                "first rung gpu-shared: the model needs ~3.5 GiB of GPU memory; gpu-shared (20.1 GiB) is the lowest GPU rung that holds it"
            ),
            "{}",
            v.rationale
        );
        assert_eq!(meta["gaia.dev/rationale"], v.rationale.as_str());
        // the next review (reinvocation, an unrelated update) leaves the slice as it is
        let again = place(&out, v.clone(), Some(&ladder)).1;
        assert_eq!(again, out);
        // and without a ladder too (apply_placement keeps a rung placed for the same placement)
        assert_eq!(
            mutate(&out, &v, &PlacementProfiles::default(), None, true).unwrap(),
            out
        );
    }

    #[test]
    fn unknown_memory_starts_on_the_lowest_gpu_rung_and_says_so() {
        let ladder = shared_ladder();
        let (v, out) = place(&svc(json!({})), gpu_preferred(None), Some(&ladder));
        assert_eq!(limits(&out), json!({"nvidia.com/gpu.shared": "1"}));
        assert!(
            v.rationale.contains("GPU memory is unknown"),
            "{}",
            v.rationale
        );
        assert!(out["metadata"]["annotations"]
            .get("gaia.dev/gpu-memory-mib")
            .is_none());
    }

    #[test]
    fn a_model_too_big_for_the_slice_starts_on_the_whole_gpu() {
        let ladder = shared_ladder();
        // Llama-2-7B in float16: ~16.7 GiB weights and headroom... 15B in float16 does not fit
        let (v, out) = place(&svc(json!({})), gpu_preferred(Some(35_000)), Some(&ladder));
        assert_eq!(limits(&out), json!({"nvidia.com/gpu": "1"}));
        assert_eq!(
            out["spec"]["template"]["metadata"]["annotations"]["gaia.dev/rung"],
            "gpu"
        );
        assert!(
            v.rationale.contains(
                "first rung gpu: the model needs ~34.2 GiB of GPU memory; gpu (140.4 GiB)"
            ),
            "{}",
            v.rationale
        );
    }

    #[test]
    fn device_agnostic_code_starts_on_a_slice_only_when_it_costs_less_than_the_cpu() {
        let cpu_preferred = |mib| Verdict {
            mode: ExecutionMode::CpuPreferred,
            ..gpu_preferred(mib)
        };
        // a seventh of the GPU node costs half a CPU node a second: the slice
        let ladder = shared_ladder();
        assert!(ladder.rungs[1].price_per_second < ladder.rungs[0].price_per_second);
        let (v, out) = place(&svc(json!({})), cpu_preferred(Some(1078)), Some(&ladder));
        assert_eq!(limits(&out), json!({"nvidia.com/gpu.shared": "1"}));
        assert_eq!(
            out["spec"]["template"]["metadata"]["annotations"]["gaia.dev/rung"],
            "gpu-shared"
        );
        assert!(
            v.rationale
                .contains("first rung gpu-shared: device-agnostic code")
                && v.rationale.contains("costs less a second"),
            "{}",
            v.rationale
        );
        // the next review (Knative's reinvocation, an update) leaves it on the slice
        let again = place(&out, v.clone(), Some(&ladder));
        assert_eq!(again.1, out);
        assert_eq!(again.0, v);
        // a model no slice holds, or a slice dearer than the CPU: the CPU, as without a ladder
        assert!(first_rung(&svc(json!({})), &cpu_preferred(Some(35_000)), Some(&ladder)).is_none());
        let mut dear = shared_ladder();
        dear.rungs[1].price_per_second = dear.rungs[0].price_per_second * 2.0;
        let s = svc(json!({}));
        let v = cpu_preferred(Some(1078));
        assert!(first_rung(&s, &v, Some(&dear)).is_none());
        assert_eq!(
            place(&s, v.clone(), Some(&dear)).1,
            mutate(&s, &v, &PlacementProfiles::default(), None, true).unwrap()
        );
    }

    #[test]
    fn without_a_ladder_or_for_other_modes_placement_is_unchanged() {
        let ladder = shared_ladder();
        let today =
            |s: &Value, v: &Verdict| mutate(s, v, &PlacementProfiles::default(), None, true);
        let s = svc(json!({}));
        // no ladder, and today's two rungs: as before
        for l in [None, Some(LadderConfig::default())] {
            let v = gpu_preferred(Some(3542));
            assert!(first_rung(&s, &v, l.as_ref()).is_none());
            let (v2, out) = place(&s, v.clone(), l.as_ref());
            assert_eq!(v2, v);
            assert_eq!(out, today(&s, &v).unwrap());
            assert_eq!(limits(&out), json!({"nvidia.com/gpu": "1"}));
        }
        // cpu, gpu: where they start today, with a ladder too
        for mode in [ExecutionMode::Cpu, ExecutionMode::Gpu] {
            let v = Verdict {
                mode,
                ..gpu_preferred(Some(1078))
            };
            assert!(first_rung(&s, &v, Some(&ladder)).is_none(), "{mode}");
        }
        // the autoscaler placed it already: its choice stands
        let moved = svc(json!({"gaia.dev/desired-placement": "cpu"}));
        assert!(first_rung(&moved, &gpu_preferred(Some(3542)), Some(&ladder)).is_none());
        let mut on_rung = svc(json!({}));
        on_rung["spec"]["template"]["metadata"] =
            json!({"annotations": {"gaia.dev/rung": "gpu", "gaia.dev/placed-for": "gpu"}});
        assert!(first_rung(&on_rung, &gpu_preferred(Some(3542)), Some(&ladder)).is_none());
    }
}
