//! Test support: runs the real `gaia-webhook` binary over real TLS and builds the
//! AdmissionReviews an apiserver sends for `kn service create` / `kn service update`.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

/// A CA and a serving certificate for 127.0.0.1/localhost, as PEM.
pub struct Pki {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl Pki {
    pub fn new(name: &str) -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, format!("{name} test CA"));
        let ca_cert = ca.self_signed(&ca_key).expect("CA cert");
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate().expect("key");
        let mut leaf =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .expect("leaf params");
        leaf.distinguished_name.push(DnType::CommonName, name);
        let cert = leaf.signed_by(&key, &issuer).expect("leaf cert");
        Pki {
            ca_pem: ca_cert.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    pub fn write(&self, dir: &Path) -> (PathBuf, PathBuf) {
        let cert = dir.join("tls.crt");
        let key = dir.join("tls.key");
        // write to a temp name and rename, as a Secret volume update does
        for (path, text) in [(&cert, &self.cert_pem), (&key, &self.key_pem)] {
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, text).expect("write pem");
            std::fs::rename(&tmp, path).expect("rename pem");
        }
        (cert, key)
    }
}

/// A running `gaia-webhook` process, stopped on drop.
pub struct Webhook {
    pub child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub pki: Pki,
    pub log: PathBuf,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl Webhook {
    pub fn start(config_yaml: Option<&str>) -> Webhook {
        Webhook::start_with(config_yaml, &["--shutdown-delay-seconds", "0"])
    }

    /// Started with more command-line arguments.
    pub fn start_with(config_yaml: Option<&str>, args: &[&str]) -> Webhook {
        Webhook::start_full(config_yaml, args, false)
    }

    /// With `kube`, the webhook uses the Kubernetes API named by `KUBECONFIG` (ConfigMap
    /// sources, namespace labels); without it, none.
    pub fn start_full(config_yaml: Option<&str>, args: &[&str], kube: bool) -> Webhook {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = Pki::new("gaia-webhook");
        let (cert, key) = pki.write(dir.path());
        let port = free_port();
        let log = dir.path().join("webhook.log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gaia-webhook"));
        cmd.args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--tls-cert")
            .arg(&cert)
            .arg("--tls-key")
            .arg(&key)
            .args(["--kube", if kube { "true" } else { "false" }])
            .args(["--drain-seconds", "5"])
            .args(args);
        if let Some(text) = config_yaml {
            let path = dir.path().join("config.yaml");
            std::fs::write(&path, text).expect("config");
            cmd.arg("--config").arg(path);
        }
        let out = std::fs::File::create(&log).expect("log file");
        cmd.stdout(out.try_clone().expect("log")).stderr(out);
        cmd.stdin(Stdio::null());
        let child = cmd.spawn().expect("start gaia-webhook");
        let w = Webhook {
            child,
            port,
            dir,
            pki,
            log,
        };
        w.wait_healthy();
        w
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }

    pub fn client(&self) -> reqwest::blocking::Client {
        client_trusting(&self.pki.ca_pem)
    }

    pub fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = self.client();
        while Instant::now() < deadline {
            if let Ok(r) = client.get(self.url("/healthz")).send() {
                if r.status().is_success() {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "gaia-webhook did not become healthy; log:\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    /// Posts a body to /mutate; the transport error, if the server closed the connection first.
    pub fn try_post(
        &self,
        body: impl Into<reqwest::blocking::Body>,
    ) -> Result<(u16, Value), reqwest::Error> {
        let r = self
            .client()
            .post(self.url("/mutate"))
            .header("content-type", "application/json")
            .body(body)
            .send()?;
        let status = r.status().as_u16();
        let text = r.text()?;
        let v: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("answer is not JSON ({e}): {text}"));
        Ok((status, v))
    }

    /// Posts a body to /mutate; returns the HTTP status and the parsed AdmissionReview.
    pub fn post(&self, body: impl Into<reqwest::blocking::Body>) -> (u16, Value) {
        self.post_on(&self.client(), body)
    }

    /// On a given client: one kept-alive connection for many reviews, as the apiserver does.
    pub fn post_on(
        &self,
        client: &reqwest::blocking::Client,
        body: impl Into<reqwest::blocking::Body>,
    ) -> (u16, Value) {
        let r = client
            .post(self.url("/mutate"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .expect("POST /mutate");
        let status = r.status().as_u16();
        let text = r.text().expect("body");
        let v: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("answer is not JSON ({e}): {text}"));
        (status, v)
    }

    /// Sends a review and checks the envelope every answer must have.
    pub fn review(&self, review: &Value) -> Value {
        self.review_on(&self.client(), review)
    }

    /// [`Webhook::review`] on a given client (see [`Webhook::post_on`]).
    pub fn review_on(&self, client: &reqwest::blocking::Client, review: &Value) -> Value {
        let (status, answer) = self.post_on(client, serde_json::to_vec(review).expect("json"));
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["apiVersion"], "admission.k8s.io/v1", "{answer}");
        assert_eq!(answer["kind"], "AdmissionReview", "{answer}");
        assert_eq!(
            answer["response"]["uid"], review["request"]["uid"],
            "{answer}"
        );
        answer["response"].clone()
    }

    pub fn metrics(&self) -> String {
        self.client()
            .get(self.url("/metrics"))
            .send()
            .and_then(|r| r.text())
            .expect("metrics")
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn client_trusting(ca_pem: &str) -> reqwest::blocking::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("CA pem");
    reqwest::blocking::Client::builder()
        .tls_certs_only([ca])
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// The JSON patch of an answer, decoded, applied to `object`.
pub fn patched(object: &Value, response: &Value) -> Value {
    let mut out = object.clone();
    let bytes = match response.get("patch") {
        None => return out,
        // Go's encoding/json reads []byte from a base64 string or from an array of numbers;
        // kube-core writes the latter.
        Some(Value::String(b64)) => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("base64 patch"),
        Some(Value::Array(numbers)) => numbers
            .iter()
            .map(|n| n.as_u64().and_then(|n| u8::try_from(n).ok()).expect("byte"))
            .collect(),
        Some(other) => panic!("patch is neither base64 nor bytes: {other}"),
    };
    assert_eq!(response["patchType"], "JSONPatch");
    let patch: json_patch::Patch = serde_json::from_slice(&bytes).expect("patch json");
    json_patch::patch(&mut out, &patch).expect("patch applies");
    out
}

pub fn has_patch(response: &Value) -> bool {
    response.get("patch").is_some()
}

/// A Service as `kn service create NAME --image IMAGE --annotation gaia.dev/execution-mode=MODE`
/// sends it (kn puts `--annotation` on the Service and on the revision template).
pub fn kn_service(name: &str, mode: Option<&str>, source: Option<&str>) -> Value {
    let mut annotations = serde_json::Map::new();
    if let Some(m) = mode {
        annotations.insert("gaia.dev/execution-mode".into(), json!(m));
    }
    let mut template_annotations = annotations.clone();
    template_annotations.insert(
        "client.knative.dev/updateTimestamp".into(),
        json!("2026-11-22T10:00:00Z"),
    );
    template_annotations.insert(
        "client.knative.dev/user-image".into(),
        json!(format!("dev.local/gaia/{name}")),
    );
    if let Some(s) = source {
        annotations.insert("gaia.dev/source".into(), json!(s));
    }
    json!({
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "demo", "annotations": annotations, "creationTimestamp": null},
        "spec": {
            "template": {
                "metadata": {"annotations": template_annotations, "creationTimestamp": null},
                "spec": {"containers": [{
                    "image": format!("dev.local/gaia/{name}"),
                    "name": "",
                    "resources": {},
                    "env": [{"name": "TARGET", "value": "gaia"}]
                }]}
            },
            "traffic": [{"latestRevision": true, "percent": 100}]
        },
        "status": {}
    })
}

static UID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// The AdmissionReview an apiserver sends for this operation.
pub fn admission_review(operation: &str, object: Option<&Value>, old: Option<&Value>) -> Value {
    let n = UID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = object
        .or(old)
        .and_then(|o| o.pointer("/metadata/name"))
        .cloned()
        .unwrap_or(json!("f"));
    let options_kind = match operation {
        "CREATE" => "CreateOptions",
        "UPDATE" => "UpdateOptions",
        _ => "DeleteOptions",
    };
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": format!("0d3c3f5e-8a9b-4c1d-9e2f-{n:012}"),
            "kind": {"group": "serving.knative.dev", "version": "v1", "kind": "Service"},
            "resource": {"group": "serving.knative.dev", "version": "v1", "resource": "services"},
            "requestKind": {"group": "serving.knative.dev", "version": "v1", "kind": "Service"},
            "requestResource": {"group": "serving.knative.dev", "version": "v1", "resource": "services"},
            "name": name,
            "namespace": "demo",
            "operation": operation,
            "userInfo": {"username": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"]},
            "object": object,
            "oldObject": old,
            "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": options_kind, "fieldManager": "kn"}
        }
    })
}

/// The ~60-line function used in the benchmark and tests: guarded CUDA, a large model.
pub const TEXT_GENERATION_INLINE: &str = include_str!("../fixtures/inline_function.py");
