//! The webhook reading a Service's code from its image on a real registry (Debian's
//! `docker-registry` on loopback): classified from the image, the registry down, and an image
//! read after the review's deadline.

#[path = "../../image-source/tests/support/mod.rs"]
mod registry;
mod support;

use std::time::{Duration, Instant};

use registry::{base_layer, file, Image, Registry, GZIP, TAR};
use serde_json::{json, Value};
use support::*;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn image_service(name: &str, image: &str) -> Value {
    let mut s = kn_service(name, Some("auto"), None);
    s["spec"]["template"]["spec"]["containers"][0]["image"] = json!(image);
    s
}

fn gpu_function() -> Image {
    Image::new("/app", &["python3", "func.py"])
        .layer(TAR, &base_layer())
        .layer(
            GZIP,
            &[
                file(
                    "app/func.py",
                    "from model import net\n\ndef handle(req):\n    return net(req)\n",
                ),
                file(
                    "app/model.py",
                    "import torch\nnet = torch.nn.Linear(8, 8).cuda()\n",
                ),
            ],
        )
}

fn annotations(svc: &Value) -> &Value {
    &svc["metadata"]["annotations"]
}

#[test]
fn a_service_with_its_code_only_in_the_image_is_classified_from_it() {
    let rt = runtime();
    let reg = Registry::start(None);
    let digest = rt.block_on(reg.push("fn/gpu:v1", &gpu_function()));
    let w = Webhook::start(Some(&format!(
        "image:\n  registries:\n    plainHttp: [\"{}\"]\n",
        reg.addr
    )));
    let svc = image_service("imgfn", &reg.reference("fn/gpu:v1"));
    // Cold: within the deadline on an idle machine; a debug build on a loaded one may need the
    // next review (the read goes on in the background).
    let until = Instant::now() + Duration::from_secs(30);
    let mut round = 0;
    loop {
        let started = Instant::now();
        let response = w.review(&admission_review("CREATE", Some(&svc), None));
        let took = started.elapsed();
        assert_eq!(response["allowed"], true, "{response}");
        let out = patched(&svc, &response);
        eprintln!("round {round}: {took:?}");
        round += 1;
        let a = annotations(&out);
        if a["gaia.dev/mode-source"] != "classifier" {
            assert!(pending(&response["warnings"].to_string()), "{response}");
            assert!(Instant::now() < until, "never classified: {response}");
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        assert_eq!(a["gaia.dev/mode"], "gpu", "{response}");
        assert_eq!(
            a["gaia.dev/source-origin"],
            format!("image:{}", reg.reference("fn/gpu:v1"))
        );
        assert_eq!(a["gaia.dev/image-digest"], digest.as_str());
        let findings = a["gaia.dev/findings"].as_str().expect("findings");
        assert!(findings.contains("app/model.py"), "{findings}");
        if round >= 3 {
            break;
        }
    }
}

/// The warning of a review that stopped waiting for an image: its read is still going on, or
/// (on a loaded machine, with a short deadline) the registry had not even resolved the tag yet.
fn pending(warnings: &str) -> bool {
    warnings.contains("not read within") || warnings.contains("did not answer within")
}

#[test]
fn a_registry_that_is_down_gives_the_default_mode_and_a_warning() {
    let port = free_port();
    let w = Webhook::start(Some(&format!(
        "image:\n  registries:\n    plainHttp: [\"127.0.0.1:{port}\"]\n"
    )));
    let svc = image_service("downfn", &format!("127.0.0.1:{port}/fn/x:v1"));
    let started = Instant::now();
    let response = w.review(&admission_review("CREATE", Some(&svc), None));
    // Well within the apiserver's timeoutSeconds (5 s in the recommended registration): the
    // refused connection is not waited out (the 1.5 s review budget plus the machine's noise).
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(response["allowed"], true);
    let out = patched(&svc, &response);
    assert_eq!(annotations(&out)["gaia.dev/mode"], "cpu_preferred");
    assert_eq!(annotations(&out)["gaia.dev/mode-source"], "default");
    // refused at once, or (on a loaded machine) no answer within the budget: either way the
    // warning names the registry
    let warnings = response["warnings"].to_string();
    assert!(
        warnings.contains(&format!("registry 127.0.0.1:{port}")),
        "{warnings}"
    );
}

#[test]
fn an_image_read_after_the_deadline_is_used_by_the_next_review() {
    let rt = runtime();
    let reg = Registry::start(None);
    // 48 MiB of dependencies above the code: the read takes longer than a 50 ms review.
    let deps: Vec<registry::Entry<'_>> = (0..3)
        .map(|i| {
            let name: &'static str =
                Box::leak(format!("usr/lib/python3/dist-packages/big/lib{i}.so").into_boxed_str());
            registry::Entry::File(name, vec![7u8; 16 << 20])
        })
        .collect();
    let image = gpu_function().layer(TAR, &deps);
    rt.block_on(reg.push("fn/slow:v1", &image));
    let w = Webhook::start(Some(&format!(
        "reviewDeadline: 50ms\nimage:\n  registries:\n    plainHttp: [\"{}\"]\n  limits:\n    peekBytes: 60000000\n",
        reg.addr
    )));
    let svc = image_service("slowfn", &reg.reference("fn/slow:v1"));
    let response = w.review(&admission_review("CREATE", Some(&svc), None));
    assert_eq!(response["allowed"], true);
    let warnings = response["warnings"].to_string();
    assert!(pending(&warnings), "{warnings}");
    assert_eq!(
        annotations(&patched(&svc, &response))["gaia.dev/mode-source"],
        "default"
    );
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let response = w.review(&admission_review("CREATE", Some(&svc), None));
        let out = patched(&svc, &response);
        if annotations(&out)["gaia.dev/mode-source"] == "classifier" {
            assert_eq!(annotations(&out)["gaia.dev/mode"], "gpu");
            break;
        }
        if Instant::now() > until {
            let log = std::fs::read_to_string(&w.log).unwrap_or_default();
            let tail: Vec<&str> = log
                .lines()
                .filter(|l| !l.contains("patched"))
                .take(30)
                .collect();
            panic!("never classified: {response}\n{}", tail.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn cpu_function() -> Image {
    Image::new("/app", &["python3", "func.py"])
        .layer(TAR, &base_layer())
        .layer(
            GZIP,
            &[file(
                "app/func.py",
                "import json\n\ndef handle(req):\n    return json.dumps(req)\n",
            )],
        )
}

/// Reviews until the image is classified (a cold read may miss a debug build's deadline).
fn classified(w: &Webhook, svc: &Value) -> Value {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let out = patched(svc, &w.review(&admission_review("CREATE", Some(svc), None)));
        if annotations(&out)["gaia.dev/mode-source"] == "classifier" {
            return out;
        }
        assert!(Instant::now() < until, "never classified: {out}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_moved_tag_is_seen_by_the_review_after_the_background_check() {
    let rt = runtime();
    let reg = Registry::start(None);
    let old = rt.block_on(reg.push("fn/moving:latest", &cpu_function()));
    let w = Webhook::start(Some(&format!(
        "image:\n  registries:\n    plainHttp: [\"{}\"]\n",
        reg.addr
    )));
    let svc = image_service("movingfn", &reg.reference("fn/moving:latest"));
    let first = classified(&w, &svc);
    assert_eq!(annotations(&first)["gaia.dev/mode"], "cpu");
    assert_eq!(annotations(&first)["gaia.dev/image-digest"], old.as_str());
    // Read once more so that the new digest's verdict is in the cache too, then move the tag.
    let new = rt.block_on(reg.push("fn/moving:latest", &gpu_function()));
    classified(
        &w,
        &image_service("pinned", &format!("{}@{new}", reg.reference("fn/moving"))),
    );
    // Within the tag's TTL the remembered digest answers (no registry on the review's path),
    // and the registry is asked in the background; a later review sees the moved tag.
    let until = Instant::now() + Duration::from_secs(10);
    let mut answers = Vec::new();
    loop {
        let out = classified(&w, &svc);
        let digest = annotations(&out)["gaia.dev/image-digest"]
            .as_str()
            .unwrap_or("")
            .to_string();
        answers.push(digest.clone());
        if digest == new {
            assert_eq!(annotations(&out)["gaia.dev/mode"], "gpu");
            break;
        }
        assert_eq!(digest, old, "{answers:?}");
        assert!(
            Instant::now() < until,
            "the moved tag never seen: {answers:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        answers.first(),
        Some(&old),
        "the first review after the move used the remembered digest"
    );
}

#[test]
fn with_no_tag_ttl_every_review_resolves_the_tag() {
    let rt = runtime();
    let reg = Registry::start(None);
    let old = rt.block_on(reg.push("fn/moving:latest", &cpu_function()));
    let w = Webhook::start(Some(&format!(
        "image:\n  tagTtl: 0s\n  registries:\n    plainHttp: [\"{}\"]\n",
        reg.addr
    )));
    let svc = image_service("movingfn", &reg.reference("fn/moving:latest"));
    assert_eq!(
        annotations(&classified(&w, &svc))["gaia.dev/image-digest"],
        old.as_str()
    );
    let new = rt.block_on(reg.push("fn/moving:latest", &gpu_function()));
    let out = classified(&w, &svc);
    assert_eq!(annotations(&out)["gaia.dev/image-digest"], new.as_str());
    assert_eq!(annotations(&out)["gaia.dev/mode"], "gpu");
}
