//! Test and benchmark support: a real Prometheus (Debian's `prometheus` package) started in a
//! temporary directory on a free loopback port, filled by backfilling series written as
//! OpenMetrics with `promtool tsdb create-blocks-from openmetrics`, and the expected values of
//! those series computed independently (Prometheus's own `rate` and `histogram_quantile`
//! arithmetic on exactly aligned samples).
//!
//! The series are what a cluster's Prometheus holds for Knative revisions:
//! - Knative up to 1.18 (OpenCensus): queue-proxy `revision_app_request_latencies_{bucket,sum,count}`
//!   in milliseconds, labelled with `namespace_name`, `revision_name`, ...;
//! - Knative 1.19+ (OpenTelemetry): queue-proxy `kn_serving_invocation_duration_seconds_*` in
//!   seconds, the revision only on `target_info` (joined on `job`, `instance`);
//! - cAdvisor `container_cpu_usage_seconds_total` per pod and container.
#![allow(dead_code)]

use std::io::{BufWriter, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gaia_autoscaler::cluster::pods::PodInfo;

pub const PROMETHEUS: &str = "/usr/bin/prometheus";
pub const PROMTOOL: &str = "/usr/bin/promtool";

/// queue-proxy buckets up to Knative 1.18 (milliseconds).
pub const OC_BUCKETS_MS: &[f64] = &[
    5.0, 10.0, 20.0, 40.0, 60.0, 80.0, 100.0, 150.0, 200.0, 250.0, 300.0, 350.0, 400.0, 450.0,
    500.0, 600.0, 700.0, 800.0, 900.0, 1000.0, 2000.0, 5000.0, 10000.0, 20000.0, 50000.0, 100000.0,
];
/// queue-proxy buckets from Knative 1.19 (seconds).
pub const OTEL_BUCKETS_S: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gen {
    OpenCensus,
    /// Knative 1.19.0-1.19.7, 1.20.0: `kn_queueproxy_app_duration_seconds`, `target_info`.
    KnQueueProxy,
    /// Knative 1.19.8+: `kn_serving_invocation_duration_seconds`, `target_info`.
    OpenTelemetry,
    /// The same metric pushed by OTLP with promoted resource attributes: the revision on
    /// every series, no `target_info`.
    OtelPromoted,
    /// What recording rules over `OpenTelemetry` would hold (the benchmark's option (b)):
    /// `gaia:kn_serving_invocation_duration_seconds_{bucket,count,sum}:rate{1m,5m}` per
    /// revision, exactly the rates Prometheus computes on these aligned samples.
    Recorded,
}

/// From step `from` on, every step each pod serves `mix`: (latency ms, requests).
#[derive(Debug, Clone)]
pub struct Phase {
    pub from: usize,
    pub mix: Vec<(f64, u64)>,
}

#[derive(Debug, Clone)]
pub struct PodSeries {
    pub name: String,
    /// Cores used by the user container.
    pub cpu_cores: f64,
    /// Cores used by the queue-proxy container (must not be counted).
    pub sidecar_cores: f64,
}

#[derive(Debug, Clone)]
pub struct RevisionSeries {
    pub namespace: String,
    pub service: String,
    pub revision: String,
    pub pods: Vec<PodSeries>,
    pub phases: Vec<Phase>,
}

/// Series sampled every `step` seconds from `start`, `steps + 1` samples.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub start: i64,
    pub step: i64,
    pub steps: usize,
    pub revisions: Vec<RevisionSeries>,
}

fn fmt_le_ms(v: f64) -> String {
    format!("{v}")
}

fn fmt_le_s(v: f64) -> String {
    format!("{v}")
}

impl RevisionSeries {
    /// Requests per latency class served by one pod during step `i` (the step ending at sample i).
    fn mix_at(&self, i: usize) -> &[(f64, u64)] {
        self.phases
            .iter()
            .rev()
            .find(|p| p.from < i.max(1))
            .map(|p| p.mix.as_slice())
            .unwrap_or(&[])
    }

    /// Cumulative (per pod) bucket counts, sum (ms) and count at sample `i`.
    fn cumulative(&self, i: usize, bounds_ms: &[f64]) -> (Vec<u64>, f64, u64) {
        let mut buckets = vec![0u64; bounds_ms.len() + 1];
        let mut sum = 0.0;
        let mut count = 0;
        for s in 1..=i {
            for (lat, n) in self.mix_at(s) {
                for (b, le) in bounds_ms.iter().enumerate() {
                    if lat <= le {
                        buckets[b] += n;
                    }
                }
                buckets[bounds_ms.len()] += n;
                sum += lat * *n as f64;
                count += n;
            }
        }
        (buckets, sum, count)
    }
}

impl Dataset {
    pub fn end(&self) -> i64 {
        self.start + self.step * self.steps as i64
    }

    fn t(&self, i: usize) -> i64 {
        self.start + self.step * i as i64
    }

    /// Writes every series as OpenMetrics (each series contiguous, in time order).
    pub fn write_openmetrics(&self, out: &mut impl Write, gens: &[Gen]) -> std::io::Result<()> {
        self.write_openmetrics_shard(out, gens, (0, 1))
    }

    /// Writes the series of shard `k` of `of` (the revisions whose index is `k` modulo `of`),
    /// labelled as in the whole dataset (a revision's `instance` is the same in every shard).
    pub fn write_openmetrics_shard(
        &self,
        out: &mut impl Write,
        gens: &[Gen],
        (k, of): (usize, usize),
    ) -> std::io::Result<()> {
        let oc_ms: Vec<f64> = OC_BUCKETS_MS.to_vec();
        let otel_ms: Vec<f64> = OTEL_BUCKETS_S.iter().map(|s| s * 1e3).collect();
        for (ri, r) in self.revisions.iter().enumerate() {
            if ri % of != k {
                continue;
            }
            if gens.contains(&Gen::Recorded) {
                self.write_recorded(out, r, &otel_ms)?;
            }
            for (pi, pod) in r.pods.iter().enumerate() {
                let instance = format!(
                    "10.{}.{}.{}:{}",
                    (ri >> 16) & 255,
                    (ri >> 8) & 255,
                    ri & 255,
                    9091 + pi
                );
                let cum: Vec<_> = (0..=self.steps)
                    .map(|i| (r.cumulative(i, &oc_ms), r.cumulative(i, &otel_ms)))
                    .collect();
                if gens.contains(&Gen::OpenCensus) {
                    let labels = format!(
                        "configuration_name=\"{svc}\",container_name=\"queue-proxy\",instance=\"{instance}\",job=\"queue-proxy\",namespace_name=\"{ns}\",pod_name=\"{pod}\",response_code=\"200\",response_code_class=\"2xx\",revision_name=\"{rev}\",service_name=\"{svc}\"",
                        svc = r.service, ns = r.namespace, pod = pod.name, rev = r.revision
                    );
                    for (b, le) in oc_ms
                        .iter()
                        .map(|v| fmt_le_ms(*v))
                        .chain(["+Inf".to_string()])
                        .enumerate()
                    {
                        for (i, c) in cum.iter().enumerate() {
                            writeln!(out, "revision_app_request_latencies_bucket{{{labels},le=\"{le}\"}} {} {}", c.0 .0[b], self.t(i))?;
                        }
                    }
                    for (i, c) in cum.iter().enumerate() {
                        writeln!(
                            out,
                            "revision_app_request_latencies_sum{{{labels}}} {} {}",
                            c.0 .1,
                            self.t(i)
                        )?;
                    }
                    for (i, c) in cum.iter().enumerate() {
                        writeln!(
                            out,
                            "revision_app_request_latencies_count{{{labels}}} {} {}",
                            c.0 .2,
                            self.t(i)
                        )?;
                    }
                }
                let otel = [
                    (Gen::KnQueueProxy, "kn_queueproxy_app_duration_seconds"),
                    (Gen::OpenTelemetry, "kn_serving_invocation_duration_seconds"),
                    (Gen::OtelPromoted, "kn_serving_invocation_duration_seconds"),
                ];
                for (gen, metric) in otel.into_iter().filter(|(g, _)| gens.contains(g)) {
                    let mut labels = format!("http_response_status_code=\"200\",instance=\"{instance}\",job=\"queue-proxy\"");
                    if gen == Gen::OtelPromoted {
                        labels.push_str(&format!(
                            ",k8s_namespace_name=\"{}\",k8s_pod_name=\"{}\",kn_revision_name=\"{}\"",
                            r.namespace, pod.name, r.revision
                        ));
                    }
                    for (b, le) in OTEL_BUCKETS_S
                        .iter()
                        .map(|v| fmt_le_s(*v))
                        .chain(["+Inf".to_string()])
                        .enumerate()
                    {
                        for (i, c) in cum.iter().enumerate() {
                            writeln!(
                                out,
                                "{metric}_bucket{{{labels},le=\"{le}\"}} {} {}",
                                c.1 .0[b],
                                self.t(i)
                            )?;
                        }
                    }
                    for (i, c) in cum.iter().enumerate() {
                        writeln!(
                            out,
                            "{metric}_sum{{{labels}}} {} {}",
                            c.1 .1 / 1e3,
                            self.t(i)
                        )?;
                    }
                    for (i, c) in cum.iter().enumerate() {
                        writeln!(out, "{metric}_count{{{labels}}} {} {}", c.1 .2, self.t(i))?;
                    }
                }
                if gens
                    .iter()
                    .any(|g| matches!(g, Gen::KnQueueProxy | Gen::OpenTelemetry))
                {
                    let info = format!(
                        "instance=\"{instance}\",job=\"queue-proxy\",k8s_container_name=\"queue-proxy\",k8s_namespace_name=\"{ns}\",k8s_pod_name=\"{pod}\",kn_configuration_name=\"{svc}\",kn_revision_name=\"{rev}\",kn_service_name=\"{svc}\",service_name=\"{svc}\"",
                        svc = r.service, ns = r.namespace, pod = pod.name, rev = r.revision
                    );
                    for i in 0..=self.steps {
                        writeln!(out, "target_info{{{info}}} 1 {}", self.t(i))?;
                    }
                }
                for (container, cores) in [
                    ("user-container", pod.cpu_cores),
                    ("queue-proxy", pod.sidecar_cores),
                ] {
                    let labels = format!(
                        "container=\"{container}\",image=\"img\",instance=\"node-1\",job=\"kubelet\",metrics_path=\"/metrics/cadvisor\",namespace=\"{}\",pod=\"{}\"",
                        r.namespace, pod.name
                    );
                    for i in 0..=self.steps {
                        // cumulative seconds, starting from an arbitrary offset
                        let v = 1000.0 + cores * (self.step * i as i64) as f64;
                        writeln!(
                            out,
                            "container_cpu_usage_seconds_total{{{labels}}} {v} {}",
                            self.t(i)
                        )?;
                    }
                }
            }
        }
        writeln!(out, "# EOF")
    }

    fn write_recorded(
        &self,
        out: &mut impl Write,
        r: &RevisionSeries,
        otel_ms: &[f64],
    ) -> std::io::Result<()> {
        let m = "gaia:kn_serving_invocation_duration_seconds";
        let labels = format!(
            "k8s_namespace_name=\"{}\",kn_revision_name=\"{}\"",
            r.namespace, r.revision
        );
        let pods = r.pods.len() as f64;
        let cum: Vec<_> = (0..=self.steps).map(|i| r.cumulative(i, otel_ms)).collect();
        for (window, tag) in [(60i64, "1m"), (300, "5m")] {
            let w = (window / self.step) as usize;
            if w == 0 || w > self.steps {
                continue;
            }
            let rate = |a: f64, b: f64| (a - b) * pods / window as f64;
            for (b, le) in OTEL_BUCKETS_S
                .iter()
                .map(|v| fmt_le_s(*v))
                .chain(["+Inf".to_string()])
                .enumerate()
            {
                for i in w..=self.steps {
                    let v = rate(cum[i].0[b] as f64, cum[i - w].0[b] as f64);
                    writeln!(
                        out,
                        "{m}_bucket:rate{tag}{{{labels},le=\"{le}\"}} {v} {}",
                        self.t(i)
                    )?;
                }
            }
            for i in w..=self.steps {
                let v = rate(cum[i].2 as f64, cum[i - w].2 as f64);
                writeln!(out, "{m}_count:rate{tag}{{{labels}}} {v} {}", self.t(i))?;
            }
            for i in w..=self.steps {
                let v = rate(cum[i].1, cum[i - w].1) / 1e3;
                writeln!(out, "{m}_sum:rate{tag}{{{labels}}} {v} {}", self.t(i))?;
            }
        }
        Ok(())
    }

    /// What Prometheus must answer for `revision` over `window` seconds at the last sample.
    pub fn expected(&self, r: &RevisionSeries, window: i64, gen: Gen) -> Expected {
        assert_eq!(window % self.step, 0, "windows are multiples of the step");
        let bounds_ms: Vec<f64> = match gen {
            Gen::OpenCensus => OC_BUCKETS_MS.to_vec(),
            Gen::KnQueueProxy | Gen::OpenTelemetry | Gen::OtelPromoted | Gen::Recorded => {
                OTEL_BUCKETS_S.iter().map(|s| s * 1e3).collect()
            }
        };
        let last = self.steps;
        let first = last - (window / self.step) as usize;
        let (b1, s1, c1) = r.cumulative(last, &bounds_ms);
        let (b0, s0, c0) = r.cumulative(first, &bounds_ms);
        let pods = r.pods.len() as f64;
        let increases: Vec<(f64, f64)> = bounds_ms
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(b1.iter().zip(&b0).map(|(a, b)| (a - b) as f64 * pods))
            .collect();
        let requests = (c1 - c0) as f64 * pods;
        Expected {
            p50_ms: histogram_quantile(0.5, &increases),
            p95_ms: histogram_quantile(0.95, &increases),
            rps: requests / window as f64,
            mean_ms: (requests > 0.0).then(|| (s1 - s0) * pods / requests),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Expected {
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub rps: f64,
    pub mean_ms: Option<f64>,
}

/// Prometheus's histogram_quantile over (upper bound, cumulative count) pairs, the last bound
/// +Inf. `None` where Prometheus answers NaN (no observations).
pub fn histogram_quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let i = buckets.iter().position(|(_, c)| *c >= rank)?;
    if buckets[i].0.is_infinite() {
        return Some(buckets[i - 1].0);
    }
    let (start, below) = if i == 0 { (0.0, 0.0) } else { buckets[i - 1] };
    let (end, at) = buckets[i];
    Some(start + (end - start) * (rank - below) / (at - below))
}

pub fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * b.abs().max(1.0)
}

/// A Prometheus server of our own, killed and its directory removed on drop.
pub struct PromServer {
    child: Child,
    dir: PathBuf,
    pub url: String,
    pub port: u16,
}

fn require(bin: &str) {
    assert!(
        Path::new(bin).exists(),
        "{bin} is missing: these tests need a real Prometheus. Install Debian's package: \
         apt-get install -y prometheus"
    );
}

fn temp_dir(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("gaia-{tag}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

impl PromServer {
    /// Backfills `dataset` and starts Prometheus on it.
    pub fn start(dataset: &Dataset, gens: &[Gen]) -> PromServer {
        Self::start_shard(dataset, gens, (0, 1), "")
    }

    /// Like `start`, with shard `k` of `of` of the dataset (`Dataset::write_openmetrics_shard`)
    /// and these external labels (YAML flow map, e.g. `{shard: a}`; none when empty): a shard
    /// behind a Thanos Sidecar, which refuses a Prometheus without them.
    pub fn start_shard(
        dataset: &Dataset,
        gens: &[Gen],
        shard: (usize, usize),
        external_labels: &str,
    ) -> PromServer {
        require(PROMETHEUS);
        require(PROMTOOL);
        let dir = temp_dir("prom");
        let om = dir.join("series.om");
        {
            let f = std::fs::File::create(&om).expect("create openmetrics file");
            let mut w = BufWriter::with_capacity(1 << 20, f);
            dataset
                .write_openmetrics_shard(&mut w, gens, shard)
                .expect("write openmetrics");
            w.flush().expect("flush");
        }
        let data = dir.join("data");
        let out = Command::new(PROMTOOL)
            .args(["tsdb", "create-blocks-from", "openmetrics", "--quiet"])
            .arg(&om)
            .arg(&data)
            .output()
            .expect("run promtool");
        assert!(
            out.status.success(),
            "promtool failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let _ = std::fs::remove_file(&om);
        Self::start_on(dir, &data, external_labels)
    }

    /// Starts Prometheus with no data (for failure tests).
    pub fn start_empty() -> PromServer {
        require(PROMETHEUS);
        let dir = temp_dir("prom");
        let data = dir.join("data");
        Self::start_on(dir, &data, "")
    }

    fn start_on(dir: PathBuf, data: &Path, external_labels: &str) -> PromServer {
        let config = dir.join("prometheus.yml");
        let mut global = "global:\n  scrape_interval: 1h\n".to_string();
        if !external_labels.is_empty() {
            global.push_str(&format!("  external_labels: {external_labels}\n"));
        }
        std::fs::write(&config, global).expect("write config");
        let port = free_port();
        let log = std::fs::File::create(dir.join("prometheus.log")).expect("log file");
        let child = Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--storage.tsdb.retention.time=30d")
            .arg("--query.max-samples=500000000")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        let server = PromServer {
            child,
            dir,
            url: format!("http://127.0.0.1:{port}"),
            port,
        };
        server.wait_ready(Duration::from_secs(120));
        server
    }

    fn wait_ready(&self, limit: Duration) {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let _ = s.write_all(b"GET /-/ready HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
                let mut reply = String::new();
                let _ = s.read_to_string(&mut reply);
                if reply.starts_with("HTTP/1.0 200") || reply.starts_with("HTTP/1.1 200") {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let log = std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default();
        panic!("prometheus did not become ready in {limit:?}:\n{log}");
    }

    /// Stops the server now (the port then refuses connections).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PromServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A revision with `pods` pods, each serving `mix` every step from the start.
/// The pods of `r` as the cluster lists them: on the CPU node `cpu-1`, one core each.
pub fn cpu_pods(r: &RevisionSeries) -> impl Iterator<Item = Arc<PodInfo>> + '_ {
    r.pods.iter().map(|p| {
        Arc::new(PodInfo {
            namespace: r.namespace.clone(),
            name: p.name.clone(),
            node: Some("cpu-1".into()),
            revision: Some(r.revision.clone()),
            gpus: 0,
            cpu_capacity: Some(1.0),
        })
    })
}

pub fn steady(
    ns: &str,
    rev: &str,
    pods: usize,
    cores: f64,
    mix: Vec<(f64, u64)>,
) -> RevisionSeries {
    let service = rev
        .rsplit_once('-')
        .map(|(s, _)| s)
        .unwrap_or(rev)
        .to_string();
    RevisionSeries {
        namespace: ns.into(),
        service,
        revision: rev.into(),
        pods: (0..pods)
            .map(|i| PodSeries {
                name: format!("{rev}-deployment-{i:05x}"),
                cpu_cores: cores,
                sidecar_cores: 0.03,
            })
            .collect(),
        phases: vec![Phase { from: 0, mix }],
    }
}
