//! The placement patch: `apply_placement` on an arbitrary Service-shaped object, then the JSON
//! patch from the original to the placed Service. Applying the patch gives the placed Service
//! back; placing again changes nothing; the other placement and back gives the same Service; the
//! template says what it was placed for; what no profile owns is kept.
#![no_main]

use arbitrary::Arbitrary;
use gaia_contract::{apply_placement, Placement, PlacementProfiles, ServiceView};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Map, Value};

const KEYS: &[&str] = &[
    "cpu",
    "memory",
    "nvidia.com/gpu",
    "nvidia.com/gpu.present",
    "gaia.dev/pool",
    "gaia.dev/placed-for",
    "gaia.dev/placement",
    "kubernetes.io/arch",
    "",
    "a/b/c",
];

#[derive(Debug, Arbitrary)]
enum Leaf {
    Str(u8, String),
    Num(i32),
    Bool(bool),
    Null,
}

#[derive(Debug, Arbitrary)]
struct Container {
    name: Option<String>,
    ports: bool,
    limits: Vec<(u8, Leaf)>,
    requests: Vec<(u8, Leaf)>,
}

#[derive(Debug, Arbitrary)]
struct Toleration {
    key: u8,
    operator: u8,
    effect: bool,
}

#[derive(Debug, Arbitrary)]
struct Svc {
    template_annotations: Vec<(u8, Leaf)>,
    node_selector: Option<Vec<(u8, Leaf)>>,
    tolerations: Option<Vec<Toleration>>,
    containers: Vec<Container>,
    gpu_first: bool,
    odd_template: u8,
}

fn key(i: u8) -> &'static str {
    KEYS[usize::from(i) % KEYS.len()]
}

fn leaf(l: &Leaf) -> Value {
    match l {
        Leaf::Str(i, s) => Value::String(if s.is_empty() { key(*i).into() } else { s.clone() }),
        Leaf::Num(n) => json!(n),
        Leaf::Bool(b) => json!(b),
        Leaf::Null => Value::Null,
    }
}

fn map(entries: &[(u8, Leaf)]) -> Value {
    Value::Object(entries.iter().map(|(k, v)| (key(*k).to_string(), leaf(v))).collect::<Map<_, _>>())
}

fn object(s: &Svc) -> Value {
    let containers: Vec<Value> = s
        .containers
        .iter()
        .take(4)
        .map(|c| {
            let mut o = json!({"image": "img", "resources": {"limits": map(&c.limits), "requests": map(&c.requests)}});
            if let Some(n) = &c.name {
                o["name"] = json!(n);
            }
            if c.ports {
                o["ports"] = json!([{"containerPort": 8080}]);
            }
            o
        })
        .collect();
    let mut pod = json!({"containers": containers});
    if let Some(ns) = &s.node_selector {
        pod["nodeSelector"] = map(ns);
    }
    if let Some(ts) = &s.tolerations {
        let ops = ["Exists", "Equal", "Sometimes"];
        pod["tolerations"] = Value::Array(
            ts.iter()
                .map(|t| {
                    let mut o = json!({"key": key(t.key), "operator": ops[usize::from(t.operator) % 3]});
                    if t.effect {
                        o["effect"] = json!("NoSchedule");
                    }
                    o
                })
                .collect(),
        );
    }
    let template = match s.odd_template % 16 {
        0 => json!(null),
        1 => json!("not an object"),
        _ => json!({"metadata": {"annotations": map(&s.template_annotations)}, "spec": pod}),
    };
    json!({"apiVersion": "serving.knative.dev/v1", "kind": "Service",
           "metadata": {"name": "f", "namespace": "ns"}, "spec": {"template": template}})
}

fuzz_target!(|s: Svc| {
    let profiles = PlacementProfiles::default();
    let original = object(&s);
    let (p, other) = if s.gpu_first {
        (Placement::Gpu, Placement::Cpu)
    } else {
        (Placement::Cpu, Placement::Gpu)
    };
    let mut placed = original.clone();
    if apply_placement(&mut placed, p, &profiles).is_err() {
        return;
    }
    assert_eq!(ServiceView::new(&placed).placed_for(), Some(p));
    // The patch the webhook would send takes the original to the placed Service.
    let patch = json_patch::diff(&original, &placed);
    let mut patched = original.clone();
    json_patch::patch(&mut patched, &patch).expect("the diff applies");
    assert_eq!(patched, placed);
    // Idempotent, and the other placement and back is the same Service.
    let mut again = placed.clone();
    apply_placement(&mut again, p, &profiles).expect("placed once, placed twice");
    assert_eq!(again, placed);
    let mut round = placed.clone();
    apply_placement(&mut round, other, &profiles).expect("the other placement");
    apply_placement(&mut round, p, &profiles).expect("and back");
    assert_eq!(round, placed);
    // The image and the name of every container are kept.
    let images = |v: &Value| v.pointer("/spec/template/spec/containers").cloned().map(|c| {
        c.as_array().map(|a| a.iter().map(|c| (c.get("image").cloned(), c.get("name").cloned())).collect::<Vec<_>>())
    });
    assert_eq!(images(&placed), images(&original));
});
