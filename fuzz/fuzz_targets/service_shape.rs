//! A Knative Service-shaped object from arbitrary bytes: containers with and without names and
//! ports, any limits and requests, nodeSelectors, tolerations, odd templates. Shared by
//! `placement_patch` and `admission_review` (its structure-aware half); not every target uses
//! every helper.
#![allow(dead_code)]

use arbitrary::Arbitrary;
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
pub enum Leaf {
    Str(u8, String),
    Num(i32),
    Bool(bool),
    Null,
}

#[derive(Debug, Arbitrary)]
pub struct Container {
    pub name: Option<String>,
    pub ports: bool,
    pub limits: Vec<(u8, Leaf)>,
    pub requests: Vec<(u8, Leaf)>,
}

#[derive(Debug, Arbitrary)]
pub struct Toleration {
    pub key: u8,
    pub operator: u8,
    pub effect: bool,
}

#[derive(Debug, Arbitrary)]
pub struct Svc {
    pub template_annotations: Vec<(u8, Leaf)>,
    pub node_selector: Option<Vec<(u8, Leaf)>>,
    pub tolerations: Option<Vec<Toleration>>,
    pub containers: Vec<Container>,
    pub gpu_first: bool,
    pub odd_template: u8,
}

pub fn key(i: u8) -> &'static str {
    KEYS[usize::from(i) % KEYS.len()]
}

pub fn leaf(l: &Leaf) -> Value {
    match l {
        Leaf::Str(i, s) => Value::String(if s.is_empty() {
            key(*i).into()
        } else {
            s.clone()
        }),
        Leaf::Num(n) => json!(n),
        Leaf::Bool(b) => json!(b),
        Leaf::Null => Value::Null,
    }
}

pub fn map(entries: &[(u8, Leaf)]) -> Value {
    Value::Object(
        entries
            .iter()
            .map(|(k, v)| (key(*k).to_string(), leaf(v)))
            .collect::<Map<_, _>>(),
    )
}

pub fn object(s: &Svc) -> Value {
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
                    let mut o =
                        json!({"key": key(t.key), "operator": ops[usize::from(t.operator) % 3]});
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
