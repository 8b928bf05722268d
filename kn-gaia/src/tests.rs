//! Rendering of `kn gaia status` and `kn gaia explain` from fixture Services and Events, and
//! the degraded cases (not opted in, nothing opted in, unreadable annotations, Prometheus down).

use serde_json::{json, Value};

use crate::cluster::{sort_events, ServiceEvent};
use crate::explain::{self, Explanation};
use crate::prom::Current;
use crate::status::{self, Format, Report, ServiceStatus};

fn now() -> jiff::Timestamp {
    "2026-11-22T21:00:00Z".parse().expect("fixture time")
}

fn matmul() -> Value {
    json!({
        "apiVersion": "serving.knative.dev/v1", "kind": "Service",
        "metadata": {"name": "matmul", "namespace": "demo", "annotations": {
            "gaia.dev/execution-mode": "auto",
            "gaia.dev/mode": "gpu_preferred",
            "gaia.dev/mode-source": "classifier",
            "gaia.dev/rationale": "GPU use with a CPU path: gpu_preferred",
            "gaia.dev/findings": r#"[{"kind":"gpu_call","file":"func.py","line":7,"detail":".to(device)","guarded":true},{"kind":"import","file":"lib/model.py","line":1,"detail":"import torch","future":1},{"file":"x.py"}]"#,
            "gaia.dev/source-digest": "sha256:abc",
            "gaia.dev/placement": "gpu",
            "gaia.dev/observed": r#"{"cpu":{"p95Ms":1234.5,"rps":2.0,"at":"2026-11-22T20:00:00Z"},"gpu":{"p95Ms":80,"at":"2026-11-22T20:10:00Z"},"lastMove":{"from":"cpu","to":"gpu","at":"2026-11-22T20:05:00Z","reason":"p95 1235ms > SLO 500ms"}}"#
        }},
        "spec": {"template": {"metadata": {"annotations": {"gaia.dev/placement": "cpu"}}}},
        "status": {"latestReadyRevisionName": "matmul-00002", "traffic": [
            {"revisionName": "matmul-00001", "percent": 20},
            {"revisionName": "matmul-00002", "percent": 80},
            {"revisionName": "matmul-00000", "percent": 0}
        ]}
    })
}

fn idle() -> Value {
    json!({
        "metadata": {"name": "idle-wait", "namespace": "demo", "annotations": {
            "gaia.dev/mode": "cpu", "gaia.dev/mode-source": "user",
            "gaia.dev/latency-slo": "2s", "gaia.dev/observed": "not json"
        }},
        "spec": {"template": {"metadata": {"annotations": {"gaia.dev/execution-mode": "cpu"}}}},
        "status": {"latestReadyRevisionName": "idle-wait-00001"}
    })
}

fn plain() -> Value {
    json!({"metadata": {"name": "plain", "namespace": "demo"}, "spec": {}})
}

fn table(rows: &[ServiceStatus], with_ns: bool) -> String {
    let mut out = Vec::new();
    status::render_table(&mut out, rows, with_ns, now()).expect("render");
    String::from_utf8(out).expect("utf-8")
}

#[test]
fn status_reads_every_annotation() {
    let s = ServiceStatus::from_service(&matmul());
    assert!(s.opted_in);
    assert_eq!(s.mode.as_deref(), Some("gpu_preferred"));
    assert_eq!(s.mode_source.as_deref(), Some("classifier"));
    assert_eq!(s.requested_mode.as_deref(), Some("auto"));
    assert_eq!(s.placement.desired.as_deref(), Some("gpu"));
    assert_eq!(s.placement.template.as_deref(), Some("cpu"));
    assert_eq!(s.latency_slo.source, "default");
    assert_eq!(s.revisions, ["matmul-00001", "matmul-00002"]);
    assert_eq!(
        s.remembered_p95.cpu.as_ref().map(|l| l.p95_ms),
        Some(1234.5)
    );
    assert_eq!(
        s.last_move.as_ref().map(|m| m.reason.as_str()),
        Some("p95 1235ms > SLO 500ms")
    );
    assert!(s.warnings.is_empty());

    // Template annotations count; an unreadable memory is a warning, not a failure.
    let i = ServiceStatus::from_service(&idle());
    assert_eq!(i.requested_mode.as_deref(), Some("cpu"));
    assert_eq!(
        (i.latency_slo.value.as_deref(), i.latency_slo.source),
        (Some("2s"), "annotation")
    );
    assert_eq!(i.revisions, ["idle-wait-00001"]);
    assert_eq!(i.warnings.len(), 1, "{:?}", i.warnings);
    assert!(!ServiceStatus::from_service(&plain()).opted_in);
}

/// The numbers shown are those of the revision the autoscaler decides on (the latest ready one),
/// not of every revision in the traffic split.
#[test]
fn current_numbers_are_those_of_the_autoscalers_revision() {
    let mut s = ServiceStatus::from_service(&matmul());
    let key = |r: &str| ("demo".to_string(), r.to_string());
    let current = Current {
        p95_ms: [
            (key("matmul-00001"), 900.0),
            (key("matmul-00002"), 120.0),
            (key("other"), 1e6),
        ]
        .into_iter()
        .collect(),
        rps: [(key("matmul-00001"), 1.0), (key("matmul-00002"), 3.5)]
            .into_iter()
            .collect(),
        gpu: Default::default(),
    };
    s.apply(&current);
    assert_eq!(s.revision.as_deref(), Some("matmul-00002"));
    assert_eq!((s.current_p95_ms, s.current_rps), (Some(120.0), Some(3.5)));
    let mut i = ServiceStatus::from_service(&idle());
    i.apply(&current);
    assert_eq!((i.current_p95_ms, i.current_rps), (None, None));
}

#[test]
fn status_table_is_aligned_and_fits_100_columns() {
    let rows = [
        ServiceStatus::from_service(&matmul()),
        ServiceStatus::from_service(&idle()),
    ];
    let t = table(&rows, false);
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(
        lines[0],
        "NAME       MODE           SOURCE      PLACEMENT  SLO      P95  RPS  P95@CPU  P95@GPU"
    );
    assert_eq!(
        lines[1],
        "matmul     gpu_preferred  classifier  cpu->gpu   default  -    -    1.23s    80ms"
    );
    assert_eq!(
        lines[2],
        "  last move cpu->gpu 55m ago: p95 1235ms > SLO 500ms"
    );
    assert!(
        lines[3].starts_with("idle-wait  cpu            user        -          2s"),
        "{t}"
    );
    assert!(
        lines[4].starts_with("  warning: unreadable gaia.dev/observed"),
        "{t}"
    );
    assert!(t.lines().all(|l| l.chars().count() <= 100), "{t}");
    // Every column starts at the same offset on every row.
    let col = |l: &str, w: &str| l.find(w);
    assert_eq!(col(lines[0], "SLO"), col(lines[1], "default"));
    let with_ns = table(&rows, true);
    assert!(with_ns.starts_with("NAMESPACE  NAME"), "{with_ns}");
    assert!(with_ns.contains("\ndemo       matmul"), "{with_ns}");
}

/// A Service named `name` in `namespace`, opted in, with an SLO and a remembered CPU p95.
fn named(namespace: &str, name: &str) -> ServiceStatus {
    ServiceStatus::from_service(&json!({
        "metadata": {"name": name, "namespace": namespace, "annotations": {
            "gaia.dev/execution-mode": "auto", "gaia.dev/mode": "cpu_preferred",
            "gaia.dev/mode-source": "classifier", "gaia.dev/latency-slo": "500ms",
            "gaia.dev/observed": r#"{"cpu":{"p95Ms":1234.5,"at":"2026-11-22T20:00:00Z"}}"#
        }},
        "spec": {"template": {"metadata": {"annotations": {"gaia.dev/placement": "cpu"}}}},
        "status": {"latestReadyRevisionName": format!("{name}-00001")}
    }))
}

fn assert_fits(t: &str) {
    assert!(
        t.lines().all(|l| l.chars().count() <= status::MAX_WIDTH),
        "a line is wider than {} columns:\n{t}",
        status::MAX_WIDTH
    );
}

#[test]
fn status_all_namespaces_keeps_a_namespace_column_while_it_fits() {
    // Short namespaces and names: a NAMESPACE column, nothing shortened.
    let rows = [named("demo", "idle-wait"), named("demo", "matmul")];
    let t = table(&rows, true);
    assert_fits(&t);
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(
        lines[0],
        "NAMESPACE  NAME       MODE           SOURCE      PLACEMENT  SLO    P95  RPS  P95@CPU  P95@GPU",
        "{t}"
    );
    assert!(
        lines[1].starts_with("demo       idle-wait  cpu_preferred  "),
        "{t}"
    );
    assert!(
        lines[2].starts_with("demo       matmul     cpu_preferred  "),
        "{t}"
    );
    assert!(!t.contains('…'), "{t}");

    // A long namespace with short names: the namespace loses its middle (16 characters).
    let ns = "e2e-test-status-through-kn-and-standalone-1a2b3";
    let t = table(&[named(ns, "matmul"), named("demo", "idle-wait")], true);
    assert_fits(&t);
    let lines: Vec<&str> = t.lines().collect();
    assert!(lines[0].starts_with("NAMESPACE         NAME  "), "{t}");
    assert_eq!(
        lines[1].split_whitespace().take(2).collect::<Vec<_>>(),
        ["e2e-test…e-1a2b3", "matmul"]
    );
    assert_eq!(
        lines[2].split_whitespace().take(2).collect::<Vec<_>>(),
        ["demo", "idle-wait"]
    );
    // Every row's columns line up with the header (in characters: "…" is three bytes).
    let col = |l: &str, w: &str| l.find(w).map(|b| l[..b].chars().count());
    assert_eq!(
        col(lines[0], " NAME ").map(|c| c + 1),
        col(lines[1], "matmul")
    );
    assert_eq!(
        col(lines[0], " NAME ").map(|c| c + 1),
        col(lines[2], "idle-wait")
    );
    assert_eq!(col(lines[0], "MODE"), col(lines[1], "cpu_preferred"));
    assert_eq!(col(lines[0], "MODE"), col(lines[2], "cpu_preferred"));
}

#[test]
fn status_all_namespaces_with_long_names_groups_by_namespace_and_elides() {
    // The demo's namespace and names need 104 columns with a NAMESPACE column: grouped.
    let t = table(
        &[
            named("gaia-demo", "image-classification"),
            named("gaia-demo", "matmul"),
        ],
        true,
    );
    assert_fits(&t);
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(
        lines[..2],
        [
            "NAME                  MODE           SOURCE      PLACEMENT  SLO    P95  RPS  P95@CPU  P95@GPU",
            "namespace gaia-demo:"
        ],
        "{t}"
    );
    assert!(
        lines[2].starts_with("image-classification  cpu_preferred  "),
        "{t}"
    );
    assert!(!t.contains('…'), "{t}");

    let ns_a = "team-recommendations-production-europe-west-serving";
    let long = "personalised-ranking-model-inference-with-a-very-long-name";
    let rows = [
        named(ns_a, "image-classification"),
        named(ns_a, long),
        named("zz-other", "matmul"),
    ];
    let t = table(&rows, true);
    assert_fits(&t);
    let lines: Vec<&str> = t.lines().collect();
    // No NAMESPACE column: one `namespace NS:` line before each namespace's rows.
    assert!(
        lines[0].starts_with("NAME  ") && !lines[0].contains("NAMESPACE"),
        "{t}"
    );
    assert_eq!(lines[1], format!("namespace {ns_a}:"));
    assert!(lines[2].starts_with("image-classification "), "{t}");
    // The long name keeps its beginning and end, and the columns stay aligned.
    let name = lines[3].split_whitespace().next().expect("a name");
    assert!(
        name.contains('…') && name.starts_with("personalised-") && name.ends_with("-name"),
        "{t}"
    );
    // (in characters: "…" is one character, three bytes)
    let mode_at = lines[0].find("MODE").expect("MODE");
    for l in [lines[2], lines[3]] {
        let mode: String = l.chars().skip(mode_at).take(13).collect();
        assert_eq!(mode, "cpu_preferred", "{t}");
    }
    assert_eq!(lines[4], "namespace zz-other:");
    assert!(lines[5].starts_with("matmul  "), "{t}");
    // Every other column is whole.
    for l in [lines[2], lines[3], lines[5]] {
        let cells: Vec<&str> = l.split_whitespace().collect();
        assert_eq!(
            cells[1..],
            [
                "cpu_preferred",
                "classifier",
                "cpu",
                "500ms",
                "-",
                "-",
                "1.23s",
                "-"
            ],
            "{t}"
        );
    }
    // Without -A the same long name is elided the same way, and JSON keeps everything whole.
    let t = table(&rows[1..2], false);
    assert_fits(&t);
    let mut out = Vec::new();
    status::render_json(&mut out, &rows).expect("render");
    let json = String::from_utf8(out).expect("utf-8");
    assert!(
        json.contains(long) && json.contains(ns_a) && !json.contains('…'),
        "{json}"
    );
}

#[test]
fn status_table_shortens_a_long_slo_annotation_before_the_names() {
    let mut svc = named("demo", "image-classification");
    svc.latency_slo.value =
        Some("a-very-long-and-invalid-latency-objective-written-by-hand".into());
    let t = table(&[svc], false);
    assert_fits(&t);
    let line = t.lines().nth(1).expect("a row");
    assert!(
        line.starts_with("image-classification  cpu_preferred"),
        "{t}"
    );
    assert!(line.contains("a-very…") && line.contains('…'), "{t}");
    assert_eq!(
        line.matches('…').count(),
        1,
        "only the SLO is shortened: {t}"
    );
}

#[test]
fn elide_middle_keeps_both_ends() {
    assert_eq!(
        status::elide_middle("image-classification", 20),
        "image-classification"
    );
    assert_eq!(
        status::elide_middle("image-classification", 12),
        "image-…ation"
    );
    assert_eq!(status::elide_middle("abcdef", 1), "…");
    assert_eq!(status::elide_middle("abcdef", 0), "");
    assert_eq!(status::elide_middle("abcdef", 4), "ab…f");
}

#[test]
fn status_json_has_stable_field_names() {
    let mut out = Vec::new();
    status::render_json(&mut out, &[ServiceStatus::from_service(&matmul())]).expect("render");
    let text = String::from_utf8(out).expect("utf-8");
    assert_eq!(text.lines().count(), 1);
    let v: Value = serde_json::from_str(&text).expect("json");
    let mut keys: Vec<&str> = v
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "currentP95Ms",
            "currentRps",
            "lastMove",
            "latencySlo",
            "mode",
            "modeSource",
            "name",
            "namespace",
            "optedIn",
            "placement",
            "rememberedP95",
            "requestedMode",
            "revision",
            "revisions"
        ]
    );
    assert_eq!(v["placement"], json!({"desired": "gpu", "template": "cpu"}));
    assert_eq!(v["latencySlo"], json!({"value": null, "source": "default"}));
    assert_eq!(v["rememberedP95"]["cpu"]["p95Ms"], json!(1234.5));
    assert_eq!(v["lastMove"]["to"], json!("gpu"));
    assert_eq!(v["currentP95Ms"], Value::Null);
}

fn print(report: &Report, format: Format) -> (i32, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = status::print(report, format, false, &mut out, &mut err);
    let s = |b: Vec<u8>| String::from_utf8(b).expect("utf-8");
    (code, s(out), s(err))
}

#[test]
fn status_degrades_clearly() {
    // A named Service that is not opted in: the message, not an empty table.
    let report = Report {
        rows: vec![ServiceStatus::from_service(&plain())],
        notes: vec!["warning: Gaia is not installed".into()],
        empty_message: Some("Service demo/plain is not opted in to Gaia: add ...".into()),
    };
    let (code, out, err) = print(&report, Format::Table);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("Service demo/plain is not opted in"),
        "{out}"
    );
    assert_eq!(err, "warning: Gaia is not installed\n");
    // JSON keeps stdout parseable: the object, the message on stderr.
    let (code, out, err) = print(&report, Format::Json);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(v["optedIn"], json!(false));
    assert!(err.contains("not opted in"), "{err}");
    // Prometheus down: the rows with "-" and one warning line.
    let report = Report {
        rows: vec![ServiceStatus::from_service(&matmul())],
        notes: vec!["warning: current p95 and request rate unavailable: refused".into()],
        empty_message: None,
    };
    let (code, out, err) = print(&report, Format::Table);
    assert_eq!(code, 0);
    assert!(out.contains("matmul "), "{out}");
    assert_eq!(err.lines().count(), 1);
}

#[test]
fn formatting_helpers() {
    assert_eq!(status::fmt_ms(Some(999.4)), "999ms");
    assert_eq!(status::fmt_ms(Some(1500.0)), "1.50s");
    assert_eq!(status::fmt_ms(None), "-");
    let at: jiff::Timestamp = "2026-11-20T21:00:00Z".parse().expect("time");
    assert_eq!(status::ago(at, now()), "2d ago");
    assert_eq!(status::ago(now(), now()), "0s ago");
    assert_eq!(status::clip("abcdef", 5), "ab...");
}

fn event(time: Option<&str>, reason: &str, message: &str) -> ServiceEvent {
    ServiceEvent {
        time: time.map(str::to_string),
        type_: "Normal".into(),
        reason: reason.into(),
        message: message.into(),
        source: "gaia-autoscaler".into(),
        count: 1,
        uid: String::new(),
    }
}

#[test]
fn explain_shows_findings_with_file_and_line_and_events_in_order() {
    let mut events = vec![
        event(
            Some("2026-11-22T20:05:00Z"),
            "PromotedToGpu",
            "p95 1235ms > SLO 500ms",
        ),
        event(
            Some("2026-11-22T19:00:00+00:00"),
            "Created",
            "Created Route \"matmul\"",
        ),
        event(
            Some("2026-11-22T20:10:00.123456Z"),
            "GpuVerified",
            "GPU p95 80ms",
        ),
    ];
    sort_events(&mut events);
    let e = Explanation::new(&matmul(), events);
    assert_eq!(
        e.findings.len(),
        2,
        "the entry without kind/line is skipped"
    );
    let mut out = Vec::new();
    explain::render_text(&mut out, &e).expect("render");
    let text = String::from_utf8(out).expect("utf-8");
    let expected = "\
Service demo/matmul
Mode: gpu_preferred (source: classifier; requested: auto)
Rationale: GPU use with a CPU path: gpu_preferred
Findings:
  - gpu_call func.py:7: .to(device) [guarded]
  - import lib/model.py:1: import torch
Decisions (Events, oldest first):
  2026-11-22T19:00:00+00:00  Normal  Created  [gaia-autoscaler]
      Created Route \"matmul\"
  2026-11-22T20:05:00Z  Normal  PromotedToGpu  [gaia-autoscaler]
      p95 1235ms > SLO 500ms
  2026-11-22T20:10:00.123456Z  Normal  GpuVerified  [gaia-autoscaler]
      GPU p95 80ms
";
    assert_eq!(text, expected);
    let v = serde_json::to_value(&e).expect("json");
    assert_eq!(v["findings"][0]["line"], json!(7));
    assert_eq!(v["events"][1]["reason"], json!("PromotedToGpu"));
    assert_eq!(v["events"][1]["type"], json!("Normal"));
    assert_eq!(v["modeSource"], json!("classifier"));
}

#[test]
fn explain_degrades_clearly() {
    let e = Explanation::new(&plain(), vec![]);
    let mut out = Vec::new();
    explain::render_text(&mut out, &e).expect("render");
    let text = String::from_utf8(out).expect("utf-8");
    assert!(text.contains("not opted in to Gaia: add the annotation gaia.dev/execution-mode=auto"));
    assert!(
        text.contains("kn service update plain -n demo --annotation gaia.dev/execution-mode=auto")
    );
    assert!(text.contains("Decisions: none recorded"), "{text}");

    let mut svc = matmul();
    svc["metadata"]["annotations"]["gaia.dev/findings"] = json!("{truncated");
    svc["metadata"]["annotations"]
        .as_object_mut()
        .expect("annotations")
        .remove("gaia.dev/mode");
    let e = Explanation::new(&svc, vec![]);
    assert!(e.findings.is_empty());
    let mut out = Vec::new();
    explain::render_text(&mut out, &e).expect("render");
    let text = String::from_utf8(out).expect("utf-8");
    assert!(
        text.contains("warning: unreadable gaia.dev/findings"),
        "{text}"
    );
    assert!(
        text.contains("no mode written yet: is Gaia's webhook installed?"),
        "{text}"
    );
}

#[test]
fn cli_parses_status_and_explain() {
    use clap::Parser;
    let cli = crate::cli::Cli::try_parse_from([
        "kn-gaia",
        "status",
        "-A",
        "-o",
        "json",
        "--prometheus",
        "http://p:9090",
    ])
    .expect("parse");
    let crate::cli::Command::Status(a) = cli.command else {
        panic!("not status")
    };
    assert!(a.all_namespaces && a.output == Format::Json);
    assert_eq!(a.prometheus.as_deref(), Some("http://p:9090"));
    assert!(crate::cli::Cli::try_parse_from(["kn-gaia", "status", "x", "-A"]).is_err());
    let cli =
        crate::cli::Cli::try_parse_from(["kn-gaia", "explain", "f", "-n", "ns"]).expect("parse");
    let crate::cli::Command::Explain(a) = cli.command else {
        panic!("not explain")
    };
    assert_eq!((a.name.as_str(), a.namespace.as_deref()), ("f", Some("ns")));
    assert!(crate::cli::Cli::try_parse_from(["kn-gaia", "explain"]).is_err());
}

fn on_the_shared_rung() -> Value {
    json!({
        "metadata": {"name": "resnet", "namespace": "demo", "annotations": {
            "gaia.dev/mode": "cpu_preferred", "gaia.dev/mode-source": "classifier",
            "gaia.dev/desired-placement": "gpu",
            "gaia.dev/ladder": r#"{"rungs":{"cpu":{"p95Ms":40,"rps":5.0,"at":"2026-11-22T20:00:00Z"}},"lastMove":{"from":"cpu","to":"gpu-shared","at":"2026-11-22T20:50:00Z","kind":"economize","reason":"gpu-shared costs less"}}"#
        }},
        "spec": {"template": {"metadata": {"annotations": {
            "gaia.dev/placed-for": "gpu", "gaia.dev/rung": "gpu-shared"}}}},
        "status": {"latestReadyRevisionName": "resnet-00002"}
    })
}

#[test]
fn status_shows_the_rung_and_the_cost_per_1000_requests_per_rung_on_a_ladder() {
    let ladder = gaia_policy::ladder::LadderConfig::cpu_shared_gpu(143_771.0, 7);
    let svc = on_the_shared_rung();
    let mut s = ServiceStatus::from_service(&svc);
    s.current_rps = Some(10.0);
    s.with_ladder(&svc, &ladder);
    let l = s.ladder.as_ref().expect("ladder");
    assert_eq!(l.rung.as_deref(), Some("gpu-shared"));
    // cpu measured at its remembered 5 req/s; the others estimated at the current 10 req/s
    let cpu = &l.cost_per_1000[0];
    assert!(
        cpu.measured && (cpu.usd.unwrap() - 0.0076).abs() < 1e-9,
        "{cpu:?}"
    );
    let shared = &l.cost_per_1000[1];
    assert!(
        !shared.measured && (shared.usd.unwrap() - 0.0019).abs() < 1e-9,
        "{shared:?}"
    );
    let t = table(&[s.clone()], false);
    let lines: Vec<&str> = t.lines().collect();
    assert!(lines[1].contains("gpu-shared"), "{t}");
    assert_eq!(
        lines[2],
        "  cost per 1,000 requests: cpu $0.0076 (measured), gpu-shared $0.0019 (estimated),",
        "{t}"
    );
    assert_eq!(lines[3], "    gpu $0.0133 (estimated)", "{t}");
    assert!(
        lines[4].contains("last move cpu->gpu-shared (economize) 10m ago"),
        "{t}"
    );
    assert!(t.lines().all(|l| l.chars().count() <= 100), "{t}");
    let mut out = Vec::new();
    status::render_json(&mut out, &[s]).expect("render");
    let row: Value = serde_json::from_slice(&out).expect("json");
    assert_eq!(row["ladder"]["rung"], "gpu-shared");
    assert_eq!(row["ladder"]["costPer1000"][0]["measured"], true);
    // without a ladder configured, nothing changes
    let plain_row = ServiceStatus::from_service(&svc);
    let mut out = Vec::new();
    status::render_json(&mut out, &[plain_row]).expect("render");
    assert!(!String::from_utf8(out).unwrap().contains("ladder"));
}
