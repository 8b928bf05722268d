//! The real `gaia-webhook` binary over real TLS, with the AdmissionReviews an apiserver sends.

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::*;

const GPU_UNGUARDED: &str = "import torch\nmodel = torch.nn.Linear(1024, 1024).cuda()\n\ndef handle(req):\n    return model(torch.rand(1, 1024, device='cuda')).sum().item()\n";
const SLEEPER: &str = "import time\n\ndef handle(req):\n    time.sleep(2)\n    return {}\n";

fn annotation<'a>(svc: &'a Value, key: &str) -> &'a Value {
    &svc["metadata"]["annotations"][key]
}

fn pod(svc: &Value) -> &Value {
    &svc["spec"]["template"]["spec"]
}

#[test]
fn kn_create_with_auto_is_classified_and_placed_on_gpu() {
    let w = Webhook::start(None);
    let svc = kn_service("chat", Some("auto"), Some(TEXT_GENERATION_INLINE));
    let resp = w.review(&admission_review("CREATE", Some(&svc), None));
    assert_eq!(resp["allowed"], true, "{resp}");
    assert!(has_patch(&resp), "{resp}");
    let out = patched(&svc, &resp);
    assert_eq!(annotation(&out, "gaia.dev/mode"), "gpu_preferred", "{out}");
    assert_eq!(annotation(&out, "gaia.dev/mode-source"), "classifier");
    let rationale = annotation(&out, "gaia.dev/rationale").as_str().unwrap();
    assert!(
        !rationale.is_empty() && !rationale.contains('\n'),
        "{rationale}"
    );
    assert!(annotation(&out, "gaia.dev/source-digest")
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    assert_eq!(
        out["spec"]["template"]["metadata"]["annotations"]["gaia.dev/placed-for"],
        "gpu"
    );
    assert_eq!(pod(&out)["nodeSelector"]["nvidia.com/gpu.present"], "true");
    assert_eq!(pod(&out)["tolerations"][0]["key"], "nvidia.com/gpu");
    assert_eq!(
        pod(&out)["containers"][0]["resources"]["limits"]["nvidia.com/gpu"],
        "1"
    );
    // the user's own fields are untouched
    assert_eq!(
        pod(&out)["containers"][0]["env"],
        pod(&svc)["containers"][0]["env"]
    );
    assert_eq!(out["spec"]["traffic"], svc["spec"]["traffic"]);

    // the webhook applied to its own output: no patch
    let again = w.review(&admission_review("CREATE", Some(&out), None));
    assert_eq!(again["allowed"], true);
    assert!(!has_patch(&again), "not idempotent: {again}");
}

#[test]
fn pure_python_is_cpu_and_unguarded_cuda_is_gpu() {
    let w = Webhook::start(None);
    for (source, mode, placement) in [(SLEEPER, "cpu", "cpu"), (GPU_UNGUARDED, "gpu", "gpu")] {
        let svc = kn_service("f", Some("auto"), Some(source));
        let out = patched(
            &svc,
            &w.review(&admission_review("CREATE", Some(&svc), None)),
        );
        assert_eq!(annotation(&out, "gaia.dev/mode"), mode, "{out}");
        assert_eq!(
            out["spec"]["template"]["metadata"]["annotations"]["gaia.dev/placed-for"],
            placement
        );
        let has_gpu_limit = pod(&out)["containers"][0]["resources"]["limits"]
            .get("nvidia.com/gpu")
            .is_some();
        assert_eq!(has_gpu_limit, placement == "gpu");
    }
}

#[test]
fn kn_update_keeps_the_autoscalers_placement() {
    let w = Webhook::start(None);
    let svc = kn_service("mm", Some("auto"), Some(SLEEPER));
    let created = patched(
        &svc,
        &w.review(&admission_review("CREATE", Some(&svc), None)),
    );
    // the autoscaler moved it to GPU (mode cpu would pin it, so pretend cpu_preferred by the user)
    let mut moved = created.clone();
    moved["metadata"]["annotations"]["gaia.dev/execution-mode"] = json!("cpu_preferred");
    moved["metadata"]["annotations"]["gaia.dev/desired-placement"] = json!("gpu");
    moved = patched(
        &moved,
        &w.review(&admission_review("UPDATE", Some(&moved), Some(&created))),
    );
    assert_eq!(annotation(&moved, "gaia.dev/mode"), "cpu_preferred");
    assert_eq!(annotation(&moved, "gaia.dev/mode-source"), "user");
    assert_eq!(
        pod(&moved)["nodeSelector"]["nvidia.com/gpu.present"],
        "true"
    );

    // `kn service update --env X=Y` rebuilds the template and drops Gaia's fields
    let mut update = moved.clone();
    update["spec"]["template"] = svc["spec"]["template"].clone();
    update["spec"]["template"]["spec"]["containers"][0]["env"] =
        json!([{"name": "TARGET", "value": "gaia"}, {"name": "X", "value": "Y"}]);
    let resp = w.review(&admission_review("UPDATE", Some(&update), Some(&moved)));
    let out = patched(&update, &resp);
    assert_eq!(
        out["spec"]["template"]["metadata"]["annotations"]["gaia.dev/placed-for"],
        "gpu"
    );
    assert_eq!(pod(&out)["nodeSelector"]["nvidia.com/gpu.present"], "true");
    assert_eq!(pod(&out)["containers"][0]["env"][1]["name"], "X");
}

#[test]
fn pinned_and_user_given_modes_win() {
    let w = Webhook::start(None);
    // the user says cpu for code the classifier calls gpu: cpu, and the rationale says both
    let mut svc = kn_service("pin", Some("cpu"), Some(GPU_UNGUARDED));
    svc["metadata"]["annotations"]["gaia.dev/desired-placement"] = json!("gpu");
    let out = patched(
        &svc,
        &w.review(&admission_review("CREATE", Some(&svc), None)),
    );
    assert_eq!(annotation(&out, "gaia.dev/mode"), "cpu");
    assert_eq!(annotation(&out, "gaia.dev/mode-source"), "user");
    let rationale = annotation(&out, "gaia.dev/rationale").as_str().unwrap();
    assert!(rationale.contains("would choose gpu"), "{rationale}");
    assert_eq!(
        out["spec"]["template"]["metadata"]["annotations"]["gaia.dev/placed-for"], "cpu",
        "a pinned mode ignores a placement annotation"
    );
    assert!(pod(&out).get("nodeSelector").is_none());
}

#[test]
fn services_not_opted_in_are_untouched() {
    let w = Webhook::start(None);
    let svc = kn_service("plain", None, Some(GPU_UNGUARDED));
    let resp = w.review(&admission_review("CREATE", Some(&svc), None));
    assert_eq!(resp["allowed"], true);
    assert!(!has_patch(&resp), "{resp}");
    assert!(resp.get("warnings").is_none());
}

#[test]
fn no_source_means_the_default_mode() {
    let w = Webhook::start(Some("defaultMode: cpu_preferred\n"));
    let svc = kn_service("nosrc", Some("auto"), None);
    let out = patched(
        &svc,
        &w.review(&admission_review("CREATE", Some(&svc), None)),
    );
    assert_eq!(annotation(&out, "gaia.dev/mode"), "cpu_preferred");
    assert_eq!(annotation(&out, "gaia.dev/mode-source"), "default");
    assert_eq!(
        annotation(&out, "gaia.dev/rationale"),
        "no source available"
    );
    assert!(out["metadata"]["annotations"]
        .get("gaia.dev/source-digest")
        .is_none());
}

#[test]
fn dry_run_and_several_containers() {
    let w = Webhook::start(None);
    let mut svc = kn_service("multi", Some("gpu"), None);
    svc["spec"]["template"]["spec"]["containers"] = json!([
        {"name": "log-shipper", "image": "dev.local/shipper"},
        {"name": "user", "image": "dev.local/gaia/multi", "ports": [{"containerPort": 8080}]}
    ]);
    let mut review = admission_review("CREATE", Some(&svc), None);
    review["request"]["dryRun"] = json!(true);
    let out = patched(&svc, &w.review(&review));
    let containers = &pod(&out)["containers"];
    assert!(containers[0].get("resources").is_none(), "{containers}");
    assert_eq!(containers[1]["resources"]["limits"]["nvidia.com/gpu"], "1");
}

#[test]
fn placement_profiles_come_from_the_config_file() {
    let w = Webhook::start(Some(
        "placement:\n  cpu:\n    nodeSelector: {gaia.dev/pool: cpu}\n  gpu:\n    nodeSelector: {gaia.dev/pool: gpu}\n    limits: {example.com/accelerator: \"2\"}\n",
    ));
    let svc = kn_service("cfg", Some("gpu"), None);
    let out = patched(
        &svc,
        &w.review(&admission_review("CREATE", Some(&svc), None)),
    );
    assert_eq!(pod(&out)["nodeSelector"], json!({"gaia.dev/pool": "gpu"}));
    assert_eq!(
        pod(&out)["containers"][0]["resources"]["limits"],
        json!({"example.com/accelerator": "2"})
    );
    assert!(pod(&out).get("tolerations").is_none());
}

#[test]
fn bad_input_gets_a_well_formed_answer_and_the_server_keeps_serving() {
    let w = Webhook::start(Some("maxBodyBytes: 4194304\n"));
    let svc = kn_service("bad", Some("auto"), None);

    // not JSON / not a review / no request: invalid, still an AdmissionReview, HTTP 200
    for body in [
        b"{not json".to_vec(),
        b"[]".to_vec(),
        br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.to_vec(),
        vec![0xff, 0xfe, 0x00, 0x80],
    ] {
        let (status, answer) = w.post(body);
        assert_eq!(status, 200);
        assert_eq!(answer["kind"], "AdmissionReview");
        assert_eq!(answer["response"]["allowed"], false, "{answer}");
        assert!(
            answer["response"]["status"]["message"]
                .as_str()
                .unwrap()
                .len()
                > 5
        );
    }

    // a Pod, a DELETE, a CREATE without object: allowed, untouched
    let mut pod_review = admission_review("CREATE", Some(&svc), None);
    pod_review["request"]["kind"] = json!({"group": "", "version": "v1", "kind": "Pod"});
    let r = w.review(&pod_review);
    assert_eq!(r["allowed"], true);
    assert!(!has_patch(&r));
    let r = w.review(&admission_review("DELETE", None, Some(&svc)));
    assert_eq!(r["allowed"], true);
    let r = w.review(&admission_review("CREATE", None, None));
    assert_eq!(r["allowed"], true);
    assert!(
        r["warnings"][0].as_str().unwrap().contains("no object"),
        "{r}"
    );

    // an unknown mode: denied with a message naming the valid ones
    let typo = kn_service("typo", Some("GPU"), None);
    let r = w.review(&admission_review("CREATE", Some(&typo), None));
    assert_eq!(r["allowed"], false);
    let msg = r["status"]["message"].as_str().unwrap();
    assert!(
        msg.contains("gpu_preferred") && msg.contains("GPU"),
        "{msg}"
    );

    // hostile source: 100k nested brackets, 2 MiB of code, binary junk: default mode, a warning
    let deep = format!("x = {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
    let big = "x = 1\n".repeat(2 * 1024 * 1024 / 6);
    let junk: String = (0..5000u32)
        .map(|i| char::from_u32(0x2400 + i % 200).unwrap_or('?'))
        .collect();
    for (what, source) in [("deep", deep), ("big", big), ("junk", junk)] {
        let s = kn_service(what, Some("auto"), Some(&source));
        let started = Instant::now();
        let r = w.review(&admission_review("CREATE", Some(&s), None));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{what} took too long"
        );
        assert_eq!(r["allowed"], true, "{what}: {r}");
        let out = patched(&s, &r);
        let mode = annotation(&out, "gaia.dev/mode").as_str().unwrap();
        assert!(
            ["cpu", "cpu_preferred"].contains(&mode),
            "{what}: mode {mode}"
        );
    }

    // a body over the limit: a well-formed review refusing it, unless the server's early answer
    // and close beat the client's upload (then the client sees the connection closed); never a
    // 5xx, never a hang
    let huge = vec![b' '; 5 * 1024 * 1024];
    match w.try_post(huge) {
        Ok((status, answer)) => {
            assert_eq!(status, 200);
            assert_eq!(answer["response"]["allowed"], false);
        }
        Err(e) => assert!(
            e.is_request() || e.is_body(),
            "unexpected error for an oversized body: {e}"
        ),
    }

    // the server still answers
    let ok = kn_service("after", Some("auto"), Some(SLEEPER));
    let r = w.review(&admission_review("CREATE", Some(&ok), None));
    assert_eq!(
        patched(&ok, &r)["metadata"]["annotations"]["gaia.dev/mode"],
        "cpu"
    );
    let metrics = w.metrics();
    assert!(
        metrics.contains("gaia_webhook_reviews_total{outcome=\"invalid\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("gaia_webhook_reviews_total{outcome=\"denied\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("gaia_webhook_review_duration_seconds_bucket"),
        "{metrics}"
    );
    assert!(
        metrics.contains("gaia_webhook_classifications_total{mode=\"cpu\",source=\"classifier\"}"),
        "{metrics}"
    );
}

#[test]
fn an_unchanged_source_is_not_reanalysed_on_update() {
    let w = Webhook::start(None);
    let svc = kn_service("cache", Some("auto"), Some(GPU_UNGUARDED));
    let created = patched(
        &svc,
        &w.review(&admission_review("CREATE", Some(&svc), None)),
    );
    // tamper with the recorded rationale: if the webhook re-analysed, it would overwrite it
    let mut update = created.clone();
    update["metadata"]["annotations"]["gaia.dev/rationale"] = json!("recorded earlier");
    update["spec"]["template"]["spec"]["containers"][0]["env"] =
        json!([{"name": "A", "value": "B"}]);
    let r = w.review(&admission_review("UPDATE", Some(&update), Some(&created)));
    assert!(!has_patch(&r), "unchanged source was re-analysed: {r}");
    // a changed source is analysed again
    let mut changed = update.clone();
    changed["metadata"]["annotations"]["gaia.dev/source"] = json!(SLEEPER);
    let out = patched(
        &changed,
        &w.review(&admission_review("UPDATE", Some(&changed), Some(&update))),
    );
    assert_eq!(annotation(&out, "gaia.dev/mode"), "cpu");
    assert_ne!(annotation(&out, "gaia.dev/rationale"), "recorded earlier");
}

#[test]
fn a_rotated_certificate_is_served_without_restart() {
    let w = Webhook::start(None);
    let first = w.client();
    assert!(first.get(w.url("/healthz")).send().is_ok());
    let rotated = Pki::new("rotated");
    rotated.write(w.dir.path());
    let client = client_trusting(&rotated.ca_pem);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if client.get(w.url("/healthz")).send().is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "new certificate never served");
        std::thread::sleep(Duration::from_millis(200));
    }
    // and the old CA is no longer trusted by the server's new certificate
    assert!(client_trusting(&w.pki.ca_pem)
        .get(w.url("/healthz"))
        .send()
        .is_err());
}

#[test]
fn after_sigterm_it_answers_not_ready_until_the_delay_is_over() {
    // what a terminating pod does while Kubernetes removes it from the Service's endpoints
    let mut w = Webhook::start_with(None, &["--shutdown-delay-seconds", "2"]);
    let ready = |w: &Webhook| {
        w.client()
            .get(w.url("/readyz"))
            .send()
            .map(|r| r.status().as_u16())
    };
    assert_eq!(ready(&w).ok(), Some(200));
    let signalled = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &w.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(1);
    while ready(&w).ok() != Some(503) {
        assert!(
            Instant::now() < deadline,
            "/readyz still ready after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // a review sent now, inside the delay, is still classified
    let svc = kn_service("late", Some("auto"), Some(SLEEPER));
    let resp = w.review(&admission_review("CREATE", Some(&svc), None));
    assert!(
        signalled.elapsed() < Duration::from_secs(2),
        "the review came too late to tell"
    );
    assert_eq!(
        annotation(&patched(&svc, &resp), "gaia.dev/mode"),
        "cpu",
        "{resp}"
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(code) = w.child.try_wait().expect("wait") {
            assert!(code.success(), "exit status {code}");
            break;
        }
        assert!(Instant::now() < deadline, "did not exit after the delay");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        signalled.elapsed() >= Duration::from_secs(2),
        "exited before the delay"
    );
}

#[test]
fn sigterm_drains_and_exits_cleanly() {
    let mut w = Webhook::start(None);
    let svc = kn_service("drain", Some("auto"), Some(TEXT_GENERATION_INLINE));
    let review = serde_json::to_vec(&admission_review("CREATE", Some(&svc), None)).unwrap();
    let url = w.url("/mutate");
    let client = w.client();
    // requests in flight while the signal arrives all get complete answers
    let senders: Vec<_> = (0..8)
        .map(|_| {
            let (c, u, b) = (client.clone(), url.clone(), review.clone());
            std::thread::spawn(move || c.post(u).body(b).send().and_then(|r| r.text()))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(20));
    let status = std::process::Command::new("kill")
        .args(["-TERM", &w.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    for s in senders {
        if let Ok(text) = s.join().expect("thread") {
            let v: Value = serde_json::from_str(&text).expect("complete JSON answer");
            assert_eq!(v["response"]["allowed"], true);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(code) = w.child.try_wait().expect("wait") {
            assert!(code.success(), "exit status {code}");
            break;
        }
        assert!(Instant::now() < deadline, "did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}
