//! Review latency of a Service whose code is only in its image: cold (an image digest never
//! seen: manifest, config and layers read from the registry on loopback) and cached (the same
//! digest again: the tag resolved lately, then the cache), p50/p99, and the bytes read per
//! image. Each image is the function's code over a 1 GiB dependency layer (torch-like: a couple
//! of thousand small modules, then large shared libraries, gzip) and a small base layer.
//!
//! `cargo bench -p gaia-webhook --bench image_review [-- COLD_IMAGES CACHED_REVIEWS]`
//! (a real docker-registry and the release gaia-webhook; not a timed test). Figures and the
//! machine they came from: docs/image-source.md.

#[path = "../../image-source/tests/support/mod.rs"]
mod registry;
#[path = "../tests/support/mod.rs"]
mod support;

use std::io::Write;
use std::time::{Duration, Instant};

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::manifest::{OciDescriptor, OciImageManifest, OciManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use serde_json::json;
use sha2::Digest;

const DEPENDENCY_BYTES: usize = 1 << 30;

fn sha(data: &[u8]) -> String {
    let mut out = String::from("sha256:");
    for b in sha2::Sha256::digest(data) {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// The dependency layer: 2,000 small modules, then 1 GiB of incompressible libraries, gzip.
fn dependency_layer() -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::with_capacity(DEPENDENCY_BYTES + (8 << 20)));
    let mut add = |path: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_764_547_200);
        tar.append_data(&mut h, path, data).expect("entry");
    };
    for i in 0..2000 {
        add(
            &format!("usr/local/lib/python3.11/site-packages/torch/_mod{i:04}.py"),
            b"import torch\n",
        );
    }
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut blob = vec![0u8; 64 << 20];
    for i in 0..(DEPENDENCY_BYTES / blob.len()) {
        for chunk in blob.chunks_mut(8) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            chunk.copy_from_slice(&seed.to_le_bytes()[..chunk.len()]);
        }
        add(
            &format!("usr/local/lib/python3.11/site-packages/torch/lib/libtorch_{i}.so"),
            &blob,
        );
    }
    let tar = tar.into_inner().expect("tar");
    let mut gz =
        flate2::write::GzEncoder::new(Vec::with_capacity(tar.len()), flate2::Compression::fast());
    gz.write_all(&tar).expect("gzip");
    gz.finish().expect("gzip")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let cold_images = args.first().copied().unwrap_or(30);
    let cached_reviews = args.get(1).copied().unwrap_or(300);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let reg = registry::Registry::start(None);
    gaia_image_source::registry::ensure_crypto_provider();
    let client = Client::new(ClientConfig {
        protocol: ClientProtocol::Http,
        ..ClientConfig::default()
    });
    let repo = reg.reference("bench/fn:base");
    let reference: Reference = repo.parse().expect("reference");
    let auth = RegistryAuth::Anonymous;

    eprintln!("building the 1 GiB dependency layer ...");
    let deps = dependency_layer();
    let base = registry::gzip(&registry::tar(&registry::base_layer()));
    let deps_digest = sha(&deps);
    let base_digest = sha(&base);
    let descriptor = |digest: &str, size: usize| OciDescriptor {
        media_type: registry::GZIP.into(),
        digest: digest.into(),
        size: size as i64,
        ..OciDescriptor::default()
    };
    rt.block_on(async {
        client
            .auth(&reference, &auth, oci_client::RegistryOperation::Push)
            .await
            .expect("auth");
        client
            .push_blob(&reference, base.clone(), &base_digest)
            .await
            .expect("base");
        client
            .push_blob(&reference, deps.clone(), &deps_digest)
            .await
            .expect("deps");
    });
    let deps_size = deps.len();
    drop(deps);
    eprintln!("pushing {cold_images} function images over it ...");
    let mut tags = Vec::new();
    for i in 0..=cold_images {
        let code = registry::gzip(&registry::tar(&[
            registry::file(
                "app/func.py",
                &format!(
                    "# build {i}\nfrom model import net\n\ndef handle(req):\n    return net(req)\n"
                ),
            ),
            registry::file(
                "app/model.py",
                "import torch\nnet = torch.nn.Linear(8, 8).cuda()\n",
            ),
        ]));
        let code_digest = sha(&code);
        let config = serde_json::to_vec(&json!({
            "architecture": "amd64", "os": "linux",
            "config": {"WorkingDir": "/app", "Cmd": ["python3", "func.py"]},
            "rootfs": {"type": "layers", "diff_ids": [base_digest, deps_digest, code_digest]},
        }))
        .expect("config");
        let config_digest = sha(&config);
        let manifest = OciImageManifest {
            config: OciDescriptor {
                media_type: "application/vnd.oci.image.config.v1+json".into(),
                digest: config_digest.clone(),
                size: config.len() as i64,
                ..OciDescriptor::default()
            },
            layers: vec![
                descriptor(&base_digest, base.len()),
                descriptor(&deps_digest, deps_size),
                descriptor(&code_digest, code.len()),
            ],
            ..OciImageManifest::default()
        };
        let tag = reg.reference(&format!("bench/fn:v{i}"));
        let r: Reference = tag.parse().expect("reference");
        rt.block_on(async {
            client
                .push_blob(&r, code, &code_digest)
                .await
                .expect("code");
            client
                .push_blob(&r, config, &config_digest)
                .await
                .expect("config");
            client
                .push_manifest(&r, &OciManifest::Image(manifest))
                .await
                .expect("manifest");
        });
        tags.push(tag);
    }

    let w = support::Webhook::start(Some(&format!(
        "image:\n  registries:\n    plainHttp: [\"{}\"]\n",
        reg.addr
    )));
    let http = w.client();
    let review = |image: &str| {
        let mut svc = support::kn_service("bench", Some("auto"), None);
        svc["spec"]["template"]["spec"]["containers"][0]["image"] = json!(image);
        let started = Instant::now();
        let response = w.review_on(
            &http,
            &support::admission_review("CREATE", Some(&svc), None),
        );
        let took = started.elapsed();
        let out = support::patched(&svc, &response);
        let classified = out["metadata"]["annotations"]["gaia.dev/mode-source"] == "classifier";
        (took, classified)
    };
    // Warm the connection and the process (not counted).
    review(&tags[0]);
    let mut cold = Vec::new();
    let mut cold_missed = 0;
    for tag in &tags[1..] {
        let (took, classified) = review(tag);
        cold.push(took);
        cold_missed += usize::from(!classified);
    }
    let mut cached = Vec::new();
    for _ in 0..cached_reviews {
        let (took, classified) = review(&tags[1]);
        assert!(classified, "a cached image must be classified");
        cached.push(took);
    }
    let mut inline = Vec::new();
    let src = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/inline_function.py"
    ))
    .expect("fixture");
    for _ in 0..cached_reviews {
        let svc = support::kn_service("bench", Some("auto"), Some(&src));
        let started = Instant::now();
        w.review_on(
            &http,
            &support::admission_review("CREATE", Some(&svc), None),
        );
        inline.push(started.elapsed());
    }
    let log = std::fs::read_to_string(&w.log).unwrap_or_default();
    let mut downloaded: Vec<u64> = log
        .lines()
        .filter(|l| l.contains("image read"))
        .filter_map(|l| {
            l.split("downloaded=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect();
    downloaded.sort_unstable();
    cold.sort();
    cached.sort();
    inline.sort();
    println!(
        "image: base + {} MiB gzip dependency layer (2,000 modules, then libraries) + code layer",
        deps_size >> 20
    );
    println!("| review | n | p50 | p99 | max |");
    println!("|---|---|---|---|---|");
    for (name, v) in [
        ("cold (image never read)", &cold),
        ("cached (same digest)", &cached),
        ("inline annotation (for comparison)", &inline),
    ] {
        println!(
            "| {name} | {} | {} | {} | {} |",
            v.len(),
            ms(percentile(v, 0.5)),
            ms(percentile(v, 0.99)),
            ms(*v.last().expect("samples"))
        );
    }
    println!("cold reviews past the 1.5 s deadline (default mode, read finished in the background): {cold_missed}");
    if !downloaded.is_empty() {
        println!(
            "bytes downloaded per image read: min {} / median {} / max {} (of {} in the image)",
            downloaded[0],
            downloaded[downloaded.len() / 2],
            downloaded[downloaded.len() - 1],
            deps_size + base.len()
        );
    }
    drop(w);
    if std::env::var_os("KUBECONFIG").is_some() {
        side_by_side(&rt, &reg.addr, &tags[1], cached_reviews);
    } else {
        println!("(KUBECONFIG unset: no side-by-side run with the ConfigMap path)");
    }
}

/// The same code as a mounted ConfigMap and in a cached image, reviewed by one webhook that
/// uses the API (`KUBECONFIG`: e.g. the local cluster's, `eval "$(hack/cluster.sh env)"`),
/// interleaved round by round so that the machine's drift hits every path alike.
fn side_by_side(rt: &tokio::runtime::Runtime, registry: &str, image: &str, rounds: usize) {
    use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
    use kube::api::{Api, DeleteParams, PostParams};
    const CONFIGMAP: &str = "gaia-bench-fn";
    let client = rt
        .block_on(kube::Client::try_default())
        .expect("a Kubernetes client from KUBECONFIG");
    let namespace: Namespace =
        serde_json::from_value(json!({"metadata": {"name": "demo"}})).expect("namespace");
    let code: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": CONFIGMAP, "namespace": "demo"},
        "data": {
            "func.py": "# configmap\nfrom model import net\n\ndef handle(req):\n    return net(req)\n",
            "model.py": "import torch\nnet = torch.nn.Linear(8, 8).cuda()\n",
        },
    }))
    .expect("configmap");
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), "demo");
    rt.block_on(async {
        let created = Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &namespace)
            .await;
        if let Err(e) = created {
            assert!(
                matches!(&e, kube::Error::Api(a) if a.code == 409),
                "namespace demo: {e}"
            );
        }
        let _ = configmaps.delete(CONFIGMAP, &DeleteParams::default()).await;
        configmaps
            .create(&PostParams::default(), &code)
            .await
            .expect("create the ConfigMap");
    });
    let start = |ttl: &str| {
        support::Webhook::start_full(
            Some(&format!(
                "image:\n  tagTtl: {ttl}\n  registries:\n    plainHttp: [\"{registry}\"]\n"
            )),
            &["--shutdown-delay-seconds", "0"],
            true,
        )
    };
    let (w, every) = (start("30s"), start("0s"));
    let (http, http_every) = (w.client(), every.client());
    let timed_on = |w: &support::Webhook,
                    http: &reqwest::blocking::Client,
                    svc: &serde_json::Value,
                    origin: &str| {
        let started = Instant::now();
        let response = w.review_on(http, &support::admission_review("CREATE", Some(svc), None));
        let took = started.elapsed();
        let out = support::patched(svc, &response);
        let annotations = &out["metadata"]["annotations"];
        assert_eq!(annotations["gaia.dev/mode-source"], "classifier", "{out}");
        let read = annotations["gaia.dev/source-origin"].as_str().unwrap_or("");
        assert!(read.starts_with(origin), "read {read}, expected {origin}");
        took
    };
    let timed = |svc: &serde_json::Value, origin: &str| timed_on(&w, &http, svc, origin);
    let mut from_configmap = support::kn_service("bench", Some("auto"), None);
    let template = &mut from_configmap["spec"]["template"]["spec"];
    template["volumes"] = json!([{"name": "code", "configMap": {"name": CONFIGMAP}}]);
    template["containers"][0]["volumeMounts"] = json!([{"name": "code", "mountPath": "/app"}]);
    let mut from_image = support::kn_service("bench", Some("auto"), None);
    from_image["spec"]["template"]["spec"]["containers"][0]["image"] = json!(image);
    // Warm both paths (connections, caches), not counted.
    timed(&from_configmap, "configmap");
    timed(&from_image, "image");
    timed_on(&every, &http_every, &from_image, "image");
    let (mut cm, mut img, mut resolving) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        cm.push(timed(&from_configmap, "configmap"));
        img.push(timed(&from_image, "image"));
        resolving.push(timed_on(&every, &http_every, &from_image, "image"));
    }
    cm.sort();
    img.sort();
    resolving.sort();
    println!("side by side, one webhook with the API, interleaved:");
    println!("| review | n | p50 | p99 | max |");
    println!("|---|---|---|---|---|");
    for (name, v) in [
        ("ConfigMap volume (one GET from the apiserver)", &cm),
        ("image, cached, tag resolved lately (tagTtl 30s)", &img),
        (
            "image, cached, tag resolved every review (tagTtl 0s)",
            &resolving,
        ),
    ] {
        println!(
            "| {name} | {} | {} | {} | {} |",
            v.len(),
            ms(percentile(v, 0.5)),
            ms(percentile(v, 0.99)),
            ms(*v.last().expect("samples"))
        );
    }
    rt.block_on(async {
        let _ = configmaps.delete(CONFIGMAP, &DeleteParams::default()).await;
    });
}
