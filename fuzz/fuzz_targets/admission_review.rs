//! The whole admission path as the webhook's `POST /mutate` handler runs it: the body bytes
//! into `Admission::review` (AdmissionReview decoding, opt-in, the source, the classifier pool,
//! the decision, the mutation and the JSON patch), the answer out. No network and no Kubernetes
//! API: sources are the inline annotation only and no namespace is labelled, which is what the
//! webhook serves with `--kube false` and the image source off.
//!
//! Two kinds of input:
//! - anything not starting with 0xFF: the body itself (JSON, truncated JSON, binary);
//! - 0xFF then bytes for a structure-aware review: a Service-shaped object (the
//!   `placement_patch` shape) with execution-mode, source, desired-placement and earlier-verdict
//!   annotations, any operation, kind and namespace, an old object, dry run.
//!
//! Checks: never panics; the answer is always a well-formed AdmissionReview response (kind,
//! apiVersion, a uid, `allowed`; a status exactly when refused, a patch only when allowed and
//! with its patchType); it carries the request's uid whenever the request was decodable (a
//! structure-aware review always is), and never a uid the body did not hold; an allowed answer's
//! patch applies to the object and gives a valid Knative Service (the verdict annotations parse,
//! the rationale is one bounded line, the template is placed where the mode and the autoscaler's
//! choice say, containers, images and the user's own fields kept); and the webhook given the
//! patched Service changes nothing more.
#![no_main]

#[path = "service_shape.rs"]
mod service_shape;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use base64::Engine;
use gaia_classifier::SourceFile;
use gaia_contract::verdict::MAX_RATIONALE_CHARS;
use gaia_contract::{keys, ServiceView};
use gaia_webhook::admission::review::ReviewIn;
use gaia_webhook::admission::Admission;
use gaia_webhook::config::Config;
use gaia_webhook::metrics::Metrics;
use gaia_webhook::knative_features::KnativeFeatures;
use gaia_webhook::namespaces::NamespaceLabels;
use gaia_webhook::pool::ClassifierPool;
use gaia_webhook::sources::{digest, SourceChain};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Map, Value};
use service_shape::Svc;

struct Webhook {
    runtime: tokio::runtime::Runtime,
    admission: Admission,
}

fn webhook() -> &'static Webhook {
    static WEBHOOK: OnceLock<Webhook> = OnceLock::new();
    WEBHOOK.get_or_init(|| {
        let config = Config {
            // Long enough that a classification under the sanitizer never misses it: the
            // answer must not depend on the machine's speed (libFuzzer's -timeout catches a
            // slow one).
            review_deadline: Duration::from_secs(30),
            cache_entries: 256,
            ..Config::default()
        };
        let pool = ClassifierPool::start(1, 64, config.cache_entries, config.source.clone())
            .expect("the classifier pool");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime");
        Webhook {
            runtime,
            admission: Admission {
                config: Arc::new(config),
                sources: SourceChain::new(None, None),
                pool,
                namespaces: NamespaceLabels::none(),
                features: KnativeFeatures::none(),
                metrics: Arc::new(Metrics::new()),
            },
        }
    })
}

/// What the handler answers for this body, as the JSON the apiserver receives.
fn answer_to(body: &[u8]) -> Value {
    let w = webhook();
    if body.len() > w.admission.config.max_body_bytes {
        return Value::Null; // the HTTP layer refuses it before the review
    }
    let (review, _) = w.runtime.block_on(w.admission.review(body));
    serde_json::to_value(&review).expect("the answer serialises")
}

/// The envelope every answer has; returns the response.
fn well_formed(answer: &Value) -> &Map<String, Value> {
    assert_eq!(answer["kind"], "AdmissionReview", "{answer}");
    assert!(answer["apiVersion"].is_string(), "{answer}");
    let r = answer["response"].as_object().expect("a response");
    assert!(r["uid"].is_string(), "{answer}");
    let allowed = r["allowed"].as_bool().expect("allowed is a bool");
    match r.get("status") {
        Some(s) => {
            assert!(!allowed, "a status on an allowed answer: {answer}");
            assert_eq!(s["status"], "Failure");
            assert!(matches!(s["code"].as_u64(), Some(400 | 403)), "{answer}");
            assert!(!s["message"].as_str().unwrap_or_default().is_empty());
        }
        None => assert!(allowed, "refused without a status: {answer}"),
    }
    assert_eq!(
        r.contains_key("patch"),
        r.contains_key("patchType"),
        "{answer}"
    );
    if r.contains_key("patch") {
        assert!(allowed, "a patch on a refusal: {answer}");
        assert_eq!(r["patchType"], "JSONPatch");
    }
    if let Some(w) = r.get("warnings") {
        assert!(
            w.as_array().is_some_and(|w| w.iter().all(Value::is_string)),
            "{answer}"
        );
    }
    r
}

fn patch_of(response: &Map<String, Value>) -> Option<json_patch::Patch> {
    let b64 = response.get("patch")?.as_str().expect("a base64 string");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("the patch is base64");
    Some(serde_json::from_slice(&bytes).expect("the patch is a JSON patch"))
}

fn without(v: &Value, key: &str) -> Value {
    match v {
        Value::Object(m) => {
            let mut m = m.clone();
            m.remove(key);
            Value::Object(m)
        }
        Value::Null => json!({}),
        other => other.clone(),
    }
}

/// The patched object is a Service the webhook placed: the verdict is on it, the template is
/// placed where the mode (and the autoscaler's choice, for unpinned modes) says, and the rest is
/// the user's.
fn valid_placed_service(original: &Value, patched: &Value) {
    let view = ServiceView::new(patched);
    let verdict = view.verdict().expect("the verdict annotations parse");
    if std::env::var_os("GAIA_FUZZ_DEBUG").is_some() {
        eprintln!("ORIGINAL {}\nPATCHED {}", original["metadata"], patched["metadata"]);
    }
    assert!(verdict.rationale.chars().count() <= MAX_RATIONALE_CHARS);
    assert!(!verdict.rationale.contains('\n'), "{}", verdict.rationale);
    let want = if verdict.mode.is_pinned() {
        verdict.mode.initial_placement()
    } else {
        view.desired_placement()
            .unwrap_or_else(|| verdict.mode.initial_placement())
    };
    assert_eq!(view.placed_for(), Some(want), "{patched}");
    // Containers and their images and names kept.
    let images = |v: &Value| {
        v.pointer("/spec/template/spec/containers")
            .and_then(Value::as_array)
            .map(|c| {
                c.iter()
                    .map(|c| (c.get("image").cloned(), c.get("name").cloned()))
                    .collect::<Vec<_>>()
            })
    };
    assert_eq!(images(patched), images(original));
    // What the webhook does not own is the user's: other top-level fields, the metadata but
    // its annotations, the spec but its template, annotations not under gaia.dev/.
    for (k, v) in original.as_object().into_iter().flatten() {
        if k != "metadata" && k != "spec" {
            assert_eq!(patched.get(k), Some(v), "{k} changed");
        }
    }
    let meta = |v: &Value| without(v.get("metadata").unwrap_or(&Value::Null), "annotations");
    assert_eq!(meta(original), meta(patched));
    let spec = |v: &Value| without(v.get("spec").unwrap_or(&Value::Null), "template");
    assert_eq!(spec(original), spec(patched));
    let annotations = original
        .pointer("/metadata/annotations")
        .and_then(Value::as_object);
    for (k, v) in annotations.into_iter().flatten() {
        if !k.starts_with("gaia.dev/") {
            assert_eq!(patched["metadata"]["annotations"].get(k), Some(v), "{k}");
        }
    }
    assert_eq!(
        patched.pointer("/metadata/annotations/gaia.dev~1source"),
        original.pointer("/metadata/annotations/gaia.dev~1source")
    );
}

/// Runs one body through the webhook and checks the answer; `must_decode` when the body is a
/// well-formed review by construction.
fn check(body: &[u8], must_decode: bool) {
    let answer = answer_to(body);
    if answer.is_null() {
        return;
    }
    let response = well_formed(&answer);
    let uid = response["uid"].as_str().unwrap_or_default();
    let sent: Option<Value> = serde_json::from_slice(body).ok();
    let sent_uid = sent
        .as_ref()
        .and_then(|v| v.pointer("/request/uid"))
        .and_then(Value::as_str);
    // Decodable as the apiserver's review: the answer is for this request.
    let decoded = serde_json::from_slice::<ReviewIn>(body)
        .ok()
        .filter(|r| r.kind.as_deref() == Some("AdmissionReview"))
        .and_then(|r| r.request);
    if must_decode {
        assert!(decoded.is_some(), "a well-formed review did not decode");
    }
    match &decoded {
        Some(req) => assert_eq!(uid, req.uid, "the answer is not for this request"),
        None => {
            assert_eq!(uid, "", "an undecodable request answered with a uid");
            assert_eq!(response["status"]["code"], 400, "{answer}");
        }
    }
    // (A body can decode as a review yet not as plain JSON: serde skips unknown fields without
    // checking their escapes.)
    if !uid.is_empty() && sent.is_some() {
        assert_eq!(Some(uid), sent_uid, "a uid the body did not hold");
    }
    let Some(patch) = patch_of(response) else {
        return;
    };
    let req = decoded.expect("a patch for an undecodable request");
    let object = req.object.clone().expect("a patch with no object");
    let mut patched = object.clone();
    json_patch::patch(&mut patched, &patch).expect("the patch applies to the object");
    valid_placed_service(&object, &patched);
    // The webhook given its own output: nothing more to change.
    let resend = json!({
        "apiVersion": answer["apiVersion"],
        "kind": "AdmissionReview",
        "request": {
            "uid": req.uid,
            "kind": {"group": req.kind.group, "version": req.kind.version, "kind": req.kind.kind},
            "operation": req.operation,
            "namespace": req.namespace,
            "name": req.name,
            "object": patched,
            "oldObject": req.old_object,
            "dryRun": req.dry_run,
        }
    });
    let again = answer_to(&serde_json::to_vec(&resend).expect("json"));
    let again = well_formed(&again);
    assert_eq!(again["uid"].as_str(), Some(req.uid.as_str()));
    assert_eq!(
        again["allowed"], true,
        "the placed Service is refused: {again:?}"
    );
    assert!(
        patch_of(again).is_none_or(|p| p.0.is_empty()),
        "not idempotent: {}\nsecond patch: {:?}",
        resend["request"]["object"],
        again.get("patch")
    );
}

const PYTHON: &[&str] = &[
    include_str!("../../examples/functions/matmul/func.py"),
    include_str!("../../examples/functions/idle_wait/func.py"),
    include_str!("../../examples/functions/cuda_unguarded/func.py"),
    include_str!("../../examples/functions/text_generation/func.py"),
    include_str!("../../webhook/tests/fixtures/inline_function.py"),
    "import torch\ndef handle(req):\n    return torch.cuda.is_available()\n",
    "def handle(req):\n    return {}\n",
    "def handle(req:\n",
    "",
];
const MODES: &[&str] = &[
    "auto",
    "gpu",
    "cpu",
    "gpu_preferred",
    "cpu_preferred",
    " GPU ",
    "fast",
    "",
    "Auto",
];
const MODE_SOURCES: &[&str] = &["classifier", "user", "default", "oracle"];
const PLACEMENTS: &[&str] = &["gpu", "cpu", "tpu", ""];
const OPERATIONS: &[&str] = &["CREATE", "UPDATE", "DELETE", "CONNECT", "create", ""];
const NAMESPACES: &[&str] = &["demo", "kube-system", "gaia-system", "", "Demo"];
const KINDS: &[(&str, &str)] = &[
    ("serving.knative.dev", "Service"),
    ("serving.knative.dev", "Route"),
    ("apps", "Deployment"),
    ("", "Service"),
];

#[derive(Debug, Arbitrary)]
enum SourceText {
    Known(u8),
    Text(String),
    NotAString(i32),
}

#[derive(Debug, Arbitrary)]
struct Prior {
    mode: u8,
    source: u8,
    rationale: String,
    /// The digest of the source the review carries (so the earlier verdict is reusable).
    same_digest: bool,
}

#[derive(Debug, Arbitrary)]
struct Review {
    svc: Svc,
    operation: u8,
    kind: u8,
    namespace: u8,
    request_names: bool,
    mode: Option<u8>,
    mode_on_template: bool,
    mode_not_a_string: bool,
    source: Option<SourceText>,
    source_on_template: bool,
    desired: Option<u8>,
    prior: Option<Prior>,
    old_object: u8,
    dry_run: Option<bool>,
    no_object: bool,
    api_version: bool,
}

fn pick<T: Copy>(list: &[T], i: u8) -> T {
    list[usize::from(i) % list.len()]
}

fn annotate(obj: &mut Value, template: bool, key: &str, value: Value) {
    let at = if template {
        obj.pointer_mut("/spec/template/metadata/annotations")
    } else {
        obj.pointer_mut("/metadata")
            .and_then(Value::as_object_mut)
            .map(|m| m.entry("annotations").or_insert_with(|| json!({})))
    };
    if let Some(Value::Object(a)) = at {
        a.insert(key.to_string(), value);
    }
}

fn review(r: &Review, uid: &str) -> Value {
    let mut obj = service_shape::object(&r.svc);
    let mut source_text = None;
    if let Some(s) = &r.source {
        let v = match s {
            SourceText::Known(i) => json!(pick(PYTHON, *i)),
            SourceText::Text(t) => json!(t),
            SourceText::NotAString(n) => json!(n),
        };
        source_text = v.as_str().map(str::to_string);
        annotate(&mut obj, r.source_on_template, keys::SOURCE, v);
    }
    if let Some(m) = r.mode {
        let v = if r.mode_not_a_string {
            json!(m)
        } else {
            json!(pick(MODES, m))
        };
        annotate(&mut obj, r.mode_on_template, keys::EXECUTION_MODE, v);
    }
    if let Some(d) = r.desired {
        annotate(
            &mut obj,
            false,
            keys::DESIRED_PLACEMENT,
            json!(pick(PLACEMENTS, d)),
        );
    }
    if let Some(p) = &r.prior {
        annotate(
            &mut obj,
            false,
            keys::MODE,
            json!(pick(&MODES[1..5], p.mode)),
        );
        annotate(
            &mut obj,
            false,
            keys::MODE_SOURCE,
            json!(pick(MODE_SOURCES, p.source)),
        );
        annotate(&mut obj, false, keys::RATIONALE, json!(p.rationale));
        let d = match (&source_text, p.same_digest) {
            (Some(t), true) => digest(&[SourceFile::new("func.py", t.as_bytes())]),
            _ => "sha256:0".to_string(),
        };
        annotate(&mut obj, false, keys::SOURCE_DIGEST, json!(d));
    }
    let (group, kind) = pick(KINDS, r.kind);
    let old = match r.old_object % 3 {
        0 => Value::Null,
        1 => obj.clone(),
        _ => service_shape::object(&r.svc),
    };
    let mut request = json!({
        "uid": uid,
        "kind": {"group": group, "version": "v1", "kind": kind},
        "resource": {"group": group, "version": "v1", "resource": "services"},
        "operation": pick(OPERATIONS, r.operation),
        "namespace": pick(NAMESPACES, r.namespace),
        "userInfo": {"username": "kubernetes-admin"},
        "object": if r.no_object { Value::Null } else { obj },
        "oldObject": old,
    });
    if r.request_names {
        request["name"] = json!("f");
    }
    if let Some(d) = r.dry_run {
        request["dryRun"] = json!(d);
    }
    let mut review = json!({"kind": "AdmissionReview", "request": request});
    if r.api_version {
        review["apiVersion"] = json!("admission.k8s.io/v1");
    }
    review
}

fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((0xFF, rest)) => {
            let Ok(r) = Review::arbitrary_take_rest(Unstructured::new(rest)) else {
                return;
            };
            let body = serde_json::to_vec(&review(&r, "7f1c2e9a-fuzz")).expect("json");
            check(&body, true);
        }
        _ => check(data, false),
    }
});
